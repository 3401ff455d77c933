#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages cosock's build, tests and examples need,
# only those missing. Uses sudo when not run as root.
#   required: meson ninja-build g++ pkg-config doctest-dev liburing-dev, libssl-dev
#   and openssl (cosock/tls.hpp and its tests, which make certificates with it),
#   and cmake (scripts/consumers.sh builds CMake projects that use cosock)
#   when apt has them: clang-16 and its sanitizer/libFuzzer runtime (the clang
#   test build and the fuzz targets), curl (a smoke test drives http_hello with it),
#   redis-tools and redis-server (redis-cli drives resp_server in the tests; the
#   benchmark compares it with redis-server through redis-benchmark),
#   g++-mingw-w64-x86-64-posix and wine64 (scripts/windows.sh)
# With --bench, what bench/run.py needs instead:
#   required: meson ninja-build g++ pkg-config liburing-dev
#   when apt has them: libasio-dev (the Asio echo server), libssl-dev and
#   openssl (the TLS tables: OpenSSL 3, and the command that makes their
#   certificate), wrk and nginx (the HTTP table and its reference), redis-tools
#   and redis-server (bench/redis.py)
set -euo pipefail

required=(meson ninja-build g++ pkg-config doctest-dev liburing-dev libssl-dev openssl cmake)
optional=(clang-16 libclang-rt-16-dev curl redis-tools redis-server g++-mingw-w64-x86-64-posix wine64)
case "${1:-}" in
"") ;;
--bench)
    required=(meson ninja-build g++ pkg-config liburing-dev)
    optional=(libasio-dev libssl-dev openssl wrk nginx redis-tools redis-server) ;;
*) echo "usage: scripts/deps.sh [--bench]" >&2; exit 2 ;;
esac

installed() { dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
missing=() maybe=()
for p in "${required[@]}"; do installed "$p" || missing+=("$p"); done
for p in "${optional[@]}"; do installed "$p" || maybe+=("$p"); done
# An optional package that apt does not know is left out; the test run (or the
# benchmark's report) says what it skipped.
[ ${#missing[@]} -eq 0 ] && [ ${#maybe[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
for p in "${maybe[@]}"; do
    if apt-cache show "$p" >/dev/null 2>&1; then missing+=("$p"); else echo "not available from apt here: $p"; fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing: ${missing[*]}"
$sudo apt-get install -y -qq "${missing[@]}"
