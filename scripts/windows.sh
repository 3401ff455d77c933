#!/usr/bin/env bash
# Windows, on this machine: cross-builds cosock with mingw-w64 (Debian's
# g++-mingw-w64-x86-64-posix) and runs it under wine64.
#   1. every public header alone, strict warnings as errors (-Wshadow,
#      -Wconversion, ...), with the Windows seam (detail/sys_windows.hpp);
#   2. the test binary: the test files listed below, on the backends Windows
#      has (select and WSAPoll; epoll and io_uring say SKIPPED with the
#      reason); a case that cannot run there is compiled out, and listed here
#      with its reason (see "Windows" in tests/backends.hpp);
#   3. the examples echo, echo_server, echo_client and http_hello, built and
#      driven over loopback by programs nobody here wrote where it matters:
#      Python's socket module and curl from the Linux side.
# Where the cross-compiler or wine cannot be installed, the stage says
# SKIPPED and why. The last line is "N passed, N failed".
#   scripts/windows.sh [doctest arguments]
#   COSOCK_WINDOWS_TESTS="test_stream test_time" scripts/windows.sh   (some files only)
set -euo pipefail
cd "$(dirname "$0")/.."
root=${BUILD_DIR:-build-test}/windows
mkdir -p "$root"
root=$(cd "$root" && pwd)

cxx=x86_64-w64-mingw32-g++-posix
wine=""
for w in wine64 /usr/lib/wine/wine64 wine; do
    if command -v "$w" >/dev/null 2>&1; then wine=$(command -v "$w"); break; fi
done
if ! command -v "$cxx" >/dev/null 2>&1 || [ -z "$wine" ]; then
    echo "windows: SKIPPED: needs $cxx and wine64 (scripts/deps.sh installs g++-mingw-w64-x86-64-posix and wine64 where apt has them)"
    echo "0 passed, 0 failed"
    exit 0
fi
wineserver=$(dirname "$wine")/wineserver
export WINEPREFIX="$root/prefix" WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml="
export WINEARCH=win64

tests_default="test_address test_task test_time test_stream test_datagram test_socket_api test_messages test_select_when
  test_file_object test_operations test_channel test_cancellation test_scheduler test_threads test_names
  test_allocations test_quiescence test_misuse test_faults"
tests=${COSOCK_WINDOWS_TESTS:-$tests_default}

passed=0 failed=0
ok() { echo "ok    $*"; passed=$((passed + 1)); }
bad() { echo "FAIL  $*"; failed=$((failed + 1)); }

# doctest is one header: the Linux copy serves the cross-build.
mkdir -p "$root/inc"
cp -r /usr/include/doctest "$root/inc/"
strict=(-std=c++20 -Wall -Wextra -Wpedantic -Wshadow -Wconversion -Wsign-conversion -Werror)
common=(-std=c++20 -O1 -Wall -Wextra -Werror -Iinclude -Itests -isystem "$root/inc")
jobs_max=$(nproc 2>/dev/null || echo 2)
throttle() { while [ "$(jobs -rp | wc -l)" -ge "$jobs_max" ]; do wait -n || true; done; }

# 1. Headers alone. Linux-only ones say so with #error or compile to nothing.
echo "-- headers alone ($($cxx --version | head -1))"
headers=$(cd include/cosock && find . -name '*.hpp' | sed 's|^\./||' | sort |
    grep -vxE 'signal.hpp|unix.hpp|tls.hpp|detail/signal_hub.hpp|detail/epoll_backend.hpp|detail/sys_posix.hpp')
for h in $headers; do
    throttle
    (set +e; printf '#include <cosock/%s>\n' "$h" | "$cxx" "${strict[@]}" -fsyntax-only -Iinclude -x c++ - \
        >"$root/alone_${h//\//_}.log" 2>&1; echo $? >"$root/alone_${h//\//_}.status") &
done
wait
bad_headers=0
for h in $headers; do
    if [ "$(cat "$root/alone_${h//\//_}.status")" != 0 ]; then
        bad "header alone: $h"; head -5 "$root/alone_${h//\//_}.log"; bad_headers=1
    fi
done
[ "$bad_headers" = 0 ] && ok "$(wc -w <<<"$headers") headers compile alone under strict warnings"

# 2. The test binary, one compiler run per file.
echo "-- test binary: $(wc -w <<<"$tests") test files"
objs=()
build_failed=0
for t in main counting_new $tests; do
    throttle
    (set +e; "$cxx" "${common[@]}" -DCOSOCK_TESTS_DIR="\"Z:$PWD/tests\"" -c "tests/$t.cpp" -o "$root/$t.o" \
        >"$root/$t.build.log" 2>&1; echo $? >"$root/$t.status") &
    objs+=("$root/$t.o")
done
wait
for t in main counting_new $tests; do
    if [ "$(cat "$root/$t.status")" != 0 ]; then
        bad "build tests/$t.cpp"; grep -m10 "error" "$root/$t.build.log" || true; build_failed=1
    fi
done
examples=(echo echo_server echo_client http_hello)
for e in "${examples[@]}"; do
    throttle
    (set +e; "$cxx" "${common[@]}" -static "examples/$e.cpp" -o "$root/$e.exe" -lws2_32 >"$root/$e.build.log" 2>&1
        echo $? >"$root/$e.status") &
done
wait
if [ "$build_failed" = 0 ] && "$cxx" -static "${objs[@]}" -o "$root/tests.exe" -lws2_32 >"$root/link.log" 2>&1; then
    ok "test binary built"
    # One run per test file, so that a case that hangs under wine costs its
    # file, named, and not the stage; two at a time (most of a run is spent
    # waiting), their results read in order once all have ended.
    run_file() {
        local t=$1
        shift
        set +e
        timeout 300 "$wine" "$root/tests.exe" -sf="*$t.cpp" "$@" >"$root/$t.log" 2>&1
        local status=$?
        # wine itself losing its server (seen on a loaded machine) is not a
        # test result: said, and the file run once more.
        if grep -q "wine client error" "$root/$t.log"; then
            echo "tests/$t.cpp: wine lost its server ($(grep -m1 'wine client error' "$root/$t.log" | tr -d '\r')); once more" \
                >"$root/$t.note"
            timeout 300 "$wine" "$root/tests.exe" -sf="*$t.cpp" "$@" >"$root/$t.log" 2>&1
            status=$?
        fi
        echo "$status" >"$root/$t.exit"
    }
    for t in $tests; do
        rm -f "$root/$t.note" "$root/$t.exit"
        while [ "$(jobs -rp | wc -l)" -ge 2 ]; do wait -n || true; done
        run_file "$t" "$@" &
    done
    wait
    head_done=0
    for t in $tests; do
        [ -f "$root/$t.note" ] && cat "$root/$t.note"
        status=$(cat "$root/$t.exit" 2>/dev/null || echo 255)
        tr -d '\r' <"$root/$t.log" >"$root/$t.txt"
        if [ "$head_done" = 0 ]; then grep -E "^backend" "$root/$t.txt" || true; head_done=1; fi
        grep -E "ERROR|FAILED" "$root/$t.txt" | head -20 || true
        summary=$(grep -E '^\[doctest\] test cases:' "$root/$t.txt" | tail -1 || true)
        if [ -z "$summary" ]; then
            tail -10 "$root/$t.txt"
            bad "tests/$t.cpp under wine stopped before its summary (exit $status; log: $root/$t.log)"
            continue
        fi
        p=$(sed -E 's/.*\| *([0-9]+) passed.*/\1/' <<<"$summary")
        f=$(sed -E 's/.*\| *([0-9]+) failed.*/\1/' <<<"$summary")
        if [ "$status" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi
        passed=$((passed + p)) failed=$((failed + f))
        echo "tests/$t.cpp under wine: $p passed, $f failed"
    done
elif [ "$build_failed" = 0 ]; then
    bad "link tests.exe"; head -20 "$root/link.log"
fi

# The cases compiled out on Windows, each with its reason.
echo "-- compiled out on Windows"
for t in $tests; do
    awk -v file="tests/$t.cpp" '
        /^#if !COSOCK_WINDOWS \/\/ windows: / { reason = $0; sub(/.*windows: /, "", reason); depth = 1; next }
        depth > 0 && /^#if/ { depth++ }
        depth > 0 && /^#endif/ { depth--; next }
        depth > 0 && match($0, /(BACKEND_TEST|TEST_CASE)\("[^"]*"/) {
            name = substr($0, RSTART, RLENGTH); sub(/^[A-Z_]*\("/, "", name); sub(/"$/, "", name)
            printf "skipped  %s: \"%s\" (%s)\n", file, name, reason
        }' "tests/$t.cpp"
done | tee "$root/skipped.txt"
echo "$(wc -l <"$root/skipped.txt") cases compiled out"

# 3. The examples over loopback.
echo "-- examples"
for e in "${examples[@]}"; do
    if [ "$(cat "$root/$e.status")" != 0 ]; then bad "build examples/$e.cpp"; grep -m10 error "$root/$e.build.log" || true; fi
done
port_of() { # the port a server printed as "listening on HOST:PORT (BACKEND)"
    local log=$1
    for _ in $(seq 1 300); do
        if grep -q "listening on" "$log" 2>/dev/null; then
            tr -d '\r' <"$log" | sed -nE 's/.*listening on .*:([0-9]+) .*/\1/p' | head -1
            return
        fi
        sleep 0.1
    done
}
# start_server NAME BACKEND: starts NAME.exe on a free port; sets $server
# (its pid) and $port (empty, said as a failure, when it printed none).
start_server() {
    local log="$root/$1_$2.log"
    "$wine" "$root/$1.exe" --backend "$2" --port 0 >"$log" 2>&1 &
    server=$!
    port=$(port_of "$log")
    if [ -z "$port" ]; then bad "$1 ($2) printed no listening line"; cat "$log"; fi
}
stop_server() {
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
}
for b in poll select; do
    if [ -f "$root/echo.exe" ]; then
        out=$(timeout 120 "$wine" "$root/echo.exe" --backend "$b" --clients 50 2>&1 | tr -d '\r' | tail -1 || true)
        [ "$out" = "50 of 50 clients got their message back" ] && ok "echo ($b): $out" || bad "echo ($b): $out"
    fi
    if [ -f "$root/echo_server.exe" ] && [ -f "$root/echo_client.exe" ]; then
        start_server echo_server "$b"
        if [ -n "$port" ]; then
            # echo_client exits 0 only when every message came back unchanged.
            if out=$(timeout 120 "$wine" "$root/echo_client.exe" --port "$port" --backend "$b" hello windows 2>&1); then
                ok "echo_client -> echo_server ($b)"
            else
                bad "echo_client -> echo_server ($b): $(tr -d '\r' <<<"$out")"
            fi
            # Python's socket module: 1 MiB each way on 4 connections at once, every byte checked.
            if timeout 120 python3 - "$port" <<'PY'; then ok "Python echoes 4 x 1 MiB through echo_server ($b)"; else bad "Python through echo_server ($b)"; fi
import os, socket, sys, threading
port = int(sys.argv[1])
errors = []
def one(seed):
    data = os.urandom(1 << 20)
    with socket.create_connection(("127.0.0.1", port), timeout=60) as s:
        def send():
            s.sendall(data)
            s.shutdown(socket.SHUT_WR)
        t = threading.Thread(target=send); t.start()
        got = bytearray()
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            got += chunk
        t.join()
    if bytes(got) != data: errors.append(f"connection {seed}: {len(got)} bytes back")
ts = [threading.Thread(target=one, args=(i,)) for i in range(4)]
[t.start() for t in ts]; [t.join() for t in ts]
if errors: print("\n".join(errors))
sys.exit(1 if errors else 0)
PY
        fi
        stop_server
    fi
    if [ -f "$root/http_hello.exe" ] && command -v curl >/dev/null; then
        start_server http_hello "$b"
        if [ -n "$port" ]; then
            # Two requests on one connection (keep-alive): the second makes no new connection.
            out=$(curl -s --max-time 30 -o /dev/null -o /dev/null -w '%{http_code} %{num_connects}\n' \
                "http://127.0.0.1:$port/" "http://127.0.0.1:$port/" 2>&1 || true)
            [ "$(tr '\n' ' ' <<<"$out")" = "200 1 200 0 " ] && ok "curl keep-alive against http_hello ($b)" ||
                bad "curl against http_hello ($b): $out"
        fi
        stop_server
    fi
done
"$wineserver" -k 2>/dev/null || true
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
