#!/usr/bin/env bash
# Installs what is missing, then builds and runs the test suite three ways:
#   gcc          g++, optimized (-O2 -g), warnings are errors
#   gcc-asan     g++, AddressSanitizer + UndefinedBehaviorSanitizer, -O0
#   clang-asan   clang++ (16 or newer, with GCC's libstdc++), both sanitizers
# then the multi-threaded tests under ThreadSanitizer (scripts/tsan.sh), the
# compile-fail checks (scripts/compile_fail.sh: misuse the compiler must
# refuse), what a header costs a file that uses none of it
# (scripts/header_cost.sh), every header alone and the main templates under strict warnings
# (scripts/strict_headers.sh: -Wshadow, -Wconversion, ... as errors), README.md's
# C++ blocks (scripts/readme_blocks.sh: each compiles), docs/reference.md against
# the headers (scripts/reference_check.sh: every public name listed and
# commented), the consumer checks (scripts/consumers.sh: cosock used through a
# Meson subproject, pkg-config, CMake find_package and add_subdirectory/
# FetchContent), Windows (scripts/windows.sh: cross-built with mingw-w64 and
# run under wine: headers, the test files that apply, four examples), the fuzz
# targets for a bounded time (scripts/fuzz.sh) and the short soak
# (scripts/soak.sh --ci: 64 MiB through 1000 connections, 10000 held, per
# backend). Each build runs every test on every backend. Any failure or
# sanitizer report fails the run. The last line is "N passed, N failed".
#
#   scripts/test.sh                 everything (about half an hour on 2 cores)
#   scripts/test.sh --only gcc      one build; arguments after -- go to doctest:
#   scripts/test.sh --only gcc -- -tc="*echo*"
set -euo pipefail
cd "$(dirname "$0")/.."

only="" doctest_args=()
while [ $# -gt 0 ]; do
    case "$1" in
    --only) only=$2; shift 2 ;;
    --) shift; doctest_args=("$@"); break ;;
    *) doctest_args+=("$1"); shift ;;
    esac
done

bash scripts/deps.sh
root=${BUILD_DIR:-build-test}
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1:abort_on_error=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}

total_passed=0 total_failed=0 total_skipped=0
report=()

# The newest clang++ from 16 up, or nothing.
find_clang() {
    for v in 19 18 17 16; do
        if command -v "clang++-$v" >/dev/null; then echo "clang++-$v"; return; fi
    done
    if command -v clang++ >/dev/null && [ "$(clang++ -dumpversion | cut -d. -f1)" -ge 16 ]; then echo clang++; fi
}

# suite NAME COMPILER MESON-ARGS...: builds into $root/NAME and runs the tests.
suite() {
    local name=$1 cxx=$2; shift 2
    local dir="$root/$name"
    if [ -z "$cxx" ]; then
        echo "== $name: SKIPPED: no clang++ 16 or newer on this machine (scripts/deps.sh installs clang-16 where apt has it)"
        report+=("$name: SKIPPED (no clang++ >= 16)")
        total_failed=$((total_failed + 1)) # a build CI is meant to run must not vanish silently
        return
    fi
    echo "== $name: $($cxx --version | head -1)"
    if [ ! -f "$dir/build.ninja" ]; then
        CXX=$cxx meson setup "$dir" -Dwerror=true "$@" >"$root/$name-setup.log" 2>&1 ||
            { cat "$root/$name-setup.log"; report+=("$name: meson setup failed"); total_failed=$((total_failed + 1)); return; }
    fi
    if ! ninja -C "$dir" >"$root/$name-build.log" 2>&1; then
        grep -E "error|FAILED" "$root/$name-build.log" | head -40
        report+=("$name: build failed (log: $root/$name-build.log)")
        total_failed=$((total_failed + 1))
        return
    fi
    # The tests run in the background while the next build compiles: most of
    # a run is waiting (timers, peers, the kernel), most of a build is CPU.
    # collect reads the outcome.
    ( set +e; "$dir/tests/cosock_tests" "${doctest_args[@]}" >"$dir/test.log" 2>&1; echo $? >"$dir/test.status" ) &
    running+=("$name:$!")
}

# collect NAME:PID: waits for a suite's tests and counts their outcome in.
collect() {
    local name=${1%%:*} pid=${1##*:}
    local dir="$root/$name"
    wait "$pid" || true
    echo "== $name: tests"
    local status
    status=$(cat "$dir/test.status" 2>/dev/null || echo 1)
    grep -E "^backend|SKIPPED|ERROR|FAILED|runtime error|Sanitizer|^\[doctest\] (test cases|Status)" "$dir/test.log" | head -60
    local summary passed failed skipped
    summary=$(grep -E '^\[doctest\] test cases:' "$dir/test.log" | tail -1 || true)
    if [ -z "$summary" ]; then
        tail -30 "$dir/test.log"
        report+=("$name: the test binary stopped before its summary (exit $status; log: $dir/test.log)")
        total_failed=$((total_failed + 1))
        return
    fi
    passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
    failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
    skipped=$(sed -E 's/.*\| *([0-9]+) skipped.*/\1/' <<<"$summary")
    # A sanitizer report that did not stop the run still fails it.
    if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
    if grep -qE "runtime error|ERROR: (Address|Leak)Sanitizer" "$dir/test.log" && [ "$failed" -eq 0 ]; then failed=1; fi
    total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed)) total_skipped=$((total_skipped + skipped))
    report+=("$name: $passed passed, $failed failed, $skipped skipped")
}

mkdir -p "$root"
running=()
want() { [ -z "$only" ] || [ "$only" = "$1" ]; }
want gcc && suite gcc g++ -Dbuildtype=debugoptimized
want gcc-asan && suite gcc-asan g++ -Dbuildtype=debug -Db_sanitize=address,undefined
want clang-asan && suite clang-asan "$(find_clang)" -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false

# step NAME COMMAND...: a script ending in "N passed, N failed", counted in.
step() {
    local name=$1; shift
    echo "== $name"
    set +e
    "$@" 2>&1 | tee "$root/$name.log"
    set -e
    local last passed failed
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$root/$name.log" | tail -1 || true)
    if [ -z "$last" ]; then
        report+=("$name: stopped before its summary (log: $root/$name.log)")
        total_failed=$((total_failed + 1))
        return
    fi
    passed=${last%% passed*} failed=$(sed -E 's/.* ([0-9]+) failed.*/\1/' <<<"$last")
    total_passed=$((total_passed + passed)) total_failed=$((total_failed + failed))
    if grep -q "^$name: SKIPPED" "$root/$name.log"; then
        report+=("$(grep -m1 "^$name: SKIPPED" "$root/$name.log")")
    else
        report+=("$name: $last")
    fi
}
want tsan && step tsan bash scripts/tsan.sh
want compile-fail && step compile-fail bash scripts/compile_fail.sh
want header-cost && step header-cost bash scripts/header_cost.sh
want strict && step strict bash scripts/strict_headers.sh
want readme && step readme bash scripts/readme_blocks.sh
want reference && step reference bash scripts/reference_check.sh
want consumers && step consumers bash scripts/consumers.sh
want windows && step windows bash scripts/windows.sh
want fuzz && step fuzz bash scripts/fuzz.sh "${FUZZ_SECONDS:-30}"
for r in "${running[@]}"; do collect "$r"; done
# The soak holds 10,000 connections per backend: it runs alone, last.
want soak && [ -x "$root/gcc/tests/soak_client" ] && step soak bash scripts/soak.sh --ci

echo
echo "== summary"
for line in "${report[@]}"; do echo "$line"; done
# Skipped cases belong to a backend this machine refuses (named at the top of each run).
if [ "$total_skipped" -gt 0 ]; then echo "($total_skipped test cases skipped: see the backend lines above)"; fi
echo "$total_passed passed, $total_failed failed"
[ "$total_failed" -eq 0 ]
