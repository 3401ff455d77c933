#!/usr/bin/env bash
# What a header costs a file that includes it and uses nothing: such a file
# must compile to no code of cosock's. g++ compiles every inline coroutine it
# sees, used or not, unless it is a template (see "Coroutines as templates" in
# include/cosock/task.hpp); one that slips back costs every user's every file
# tens of kilobytes of code and a good part of a second. Counted, not timed:
# the object of `#include <cosock/H>` + an empty main must hold under 256 bytes
# of .text. Timings against Asio: bench/compile_cost.sh.
# The last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
headers=(cosock.hpp socket.hpp file_object.hpp create.hpp resolve.hpp threads.hpp signal.hpp channel.hpp)
flags=(-std=c++20 -O0 -Iinclude)
if pkg-config --exists liburing 2>/dev/null; then flags+=(-DCOSOCK_HAS_LIBURING); fi
if pkg-config --exists 'openssl >= 3' 2>/dev/null; then headers+=(tls.hpp); fi
compilers=(g++)
for v in 19 18 17 16; do command -v "clang++-$v" >/dev/null && { compilers+=("clang++-$v"); break; }; done
passed=0 failed=0
for cxx in "${compilers[@]}"; do
    for h in "${headers[@]}"; do
        n=${h//[\/.]/_}
        printf '#include <cosock/%s>\nint main() {}\n' "$h" >"$tmp/$n.cpp"
        "$cxx" "${flags[@]}" -c "$tmp/$n.cpp" -o "$tmp/$n.$cxx.o" 2>"$tmp/$n.$cxx.err" &
    done
    wait
    for h in "${headers[@]}"; do
        n=${h//[\/.]/_}
        o="$tmp/$n.$cxx.o"
        if [ ! -f "$o" ]; then
            echo "FAILED: $cxx: <cosock/$h> alone does not compile:"; head -20 "$tmp/$n.$cxx.err"
            failed=$((failed + 1)); continue
        fi
        text=$(size -A "$o" | awk '$1 == ".text" { print $2 }')
        if [ "${text:-0}" -ge 256 ]; then
            echo "FAILED: $cxx: an empty file including <cosock/$h> holds $text bytes of code; what it compiles:"
            nm -C --defined-only "$o" | grep -E ' [TtWw] ' | cut -c1-160 | head -15
            failed=$((failed + 1))
        else
            passed=$((passed + 1))
        fi
    done
done
echo "header-cost: ${compilers[*]} x ${#headers[@]} headers"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
