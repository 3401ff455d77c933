#!/usr/bin/env bash
# Installs what is missing, builds the test suite with AddressSanitizer and
# UndefinedBehaviorSanitizer, runs it on every backend, and ends with the line
# "N passed, N failed". Arguments go to the doctest runner (e.g. -tc="*echo*").
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
build=${BUILD_DIR:-build-test}
[ -f "$build/build.ninja" ] || meson setup "$build" -Dbuildtype=debug -Db_sanitize=address,undefined
ninja -C "$build"

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_stack_use_after_return=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}
set +e
"$build/tests/cosock_tests" "$@" 2>&1 | tee "$build/test.log"
status=${PIPESTATUS[0]}
set -e

summary=$(grep -E '^\[doctest\] test cases:' "$build/test.log" | tail -1 || true)
if [ -z "$summary" ]; then
    echo "the test binary stopped before its summary (exit $status)"
    echo "0 passed, 1 failed"
    exit 1
fi
passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
skipped=$(sed -E 's/.*\| *([0-9]+) skipped.*/\1/' <<<"$summary")
# Skipped cases belong to a backend this machine refuses (named at the top of the run).
if [ "$skipped" -gt 0 ]; then echo "$passed passed, $failed failed, $skipped skipped"; else echo "$passed passed, $failed failed"; fi
[ "$status" -eq 0 ] && [ "$failed" -eq 0 ]
