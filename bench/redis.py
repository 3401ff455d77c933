#!/usr/bin/env python3
"""redis-benchmark against examples/resp_server on every backend and against
redis-server, in the same rounds, and a Markdown report; and the same server with --io makefile
(its connections served through makefile("rwb")) against it.

    python3 bench/redis.py                # 3 rounds: about 3 minutes
    python3 bench/redis.py --rounds 1     # one round

Installs what is missing (scripts/deps.sh --bench: redis-tools and
redis-server among the rest) and builds build-bench as bench/run.py does.
In each round, for each pipeline depth (-P 1 and -P 16) and each server (one
process, fresh, pinned to the first CPU with taskset; redis-server with
--save '' --appendonly no), redis-benchmark -c 50 -n N, pinned to the second
CPU, runs each test in turn (PING_INLINE, PING_MBULK, SET, GET; one
redis-benchmark per test). Figures per test: requests/s from its CSV, and the
server's CPU time per request: user + system, all threads, read before and
after; medians over rounds, with the median of each round's ratio to
redis-server. Servers take turns going first from round to round. A last
table gives each "resp_server makefile B" row's CPU per request as a ratio to
"resp_server B" of the same round (the target, for the line protocol of
PING_INLINE: at most 1.25 at -P 16).

The CPU time is the sum /proc/PID/stat gives as utime + stime, read through
the process's CPU-time clock (the clock id clock_getcpuclockid(3) makes) in
nanoseconds rather than /proc's 10 ms ticks: at -P 16 a test costs the server
about 0.1 s, which ticks would measure to ±10%. Where that clock cannot be
read, /proc/PID/stat is used.
"""

import argparse
import csv
import io
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import run
import wrk_table

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = "redis-server"
TESTS = ("PING_INLINE", "PING_MBULK", "SET", "GET")
PIPELINES = (1, 16)
BACKENDS = ("epoll", "io_uring", "poll", "select")
MAKEFILE_TARGET = 1.25  # makefile's CPU per request at most this times recv's, at -P 16, for a line protocol
LINE_TEST = "PING_INLINE"  # the line protocol among the tests: a request is one line


def start(name, build, cpu, workdir):
    """Starts a server; (process, port) or (None, why it cannot run)."""
    if name == REFERENCE:
        exe = shutil.which("redis-server")
        if not exe:
            return None, "not installed (apt-get install redis-server)"
        port = wrk_table.free_port()
        proc = subprocess.Popen(["taskset", "-c", cpu, exe, "--save", "", "--appendonly", "no", "--port", str(port),
                                 "--bind", "127.0.0.1", "--daemonize", "no", "--dir", workdir],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(100):  # up to 10 s for it to answer
            if proc.poll() is not None:
                return None, f"redis-server exited with status {proc.returncode}"
            ping = subprocess.run(["redis-cli", "-p", str(port), "PING"], capture_output=True, text=True)
            if ping.stdout.strip() == "PONG":
                return proc, port
            time.sleep(0.1)
        proc.kill()
        return None, "redis-server did not answer in 10 s"
    exe = os.path.join(build, "examples", "resp_server")
    if not os.path.exists(exe):
        return None, "resp_server not built"
    backend = name.split()[-1]
    io = ["--io", "makefile"] if " makefile " in name else []
    err_path = os.path.join(workdir, "stderr")
    with open(err_path, "w") as err:
        proc = subprocess.Popen(["taskset", "-c", cpu, exe, "--port", "0", "--backend", backend] + io,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    line = proc.stdout.readline()
    if " on " not in line:
        proc.wait(5)
        with open(err_path) as f:
            return None, (f.read().strip().splitlines() or [f"exited with status {proc.returncode}"])[-1]
    return proc, int(line.split(" on ")[1].split()[0].rsplit(":", 1)[1])


def server_cpu_seconds(pid):
    """The process's user + system time, all threads, in seconds."""
    try:
        return time.clock_gettime(((~pid) << 3) | 2)  # MAKE_PROCESS_CPUCLOCK(pid, CPUCLOCK_SCHED)
    except OSError:
        return wrk_table.cpu_seconds(pid)


def children_cpu():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def writes_processed(port):
    """INFO's total_writes_processed: the server's sends of replies so far."""
    out = subprocess.run(["redis-cli", "-p", str(port), "INFO", "stats"], capture_output=True, text=True).stdout
    for line in out.splitlines():
        if line.startswith("total_writes_processed:"):
            return int(line.split(":")[1])
    return None


def bench_one(port, test, pipeline, requests, clients, cpu, server_pid):
    """One redis-benchmark run of one test: its figures, or {'failed': why}."""
    writes_before = writes_processed(port)
    cmd = ["taskset", "-c", cpu, "redis-benchmark", "-h", "127.0.0.1", "-p", str(port), "-t", test.lower(),
           "-n", str(requests), "-c", str(clients), "-P", str(pipeline), "--csv"]
    before, client_before, began = server_cpu_seconds(server_pid), children_cpu(), time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    wall, used = time.monotonic() - began, server_cpu_seconds(server_pid) - before
    client = children_cpu() - client_before
    rows = [r for r in csv.DictReader(io.StringIO(out.stdout)) if r.get("test") == test]
    if out.returncode != 0 or not rows:
        return {"failed": (out.stderr.strip() or out.stdout.strip() or "no output")[-150:]}
    writes_after = writes_processed(port)
    sends = None if writes_before is None or writes_after is None else (writes_after - writes_before) / requests
    return {"rps": float(rows[0]["rps"]), "p50_ms": float(rows[0]["p50_latency_ms"]), "sends_per_req": sends,
            "cpu_us_per_req": used * 1e6 / requests, "server_cpu_pct": 100 * used / wall,
            "client_cpu_pct": 100 * client / wall}


def measure(name, args, cpus, pipeline, quiet):
    """Every test against one fresh server: {test: figures}, or {'na': why}."""
    with tempfile.TemporaryDirectory(prefix="bench-redis-") as workdir:
        proc, port = start(name, args.build, cpus[0], workdir)
        if proc is None:
            return {"na": port}
        try:
            got = {}
            for test in TESTS:  # SET before GET: GET finds the key
                quiet.wait()
                got[test] = bench_one(port, test, pipeline, args.requests, args.clients, cpus[1], proc.pid)
            return got
        finally:
            proc.kill()
            proc.wait()


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def cell(runs, key, digits):
    """Median of a figure over rounds, and of its ratio to the reference per round."""
    value = median([r[key] for r, _ in runs])
    ratios = [r[key] / ref[key] for r, ref in runs if ref and ref.get(key)]
    text = f"{value:,.{digits}f}"
    return text + (f" (×{median(ratios):.2f})" if ratios else "")


def table(pipeline, names, results, args):
    lines = [f"### redis-benchmark -c {args.clients} -n {args.requests} -P {pipeline}", "",
             "Per test: requests/s, and the server's CPU µs per request (user + system); (×r) = ratio to "
             f"{REFERENCE} in the same round. Last columns: all four tests together, and the CPU % of the "
             "server and of redis-benchmark during the runs.", "",
             "| server | " + " | ".join(f"{t} req/s | {t} CPU µs/req" for t in TESTS) +
             " | all: CPU µs/req | server CPU % | client CPU % |",
             "| --- |" + " --- | --- |" * len(TESTS) + " --- | --- | --- |"]
    for name in names:
        rounds = results[(name, pipeline)]
        done = [(r, ref) for r, ref in rounds if "na" not in r]
        if not done:
            why = rounds[0][0]["na"] if rounds else "not run"
            lines.append(f"| {name} | n/a: {why} |")
            continue
        cells, failed = [], []
        for test in TESTS:
            runs = [(r[test], (ref or {}).get(test)) for r, ref in done if "rps" in r[test]]
            failed += [r[test]["failed"] for r, _ in done if "failed" in r[test]]
            cells += [cell(runs, "rps", 0), cell(runs, "cpu_us_per_req", 2)] if runs else ["failed", "–"]

        def total(r):  # CPU per request over the four tests of one round
            ok = [r[t] for t in TESTS if "rps" in r.get(t, {})]
            return {"cpu_us_per_req": sum(x["cpu_us_per_req"] for x in ok) / len(ok)} if len(ok) == len(TESTS) \
                else None

        totals = [(total(r), total(ref) if ref and "na" not in ref else None) for r, ref in done]
        totals = [(t, ref) for t, ref in totals if t]
        cells.append(cell(totals, "cpu_us_per_req", 2) if totals else "–")
        for key in ("server_cpu_pct", "client_cpu_pct"):
            cells.append(f"{median([r[t][key] for r, _ in done for t in TESTS if key in r[t]]):.0f}")
        note = f" (failed: {failed[0]})" if failed else ""
        lines.append(f"| {name} | " + " | ".join(cells) + f"{note} |")
    return lines + [""]


def makefile_table(names, rounds, pipelines):
    """Each makefile row's CPU per request over the recv row of its backend,
    per round, per test: medians over rounds."""
    pairs = [(n, n.replace(" makefile", "")) for n in names if " makefile " in n]
    pairs = [(m, r) for m, r in pairs if r in names]
    if not pairs:
        return []
    lines = ["### makefile against recv", "",
             "CPU per request of `resp_server --io makefile` over that of `resp_server` (recv into a buffer) on the "
             "same backend, the median of the rounds' ratios. The target is the line protocol's, "
             f"{LINE_TEST} (a request is one readline): at most {MAKEFILE_TARGET} at -P 16. The other tests "
             "are multibulk requests, read a line or an argument at a time (7 reads for a SET). "
             "In brackets: flushes (sends) per request, from INFO.", "",
             "| server | -P | " + " | ".join(TESTS) + f" | all | {LINE_TEST} within target |",
             "| --- | --- |" + " --- |" * len(TESTS) + " --- | --- |"]
    for pipeline in pipelines:
        for mk, raw in pairs:
            cells, alls = [], []
            for test in TESTS:
                ratios, sends = [], []
                for rnd in rounds:
                    a, b = rnd.get((mk, pipeline), {}), rnd.get((raw, pipeline), {})
                    if "rps" in a.get(test, {}) and "rps" in b.get(test, {}):
                        ratios.append(a[test]["cpu_us_per_req"] / b[test]["cpu_us_per_req"])
                        sends.append(a[test].get("sends_per_req"))
                sent = median(sends)
                cells.append((f"×{median(ratios):.2f}" if ratios else "n/a") +
                             (f" ({sent:.3f})" if sent is not None else ""))
            for rnd in rounds:
                a, b = rnd.get((mk, pipeline), {}), rnd.get((raw, pipeline), {})
                if all("rps" in a.get(t, {}) and "rps" in b.get(t, {}) for t in TESTS):
                    alls.append(sum(a[t]["cpu_us_per_req"] for t in TESTS) / sum(b[t]["cpu_us_per_req"] for t in TESTS))
            total = median(alls)
            line = [rnd[(mk, pipeline)][LINE_TEST]["cpu_us_per_req"] / rnd[(raw, pipeline)][LINE_TEST]["cpu_us_per_req"]
                    for rnd in rounds if "rps" in rnd.get((mk, pipeline), {}).get(LINE_TEST, {})
                    and "rps" in rnd.get((raw, pipeline), {}).get(LINE_TEST, {})]
            verdict = "–" if pipeline != 16 or not line else (
                "yes" if median(line) <= MAKEFILE_TARGET else "NO")
            lines.append(f"| {mk} | {pipeline} | " + " | ".join(cells) +
                         f" | {'n/a' if total is None else f'×{total:.2f}'} | {verdict} |")
    return lines + [""]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="rounds (default 3)")
    p.add_argument("-n", "--requests", type=int, default=200000, help="requests per test (default 200000)")
    p.add_argument("-c", "--clients", type=int, default=50, help="redis-benchmark connections (default 50)")
    p.add_argument("--servers", help="comma-separated subset of: " + ", ".join(
        [REFERENCE] + [f"resp_server {b}" for b in BACKENDS] + [f"resp_server makefile {b}" for b in BACKENDS]) +
        f" ({REFERENCE} always runs)")
    p.add_argument("--no-deps", action="store_true", help="do not install missing packages first")
    p.add_argument("--build", default=os.path.join(ROOT, "build-bench"), help="meson build directory")
    p.add_argument("--out", help="Markdown report (default: <build>/redis-results.md)")
    p.add_argument("--quiet-budget", type=float, default=60,
                   help="seconds in all to wait for other load to pass before runs (default 60)")
    args = p.parse_args()
    args.build = os.path.abspath(args.build)
    args.out = args.out or os.path.join(args.build, "redis-results.md")
    run.build(args)
    if not shutil.which("redis-benchmark"):
        sys.exit("redis.py: redis-benchmark not found (apt-get install redis-tools)")

    names = [REFERENCE] + [f"resp_server {b}" for b in BACKENDS] + [f"resp_server makefile {b}" for b in BACKENDS]
    if args.servers:
        wanted = {w.strip() for w in args.servers.split(",")} | {REFERENCE}
        names = [n for n in names if n in wanted]
    cpus = run.pick_cpus()
    quiet = run.Quiet(args.quiet_budget)
    started = time.time()
    results = {(n, pl): [] for n in names for pl in PIPELINES}
    rounds = []  # each round's figures by (name, pipeline), for the makefile table
    for rnd in range(args.rounds):
        order = names[rnd % len(names):] + names[:rnd % len(names)]
        rounds.append({})
        for pipeline in PIPELINES:
            measured = {}
            for name in order:
                measured[name] = r = measure(name, args, cpus, pipeline, quiet)
                shown = r.get("na") or ", ".join(
                    f"{t} {r[t]['rps']:,.0f}/s {r[t]['cpu_us_per_req']:.2f} µs" if "rps" in r[t] else f"{t} failed"
                    for t in TESTS)
                print(f"round {rnd + 1} -P {pipeline} {name}: {shown}", file=sys.stderr)
            ref = measured.get(REFERENCE)
            rounds[-1].update({(name, pipeline): r for name, r in measured.items()})
            for name, r in measured.items():
                results[(name, pipeline)].append((r, ref if ref and "na" not in ref else None))

    elapsed = time.time() - started
    version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    lines = ["Command: `" + shlex.join(["python3", "bench/redis.py"] + sys.argv[1:]) + "`", "",
             f"- {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, took {elapsed / 60:.1f} min; "
             f"{args.rounds} round{'s' if args.rounds > 1 else ''}, medians over rounds",
             f"- {cpu_model}, {os.cpu_count()} CPUs; servers on CPU {cpus[0]}, redis-benchmark on CPU {cpus[1]}; "
             f"{' '.join(version[:3]) if version else 'redis-server: not installed'}",
             f"- other load: waited {quiet.waited:.0f} s for it to pass", ""]
    for pipeline in PIPELINES:
        lines += table(pipeline, names, results, args)
    lines += makefile_table(names, rounds, PIPELINES)
    report = "\n".join(lines)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    print(report)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
