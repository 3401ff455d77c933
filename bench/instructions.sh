#!/bin/bash
# User-space instructions per round trip of one echo server, counted by
# valgrind's callgrind: a figure that does not move when the machine is noisy,
# for the library's own work (system calls and the kernel are not counted).
#
#   bench/instructions.sh [--connections N] [--size BYTES] [--build DIR] SERVER [ARGS...]
#   bench/instructions.sh echo_cosock --backend epoll
#   bench/instructions.sh echo_epoll
#
# SERVER is a program in DIR/bench (default build-bench) or a path. The server
# runs under callgrind on the first CPU, the load generator on the second; the
# counters are zeroed before a short and a long load-generator run, and the
# difference between the two runs is divided by the difference in round trips,
# so connection setup and start-up cancel out. io_uring servers do not run under
# valgrind 3.19 (it cannot follow the rings).
set -euo pipefail

conns=64 size=64 build="$(cd "$(dirname "$0")/.." && pwd)/build-bench"
while [[ $# -gt 0 && $1 == --* ]]; do
    case $1 in
    --connections) conns=$2 ;;
    --size) size=$2 ;;
    --build) build=$2 ;;
    *) echo "instructions.sh: unknown option $1" >&2; exit 2 ;;
    esac
    shift 2
done
[[ $# -ge 1 ]] || { sed -n '6,8p' "$0" >&2; exit 2; }
server=$1
shift
[[ $server == */* ]] || server=$build/bench/$server
for tool in valgrind callgrind_control taskset python3; do
    command -v $tool >/dev/null || { echo "instructions.sh: $tool not found (apt-get install valgrind)" >&2; exit 2; }
done
[[ -x $build/bench/loadgen ]] || { echo "instructions.sh: no $build/bench/loadgen: build it first (python3 bench/run.py does)" >&2; exit 2; }
[[ -x $server ]] || { echo "instructions.sh: no server program '$server'" >&2; exit 2; }

dir=$(mktemp -d)
trap 'kill $vg 2>/dev/null; wait 2>/dev/null; rm -rf "$dir"' EXIT
taskset -c 0 valgrind --tool=callgrind --callgrind-out-file="$dir/cg.out" "$server" "$@" --port 0 --max-seconds 300 \
    >"$dir/port" 2>"$dir/valgrind.log" &
vg=$!
for _ in $(seq 200); do [[ -s $dir/port ]] && break; sleep 0.1; done
[[ -s $dir/port ]] || { echo "instructions.sh: the server did not start:" >&2; tail -3 "$dir/valgrind.log" >&2; exit 1; }
port=$(awk '{print $2}' "$dir/port")

# One load-generator run of $1 seconds: prints "instructions round_trips".
measure() {
    callgrind_control -z $vg >/dev/null 2>&1
    local rts
    rts=$(taskset -c 1 "$build/bench/loadgen" --port "$port" --connections "$conns" --size "$size" --warmup 0 \
        --seconds "$1" | python3 -c 'import json, sys; print(json.load(sys.stdin)["round_trips"])')
    rm -f "$dir"/cg.out.*
    callgrind_control -d $vg >/dev/null 2>&1
    echo "$(grep -h '^summary:' "$dir"/cg.out.* | head -1 | awk '{print $2}') $rts"
}
measure 1 >/dev/null # warm-up: allocations, first registrations
read -r i1 r1 < <(measure 2)
read -r i2 r2 < <(measure 5)
python3 -c "import sys; i1, r1, i2, r2 = map(int, sys.argv[1:]); \
print(f'{(i2 - i1) / (r2 - r1):.0f} instructions per round trip ({r2 - r1} round trips)')" "$i1" "$r1" "$i2" "$r2"
