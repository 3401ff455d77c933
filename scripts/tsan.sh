#!/usr/bin/env bash
# The multi-threaded tests (several schedulers, channels, signals, one TLS
# context shared by several threads when OpenSSL is installed) built with
# ThreadSanitizer (clang 16 or newer) and run on every backend. A data race,
# or any test failure, fails the stage. The last line is "N passed, N failed".
#   scripts/tsan.sh [doctest arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
root=${BUILD_DIR:-build-test}
cxx=""
for v in 19 18 17 16; do command -v "clang++-$v" >/dev/null && { cxx=clang++-$v; break; }; done
if [ -z "$cxx" ]; then
    echo "tsan: SKIPPED: no clang++ 16 or newer (scripts/deps.sh installs clang-16 where apt has it)"
    echo "0 passed, 1 failed"
    exit 1
fi
mkdir -p "$root/tsan"
uring=()
if pkg-config --exists liburing 2>/dev/null; then uring=(-DCOSOCK_HAS_LIBURING -luring); fi
# One compiler run per file, in parallel: the binary holds only the
# multi-threaded tests, so this stage stays short.
# ThreadSanitizer brings its own operator new, so allocations are not counted
# here (the allocation tests say so and stop; the other builds run them).
cat >"$root/tsan/uncounted.cpp" <<'CPP'
#include <cstddef>
std::size_t allocations_so_far() noexcept { return 0; }
bool allocations_counted() noexcept { return false; }
CPP
tls=() tls_libs=()
if pkg-config --exists 'openssl >= 3' 2>/dev/null; then tls=(tests/test_tls_threads); tls_libs=(-lssl -lcrypto); fi
objs=()
for f in tests/main tests/test_threads tests/test_channel tests/test_signal "${tls[@]}" "$root/tsan/uncounted"; do
    "$cxx" -std=c++20 -O1 -g -fsanitize=thread -Iinclude -Itests "${uring[@]:0:1}" -c "$f.cpp" \
        -o "$root/tsan/$(basename "$f").o" &
    objs+=("$root/tsan/$(basename "$f").o")
done
wait
"$cxx" -fsanitize=thread "${objs[@]}" -o "$root/tsan/tests" -lpthread "${uring[@]:1}" "${tls_libs[@]}"
export TSAN_OPTIONS=${TSAN_OPTIONS:-halt_on_error=1:second_deadlock_stack=1:suppressions=$PWD/scripts/tsan.supp}
run() { "$root/tsan/tests" "$@" >"$root/tsan/test.log" 2>&1; }
set +e
run "$@"
status=$?
# ThreadSanitizer refuses some kernels' address-space layouts ("unexpected
# memory mapping"); without address randomisation it runs.
if grep -q "unexpected memory mapping" "$root/tsan/test.log"; then
    setarch "$(uname -m)" -R "$root/tsan/tests" "$@" >"$root/tsan/test.log" 2>&1
    status=$?
fi
set -e
grep -E "^backend|SKIPPED|ERROR|WARNING: ThreadSanitizer|^\[doctest\] (test cases|Status)" "$root/tsan/test.log" | head -40
summary=$(grep -E '^\[doctest\] test cases:' "$root/tsan/test.log" | tail -1 || true)
if [ -z "$summary" ]; then
    tail -40 "$root/tsan/test.log"
    echo "0 passed, 1 failed"
    exit 1
fi
passed=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
failed=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
if grep -q "WARNING: ThreadSanitizer" "$root/tsan/test.log" && [ "$failed" -eq 0 ]; then failed=1; fi
if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then failed=1; fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
