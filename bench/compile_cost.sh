#!/usr/bin/env bash
# What including cosock costs a file: CPU seconds (user + system) to compile
# `#include <H>` + an empty main at -O0, median of N runs, beside Asio's
# <asio.hpp> in the same run (needs libasio-dev; its row says n/a without).
#   bench/compile_cost.sh [N=7] [COMPILER=g++]
# Rows: cosock.hpp (everything), the headers a minimal TCP server needs
# (create.hpp: create_server, socket, scheduler, task), socket.hpp alone,
# tls.hpp, and asio.hpp. scripts/header_cost.sh checks, by counting, that an
# including file compiles none of cosock's code it does not use.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-7} cxx=${2:-g++}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
flags=(-std=c++20 -O0 -Iinclude)
if pkg-config --exists liburing 2>/dev/null; then flags+=(-DCOSOCK_HAS_LIBURING); fi
median() { sort -g | awk '{ a[NR] = $1 } END { print (NR % 2) ? a[(NR + 1) / 2] : (a[NR / 2] + a[NR / 2 + 1]) / 2 }'; }
names=("cosock/cosock.hpp" "cosock/create.hpp (a minimal server)" "cosock/socket.hpp" "cosock/tls.hpp" "asio.hpp")
includes=(cosock/cosock.hpp cosock/create.hpp cosock/socket.hpp cosock/tls.hpp asio.hpp)
ok=()
for i in "${!includes[@]}"; do
    printf '#include <%s>\nint main() {}\n' "${includes[$i]}" >"$tmp/t$i.cpp"
    if "$cxx" "${flags[@]}" -c "$tmp/t$i.cpp" -o "$tmp/t$i.o" 2>/dev/null; then ok+=(1); else ok+=(0); fi
done
# Rounds of every row in turn, so that other load on the machine falls on all alike.
for _ in $(seq "$n"); do
    for i in "${!includes[@]}"; do
        [ "${ok[$i]}" = 1 ] || continue
        /usr/bin/time -f '%U %S' "$cxx" "${flags[@]}" -c "$tmp/t$i.cpp" -o "$tmp/t$i.o" 2>&1 |
            awk '{ print $1 + $2 }' >>"$tmp/times$i"
    done
done
echo "$cxx $("$cxx" -dumpversion), -O0, median of $n runs, $(date -u +%F)"
echo
echo "| #include | CPU to compile | preprocessed lines |"
echo "| --- | --- | --- |"
for i in "${!includes[@]}"; do
    if [ "${ok[$i]}" != 1 ]; then
        printf '| %s | n/a (does not compile here) | |\n' "${names[$i]}"
        continue
    fi
    lines=$("$cxx" "${flags[@]}" -E "$tmp/t$i.cpp" | wc -l)
    printf '| %s | %.2f s | %s |\n' "${names[$i]}" "$(median <"$tmp/times$i")" "$lines"
done
