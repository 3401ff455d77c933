#!/usr/bin/env bash
# Compile-fail checks: each tests/compile_fail/*.cpp but awaited.cpp must be
# refused by the compiler (warnings are errors), with a diagnostic containing
# the word after "expect:" in the file; awaited.cpp, the control, must compile
# cleanly. Run with g++ and, when present, clang++ 16 or newer.
# The last line is "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
dir=tests/compile_fail
uring=()
if pkg-config --exists liburing 2>/dev/null; then uring=(-DCOSOCK_HAS_LIBURING); fi
compilers=(g++)
for v in 19 18 17 16; do
    if command -v "clang++-$v" >/dev/null; then compilers+=("clang++-$v"); break; fi
done
passed=0 failed=0
for cxx in "${compilers[@]}"; do
    for src in "$dir"/*.cpp; do
        name="$cxx $(basename "$src")"
        out=$("$cxx" -std=c++20 -Wall -Wextra -Werror -fsyntax-only -Iinclude "${uring[@]}" "$src" 2>&1)
        status=$?
        if [ "$(basename "$src")" = awaited.cpp ]; then
            if [ $status -eq 0 ]; then passed=$((passed + 1)); echo "ok    $name compiles"
            else failed=$((failed + 1)); echo "FAIL  $name should compile:"; echo "$out" | head -20; fi
            continue
        fi
        expect=$(sed -nE 's/.*expect: ([a-z_]+).*/\1/p' "$src" | head -1)
        if [ $status -ne 0 ] && grep -qi -- "$expect" <<<"$out"; then
            passed=$((passed + 1)); echo "ok    $name is refused ($expect)"
        else
            failed=$((failed + 1)); echo "FAIL  $name should be refused with \"$expect\" (exit $status):"; echo "$out" | head -20
        fi
    done
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
