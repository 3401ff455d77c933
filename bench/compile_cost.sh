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
row() {
    local name=$1 include=$2
    printf '#include <%s>\nint main() {}\n' "$include" >"$tmp/t.cpp"
    if ! "$cxx" "${flags[@]}" -c "$tmp/t.cpp" -o "$tmp/t.o" 2>/dev/null; then
        printf '| %s | n/a (does not compile here) | |\n' "$name"
        return
    fi
    local lines
    lines=$("$cxx" "${flags[@]}" -E "$tmp/t.cpp" | wc -l)
    for _ in $(seq "$n"); do
        /usr/bin/time -f '%U %S' "$cxx" "${flags[@]}" -c "$tmp/t.cpp" -o "$tmp/t.o" 2>&1 | awk '{ print $1 + $2 }'
    done | median | xargs printf "| $name | %.2f s | $lines |\n"
}
echo "$cxx $("$cxx" -dumpversion), -O0, median of $n runs, $(date -u +%F)"
echo
echo "| #include | CPU to compile | preprocessed lines |"
echo "| --- | --- | --- |"
row "cosock/cosock.hpp" cosock/cosock.hpp
row "cosock/create.hpp (a minimal server)" cosock/create.hpp
row "cosock/socket.hpp" cosock/socket.hpp
row "cosock/tls.hpp" cosock/tls.hpp
row "asio.hpp" asio.hpp
