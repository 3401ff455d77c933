#!/usr/bin/env bash
# Builds the libFuzzer targets in fuzz/ with clang (ASan + UBSan) and runs each:
# first over its regression inputs (fuzz/regressions/TARGET: every input that
# ever crashed it, kept so that it never comes back), then fuzzing for a bounded
# time from the committed seed corpus (fuzz/corpus/TARGET). New interesting
# inputs go to a work corpus in the build directory, never into the repository.
#
#   scripts/fuzz.sh [SECONDS-PER-TARGET]       default 60
#
# Prints one line per target and ends with "N passed, N failed" (one per target).
# A crash leaves its input in $BUILD_DIR/fuzz/artifacts/: copy it to
# fuzz/regressions/TARGET/ once the bug is fixed.
set -euo pipefail
shopt -s nullglob
cd "$(dirname "$0")/.."
seconds=${1:-60}
root=${BUILD_DIR:-build-test}
dir="$root/fuzz"

clang=""
for v in 19 18 17 16; do command -v "clang++-$v" >/dev/null && { clang="clang++-$v"; break; }; done
if [ -z "$clang" ]; then
    echo "fuzz: SKIPPED: no clang++ 16 or newer (scripts/deps.sh installs clang-16 and libclang-rt-16-dev)"
    echo "0 passed, 1 failed"
    exit 1
fi
mkdir -p "$root"
if [ ! -f "$dir/build.ninja" ]; then
    CXX=$clang meson setup "$dir" -Dfuzz=true -Dtests=disabled -Dexamples=false -Dbench=false \
        -Dbuildtype=debugoptimized >"$root/fuzz-setup.log" 2>&1 || { cat "$root/fuzz-setup.log"; exit 1; }
else
    # A directory configured while tests was a boolean option came back with tests=auto.
    meson configure "$dir" -Dtests=disabled >/dev/null
fi
ninja -C "$dir" >"$root/fuzz-build.log" 2>&1 || { grep -E "error" "$root/fuzz-build.log" | head -30; echo "0 passed, 1 failed"; exit 1; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
passed=0 failed=0
for exe in "$dir"/fuzz/fuzz_*; do
    [ -f "$exe" ] && [ -x "$exe" ] || continue
    name=$(basename "$exe")
    work="$dir/corpus/$name" artifacts="$dir/artifacts/$name/"
    mkdir -p "$work" "$artifacts"
    log="$dir/$name.log"
    regressions=(fuzz/regressions/"$name"/*)
    if [ ${#regressions[@]} -gt 0 ] && ! "$exe" "${regressions[@]}" >"$log" 2>&1; then
        echo "$name: FAILED on a regression input (log: $log)"
        grep -E "ERROR|fuzz:|what\(\)" "$log" | head -5
        failed=$((failed + 1))
        continue
    fi
    seeds=()
    [ -d "fuzz/corpus/$name" ] && seeds=("fuzz/corpus/$name")
    if "$exe" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=4096 -print_final_stats=1 \
        -artifact_prefix="$artifacts" "$work" "${seeds[@]}" >"$log" 2>&1; then
        runs=$(grep -oE "stat::number_of_executed_units: *[0-9]+" "$log" | grep -oE "[0-9]+$" || echo "?")
        cov=$(grep -oE "cov: [0-9]+" "$log" | tail -1 || true)
        echo "$name: $runs runs in ${seconds} s, ${cov:-cov: ?} edges, ${#regressions[@]} regression inputs, no crash"
        passed=$((passed + 1))
    else
        echo "$name: CRASHED (log: $log; input in $artifacts)"
        grep -E "ERROR|fuzz:|what\(\)|runtime error" "$log" | head -5
        failed=$((failed + 1))
    fi
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
