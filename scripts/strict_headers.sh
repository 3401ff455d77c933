#!/usr/bin/env bash
# Strict users: every header under include/cosock/ (meson.build's
# public_headers, tls.hpp, and any header not listed there) must compile alone,
# and tests/strict/uses.cpp, which includes <cosock/cosock.hpp> and
# <cosock/tls.hpp> and instantiates the main templates (socket operations, file
# objects, when_all/when_any/with_timeout, select, channel, scheduler_group,
# ssl_socket), must compile too, with
#   -std=c++20 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Werror
# under g++ and clang++ 16 or newer (a missing clang++ counts as a failure).
# -DCOSOCK_HAS_LIBURING when liburing is installed; tls.hpp needs OpenSSL's
# headers only. -fsyntax-only: warnings in instantiated templates still fire.
# The compiles run in parallel, one per core. One line per failure, with the
# first diagnostic; the last line is "N passed, N failed".
#   STRICT_VERBOSE=1 scripts/strict_headers.sh   prints every failure's first 20 lines
set -uo pipefail
cd "$(dirname "$0")/.."

flags=(-std=c++20 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Werror -fsyntax-only -Iinclude)
if pkg-config --exists liburing 2>/dev/null; then flags+=(-DCOSOCK_HAS_LIBURING); fi
if pkg-config --exists openssl 2>/dev/null; then flags+=($(pkg-config --cflags-only-I openssl)); fi

compilers=(g++)
clang=""
for v in 19 18 17 16; do
    if command -v "clang++-$v" >/dev/null; then clang="clang++-$v"; break; fi
done
if [ -z "$clang" ] && command -v clang++ >/dev/null && [ "$(clang++ -dumpversion | cut -d. -f1)" -ge 16 ]; then clang=clang++; fi
[ -n "$clang" ] && compilers+=("$clang")

# meson.build's list first, then tls.hpp and anything else under include/cosock.
listed=$(sed -n '/^public_headers = \[/,/\]/p' meson.build | grep -oE "'[^']+'" | tr -d "'")
headers=($listed)
while read -r h; do
    grep -qxF -- "$h" <<<"$listed" || headers+=("$h")
done < <(cd include/cosock && find . -name '*.hpp' | sed 's|^\./||' | sort)

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

# check ID COMPILER SOURCE-OR-HEADER: writes $out/ID.log and $out/ID.status.
check() {
    local id=$1 cxx=$2 what=$3
    if [[ $what == *.cpp ]]; then
        "$cxx" "${flags[@]}" "$what" >"$out/$id.log" 2>&1
    else
        printf '#include <cosock/%s>\n' "$what" | "$cxx" "${flags[@]}" -x c++ - >"$out/$id.log" 2>&1
    fi
    echo $? >"$out/$id.status"
}

jobs_max=$(nproc 2>/dev/null || echo 2)
names=()
i=0
for cxx in "${compilers[@]}"; do
    for what in tests/strict/uses.cpp "${headers[@]}"; do
        while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n; done
        names[i]="$cxx $what"
        check "$i" "$cxx" "$what" &
        i=$((i + 1))
    done
done
wait

passed=0 failed=0
if [ -z "$clang" ]; then
    failed=$((failed + 1))
    echo "FAIL  no clang++ 16 or newer on this machine (scripts/deps.sh installs clang-16 where apt has it)"
fi
for ((j = 0; j < i; j++)); do
    if [ "$(cat "$out/$j.status" 2>/dev/null)" = 0 ]; then
        passed=$((passed + 1))
    else
        failed=$((failed + 1))
        first=$(grep -m1 -E 'error|fatal' "$out/$j.log" || head -1 "$out/$j.log")
        echo "FAIL  ${names[j]}: $first"
        [ -n "${STRICT_VERBOSE:-}" ] && head -20 "$out/$j.log"
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
