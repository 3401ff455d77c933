#!/usr/bin/env python3
"""Runs the echo benchmark and writes a Markdown report.

    python3 bench/run.py --quick          # a few cells, one round: under 2 minutes
    python3 bench/run.py                  # every cell, 3 rounds

Installs the missing Debian packages its rows need (scripts/deps.sh --bench)
and builds bench/ first (meson, ninja). Each measurement starts a fresh server
pinned to one CPU and the load generator pinned to another, and reads the
load generator's JSON line. Rounds are interleaved (every server once per
round), figures are medians over rounds, and each figure is also given as a
ratio to raw epoll measured in the same round.

The TLS tables (--no-tls to skip them) run TLS echo servers in the same
rounds: one cell over TLS 1.3 and a handshakes/s table, each figure also given
as a ratio to the hand-written OpenSSL + epoll server ("raw epoll TLS") of the
same round. The certificate is made for each run with the openssl command.

The scaling table (full runs; --scaling, --no-scaling) runs the multi-threaded
servers (--threads N) on one cell, in the same rounds: the load generator keeps
its CPU, the server gets every other CPU, and each figure is compared with the
same server's one-thread figure of the round.
"""

import argparse
import json
import os
import platform
import resource
import selectors
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import wrk_table

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
REFERENCE = "raw epoll"
NOISE_PCT = 10  # other processes' CPU % in a window that makes it suspect

# name, program in <build>/bench, arguments
SERVERS = [
    ("raw epoll", "echo_epoll", []),
    ("raw io_uring", "echo_uring", []),
    ("raw io_uring multishot", "echo_uring", ["--mode", "multishot"]),
    ("asio", "echo_asio", []),
    ("cosock select", "echo_cosock", ["--backend", "select"]),
    ("cosock poll", "echo_cosock", ["--backend", "poll"]),
    ("cosock epoll", "echo_cosock", ["--backend", "epoll"]),
    ("cosock io_uring", "echo_cosock", ["--backend", "io_uring"]),
]

# The TLS tables: servers that take --cert FILE --key FILE, with the same TLS
# settings (bench/tls_common.hpp). A program that is not built (cosock's until
# bench/echo_cosock_tls.cpp exists) makes its row say "n/a: not built".
TLS_REFERENCE = "raw epoll TLS"
TLS_SERVERS = [
    ("raw epoll TLS", "echo_tls_epoll", []),
    ("asio TLS", "echo_tls_asio", []),
    ("cosock epoll TLS", "echo_cosock_tls", ["--backend", "epoll"]),
    ("cosock io_uring TLS", "echo_cosock_tls", ["--backend", "io_uring"]),
]
TLS_CELLS = [(64, 4096)]
HANDSHAKE_CONNECTIONS = 16  # connections at a time in the handshake table, each a closed loop
TLS_SETTINGS = ("TLS 1.3 only, TLS_AES_128_GCM_SHA256, X25519, a throw-away ECDSA P-256 certificate (made for the "
                "run, checked by the load generator), no session tickets (num_tickets 0) and no session cache")

# The servers of the scaling table: each takes --threads N.
SCALING_SERVERS = [
    ("cosock epoll", "echo_cosock", ["--backend", "epoll"]),
    ("cosock io_uring", "echo_cosock", ["--backend", "io_uring"]),
    ("asio", "echo_asio", []),
]
SCALING_TARGET = 1.05  # CPU per round trip at N threads over 1 thread, at most

# Servers whose memory cell runs with a 64 B echo buffer (--buffer 64): the
# coroutine libraries keep the buffer in each connection's frame, and the cell
# measures the library's own memory per connection, not the user's buffer.
SMALL_BUFFER = {"echo_cosock", "echo_asio"}

# (connections, message bytes); None as bytes marks the idle memory cell.
FULL_CELLS = [(c, s) for c in (1, 64, 1000, 10000) for s in (64, 4096)] + [(64, 65536), (10000, None)]
QUICK_CELLS = [(1, 64), (64, 64), (1000, 4096), (10000, 64), (64, 65536), (10000, None)]


def cell_name(cell):
    conns, size = cell
    if size is None:
        return f"{conns} idle connections: server memory"
    unit = f"{size // 1024} KiB" if size >= 1024 else f"{size} B"
    return f"{conns} connection{'s' if conns > 1 else ''} × {unit}" + (" (streaming)" if size >= 65536 else "")


def parse_cells(text):
    """'64x64,10000xidle' -> [(64, 64), (10000, None)]; exits naming a bad cell."""
    cells = []
    for item in text.split(","):
        conns, _, size = item.strip().partition("x")
        if not (conns.isdigit() and int(conns) > 0 and (size == "idle" or (size.isdigit() and int(size) > 0))):
            sys.exit(f"run.py: bad cell '{item.strip()}' (expected CONNECTIONSxBYTES or CONNECTIONSxidle)")
        cells.append((int(conns), None if size == "idle" else int(size)))
    return cells


def machine_busy():
    """(busy, total) CPU ticks of the whole machine so far, from /proc/stat."""
    with open("/proc/stat") as f:
        user, nice, system, idle, iowait, irq, softirq, steal = map(int, f.readline().split()[1:9])
    busy = user + nice + system + irq + softirq + steal
    return busy, busy + idle + iowait


class Quiet:
    """Waits, within a total budget, until the machine is nearly idle, so that
    other processes (a compiler, a test suite) do not share the pinned CPUs."""

    def __init__(self, budget_s, threshold=0.10):
        self.budget, self.threshold = budget_s, threshold
        self.waited, self.retried = 0.0, 0

    def wait(self):
        while True:
            b0, t0 = machine_busy()
            time.sleep(0.3)
            b1, t1 = machine_busy()
            busy = (b1 - b0) / max(1, t1 - t0)
            if busy < self.threshold or self.budget <= 0:
                return busy
            time.sleep(1)
            self.budget -= 1.3
            self.waited += 1.3


def read_port_line(proc, timeout):
    """The server's first line 'port N detail…', or None if it exits or stays silent."""
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    if not sel.select(timeout):
        return None
    line = proc.stdout.readline().split(maxsplit=2)
    return line if len(line) >= 2 and line[0] == "port" else None


def first_line(path, limit=160):
    """The first non-empty line of a file, cut to `limit` characters."""
    with open(path) as f:
        for line in f:
            if line.strip():
                line = line.strip()
                return line if len(line) <= limit else line[:limit - 1] + "…"
    return ""


def make_certificate(directory):
    """A throw-away self-signed ECDSA P-256 certificate for localhost and its
    key, made with the openssl command in `directory`: (cert, key), or None
    and why not."""
    if not shutil.which("openssl"):
        return None, "no openssl command (scripts/deps.sh --bench installs it)"
    cert, key = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    out = subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
                          "-nodes", "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=localhost",
                          "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"], capture_output=True, text=True)
    if out.returncode != 0:
        return None, "openssl req failed: " + ((out.stderr.strip().splitlines() or ["no message"])[-1])
    return (cert, key), None


def measure(args, cpus, server, cell, tls=None):
    """One server, one cell: the load generator's figures, or {'na': why} /
    {'failed': why}. cpus: (the server's CPU list for taskset, the load
    generator's CPU). tls: None, or (cert, key, handshakes): a TLS server and
    the load generator's --tls, or its --handshakes when `handshakes`."""
    name, program, extra = server
    exe = program if os.path.isabs(program) else os.path.join(args.build, "bench", program)
    if not os.path.exists(exe):
        why = {"echo_uring": "not built (liburing not found)", "echo_asio": "not built (asio.hpp not found)",
               "echo_tls_epoll": "not built (OpenSSL 3 not found)",
               "echo_tls_asio": "not built (OpenSSL 3 or asio.hpp not found)"}
        return {"na": why.get(program, "not built")}
    conns, size = cell
    if size is None and os.path.isabs(program):
        return {"na": "memory is measured on this build's servers only"}
    limit = args.warmup + args.seconds + 120
    with tempfile.NamedTemporaryFile("w+", prefix="bench-server-", suffix=".err") as err:
        cmd = ["taskset", "-c", cpus[0], exe, "--port", "0", "--max-seconds", str(int(limit + 30))] + extra
        if size is None and program in SMALL_BUFFER:  # the library's memory, not the user's buffer
            cmd += ["--buffer", "64"]
        if tls:
            cmd += ["--cert", tls[0], "--key", tls[1]]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err, text=True)
        try:
            line = read_port_line(proc, 10)
            if line is None:
                proc.wait(5)
                return {"na": first_line(err.name) or f"the server exited with status {proc.returncode}"}
            port, detail = line[1], line[2].strip() if len(line) > 2 else ""
            load = ["taskset", "-c", cpus[1], os.path.join(args.build, "bench", "loadgen"), "--port", port,
                    "--connections", str(conns), "--server-pid", str(proc.pid)]
            if size is None:
                load += ["--size", "64", "--idle-seconds", "0.5"]
            else:
                load += ["--size", str(size), "--warmup", str(args.warmup), "--seconds", str(args.seconds)]
            if tls:
                load += ["--tls", "--cafile", tls[0]] + (["--handshakes"] if tls[2] else [])
            try:
                out = subprocess.run(load, capture_output=True, text=True, timeout=limit)
            except subprocess.TimeoutExpired:
                return {"failed": f"the load generator did not finish in {limit:.0f} s"}
            if out.returncode != 0:
                why = out.stderr.strip().splitlines()[-1:] or [f"loadgen exited with status {out.returncode}"]
                server_said = first_line(err.name, 110)
                why = why[0].removeprefix("loadgen: ") + (f"; server: {server_said}" if server_said else "")
                if "select backend cannot wait on descriptor" in server_said:
                    return {"na": "select() cannot wait on descriptors from 1024 up (FD_SETSIZE); cosock says so "
                                  "and drops that connection"}
                return {"na" if out.returncode == 3 else "failed": why}  # 3: limits forbid the run
            result = json.loads(out.stdout)
            result["detail"] = detail
            return result
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def measure_quietly(args, cpus, server, cell, quiet, tls=None):
    """measure(), after waiting for other load to pass; a window shared with
    other work is measured again (up to three times in all)."""
    for attempt in range(3):
        quiet.wait()
        began = time.time()
        r = measure(args, cpus, server, cell, tls)
        if (r.get("other_user_cpu_pct") or 0) <= NOISE_PCT or quiet.budget <= 0:
            break
        quiet.budget -= time.time() - began  # retries come out of the same budget
        quiet.retried += 1
    return r


def with_threads(server, threads):
    """A server row of the scaling table: `threads` threads (one: the plain server)."""
    name, program, extra = server
    return (f"{name} ×{threads}", program, extra + (["--threads", str(threads)] if threads > 1 else []))


def thread_shares(result, threads):
    """(smallest, largest) share of the server's CPU time among its `threads`
    busiest threads in the window, or None."""
    per_thread = sorted(result.get("server_thread_cpu_s") or [], reverse=True)[:threads]
    total = sum(per_thread)
    if threads < 2 or len(per_thread) < threads or total <= 0:
        return None
    return min(per_thread) / total, max(per_thread) / total


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summarize(rounds, figure):
    """Median of a figure over rounds, and median of its ratio to the reference in each round."""
    values, ratios = [], []
    for per_server in rounds:
        here = per_server.get("self", {}).get(figure)
        ref = per_server.get("ref", {}).get(figure)
        values.append(here)
        if here is not None and ref:
            ratios.append(here / ref)
    return median(values), median(ratios)


def fmt(value, ratio, digits=0):
    if value is None:
        return "–"
    text = f"{value:,.{digits}f}"
    return text + (f" (×{ratio:.2f})" if ratio is not None else "")


def cell_table(cell, servers, results, title=None, unit="round trip"):
    """Markdown lines for one cell: a row per server. `unit`: what the load
    generator counted (a round trip, or a handshake with --handshakes)."""
    conns, size = cell
    lines = [f"### {title or cell_name(cell)}", ""]
    if size is None:
        lines += ["| server | RSS per connection, bytes (× raw epoll) | RSS at start → with connections, KiB |",
                  "| --- | --- | --- |"]
    else:
        stream = size >= 65536
        lines += [f"| server | {unit}s/s | " + ("MiB/s echoed | " if stream else "") +
                  f"p50 µs | p99 µs | server CPU µs/{unit} | server user µs/{unit} | server CPU % | "
                  "client CPU % |",
                  "| --- | --- | " + ("--- | " if stream else "") + "--- | --- | --- | --- | --- | --- |"]
    noisy = False
    for name in servers:
        runs = results[name][cell]
        done = [r for r in runs if "self" in r]
        if not done:
            reason = next(iter(r.get("na") or r.get("failed") for r in runs), "not run")
            kind = "n/a" if any("na" in r for r in runs) else "failed"
            lines.append(f"| {name} | {kind}: {reason} |" + (" |" if size is None else ""))
            continue
        note = ""
        if len(done) < len(runs):
            bad = next(r for r in runs if "self" not in r)
            note = f" ({len(runs) - len(done)} of {len(runs)} rounds failed: {bad.get('failed') or bad.get('na')})"
        if size is None:
            per, ratio = summarize(done, "rss_bytes_per_conn")
            before = median([r["self"]["rss_before_kib"] for r in done])
            after = median([r["self"]["rss_after_kib"] for r in done])
            lines.append(f"| {name} | {fmt(per, ratio)} | {before:,.0f} → {after:,.0f}{note} |")
            continue
        other = median([r["self"].get("other_user_cpu_pct") for r in done])
        mark = ""
        if other is not None and other > NOISE_PCT:
            noisy, mark = True, " †"
        rt, rt_ratio = summarize(done, "rt_per_s")
        cells = [fmt(rt, rt_ratio)]
        if size >= 65536:
            cells.append(f"{rt * size / 2**20:,.0f}")
        for figure, digits in (("p50_us", 0), ("p99_us", 0), ("server_cpu_us_per_rt", 2)):
            cells.append(fmt(*summarize(done, figure), digits))
        # No ratio: a few clock ticks of user time per window make it too coarse for one.
        cells.append(fmt(median([r["self"].get("server_user_us_per_rt") for r in done]), None, 2))
        cells.append(f"{median([r['self']['server_cpu_pct'] for r in done]):.0f}")
        cells.append(f"{median([r['self']['client_cpu_pct'] for r in done]):.0f}")
        tickets = max(r["self"].get("tickets") or 0 for r in done)
        if tickets:  # the settings ask for none: say so if a server sent some
            note += f" ({tickets} session tickets received)"
        lines.append(f"| {name}{mark} | " + " | ".join(cells) + f"{note} |")
    if noisy:
        lines.append("")
        lines.append(f"† other processes used more than {NOISE_PCT}% of a CPU during this server's windows "
                     "(median), even after retrying: treat its figures with care.")
    return lines + [""]


def tls_load_cell(cell):
    """The load generator's (connections, bytes) for a TLS cell: the handshake
    table's cell, (connections, None), echoes 64 B per connection."""
    return (cell[0], 64) if cell[1] is None else cell


def tls_cell_title(cell):
    """The title of a TLS table; (connections, None) is the handshake table."""
    conns, size = cell
    if size is None:
        return (f"TLS 1.3 handshakes: {conns} connections at a time, each connect, handshake, one 64 B echo, "
                "close_notify, close")
    return f"{cell_name(cell)} over TLS 1.3"


def tls_tables(tls_cells, servers, results, why_not=None):
    """Markdown lines for the TLS section: each TLS cell, then the handshakes."""
    lines = ["## TLS", "",
             f"Settings on every server and the load generator: {TLS_SETTINGS}. (×r) = ratio to {TLS_REFERENCE} "
             "(the hand-written OpenSSL + epoll server) in the same round.", ""]
    if why_not:
        return lines + [f"Not run: {why_not}.", ""]
    for cell in tls_cells:
        handshakes = cell[1] is None
        lines += cell_table(tls_load_cell(cell), servers, results[cell], tls_cell_title(cell),
                            "handshake" if handshakes else "round trip")
        if handshakes:
            lines += ["p50 and p99 run from connect() to the echo's last byte; server CPU per handshake is all "
                      "the server did for one connection (accept, handshake, the echo, the close).", ""]
    return lines


def scaling_table(args, cpus, servers, results):
    """Markdown lines for the scaling table: a row per server and thread count."""
    counts = args.scaling
    server_cpus = cpus[2].split(",")
    counts_text = ", ".join(map(str, counts[:-1])) + " and " + str(counts[-1]) if len(counts) > 1 else "1"
    lines = [f"### Scaling: {cell_name(args.scaling_cell)}, {counts_text} thread{'s' if len(counts) > 1 else ''}",
             ""]
    shared = [n for n in counts if n > len(server_cpus)]
    plural = len(server_cpus) > 1
    where = f"The server's threads run on CPU{'s' if plural else ''} {cpus[2]}, the load generator on CPU {cpus[1]}."
    if shared:
        lines.append(where + f" This machine leaves the server {len(server_cpus)} CPU{'s' if plural else ''}, so at "
                     f"{', '.join(map(str, shared))} threads the threads share {'them' if plural else 'it'}: round "
                     "trips/s cannot grow, and what the table shows is what the threads cost (server CPU per round "
                     "trip against one thread) and how evenly SO_REUSEPORT spreads the connections among them.")
    else:
        lines.append(where)
    lines += ["",
              f"| server | threads | round trips/s (× 1 thread) | server CPU µs/round trip | CPU per round trip, "
              f"× 1 thread (target ≤ {SCALING_TARGET:.2f}) | threads' share of the CPU time, least / most |",
              "| --- | --- | --- | --- | --- | --- |"]
    for name, _, _ in servers:
        for n in counts:
            runs = results[name][n]
            done = [r for r in runs if "self" in r]
            if not done:
                reason = next(iter(r.get("na") or r.get("failed") for r in runs), "not run")
                kind = "n/a" if any("na" in r for r in runs) else "failed"
                lines.append(f"| {name} | {n} | {kind}: {reason} | | | |")
                continue
            note = ""
            if len(done) < len(runs):
                bad = next(r for r in runs if "self" not in r)
                note = f" ({len(runs) - len(done)} of {len(runs)} rounds failed: {bad.get('failed') or bad.get('na')})"
            rt, rt_ratio = summarize(done, "rt_per_s")
            cpu, cpu_ratio = summarize(done, "server_cpu_us_per_rt")
            if n == 1:
                rt_text, ratio_text = fmt(rt, None), "1 (reference)"
            else:
                rt_text = fmt(rt, rt_ratio)
                ratio_text = "–" if cpu_ratio is None else f"{cpu_ratio:.2f}" + (
                    "" if cpu_ratio <= SCALING_TARGET else " (over target)")
            shares = [thread_shares(r["self"], n) for r in done]
            shares = [s for s in shares if s]
            share_text = "– (one thread)" if n == 1 else "–" if not shares else (
                f"{100 * median([s[0] for s in shares]):.0f}% / {100 * median([s[1] for s in shares]):.0f}%")
            lines.append(f"| {name} | {n} | {rt_text} | {fmt(cpu, None, 2)} | {ratio_text} | {share_text}{note} |")
    lines += ["", "(× 1 thread) and the CPU ratio are medians of each round's ratio to the same server's one-thread "
                  "run. The shares are each serving thread's CPU time in the window (/proc/PID/task/TID/stat) over "
                  "theirs together, medians over rounds: 50% / 50% is an even split of 2 threads.", ""]
    return lines


def handover_lines(args, cpus, servers, quiet):
    """A line on what handing a connection to another thread costs, from
    bench/handover on each cosock backend of the scaling table (no line if it
    is not built)."""
    exe = os.path.join(args.build, "bench", "handover")
    backends = [extra[1] for name, program, extra in servers if program == "echo_cosock"]
    if not os.path.exists(exe) or not backends:
        return []
    found = []
    for backend in backends:
        quiet.wait()
        out = subprocess.run(["taskset", "-c", cpus[2], exe, "--backend", backend, "--count", "20000"],
                             capture_output=True, text=True, timeout=120)
        if out.returncode != 0:
            found.append(f"{backend}: failed ({(out.stderr.strip().splitlines() or ['no message'])[-1]})")
            continue
        r = json.loads(out.stdout)
        found.append(f"{backend} {r['handover_cost_ns'] / 1000:.1f} µs (the hop alone {r['hop_ns'] / 1000:.1f} µs, "
                     f"the send and receive in place {r['in_place_ns'] / 1000:.1f} µs)")
    return [f"Handing a connection to another thread (bench/handover: socket::move_to, resume_on, and its first send "
            f"and receive there, minus the same send and receive in place; wall clock per hand-over, both threads "
            f"on CPU{'s' if ',' in cpus[2] else ''} {cpus[2]}): " + "; ".join(found) + ".", ""]


def header(args, cpus, quiet, argv, started, elapsed, details):
    cpu_model = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    lines = [
        "Command: `" + shlex.join(["python3", "bench/run.py"] + argv) + "`",
        "",
        f"- {time.strftime('%Y-%m-%d %H:%M', time.localtime(started))}, took {elapsed / 60:.1f} min; "
        f"{args.rounds} round{'s' if args.rounds > 1 else ''}, {args.seconds:g} s measured after {args.warmup:g} s "
        f"warm-up per run; medians over rounds; (×r) = ratio to raw epoll in the same round",
        f"- {cpu_model}, {os.cpu_count()} CPUs, Linux {platform.release()}; server on CPU {cpus[0]}, "
        f"load generator on CPU {cpus[1]}; descriptor limit {soft} (hard {hard})",
    ]
    if args.tls:
        lines.append(f"- TLS tables: {TLS_SETTINGS}; {HANDSHAKE_CONNECTIONS} connections at a time in the "
                     "handshake table")
    if args.scaling:
        lines.append(f"- scaling table: the server's threads on CPU{'s' if ',' in cpus[2] else ''} {cpus[2]}, "
                     f"the load generator on CPU {cpus[1]}")
    lines.append(f"- other load: waited {quiet.waited:.0f} s for it to pass, measured {quiet.retried} "
                 f"window{'s' if quiet.retried != 1 else ''} again because of it")
    if details:
        lines.append("- servers: " + ", ".join(sorted(details)))
    return lines + [""]


def found_since_setup(build):
    """What an optional program needs that is here now although the configured
    build left the program out: meson keeps a has_header result even through
    `meson setup --reconfigure`, so only a fresh configuration finds it."""
    try:
        with open(os.path.join(build, "meson-info", "intro-targets.json")) as f:
            targets = {t["name"] for t in json.load(f)}
        with open(os.path.join(build, "compile_commands.json")) as f:
            cxx = [w for w in shlex.split(json.load(f)[0]["command"]) if not w.endswith("ccache")][0]
    except (OSError, ValueError, LookupError):
        return []
    found = []
    if "echo_asio" not in targets:
        probe = subprocess.run([cxx, "-std=c++20", "-E", "-x", "c++", "-", "-o", os.devnull],
                               input="#include <asio.hpp>\n", text=True, capture_output=True)
        if probe.returncode == 0:
            found.append("asio.hpp")
    if "echo_uring" not in targets and shutil.which("pkg-config") and \
            subprocess.run(["pkg-config", "--exists", "liburing"]).returncode == 0:
        found.append("liburing")
    if "echo_tls_epoll" not in targets and shutil.which("pkg-config") and \
            subprocess.run(["pkg-config", "--atleast-version=3", "openssl"]).returncode == 0:
        found.append("OpenSSL 3")
    if "echo_cosock_tls" not in targets and os.path.exists(os.path.join(HERE, "echo_cosock_tls.cpp")):
        found.append("bench/echo_cosock_tls.cpp")  # meson.build builds it if it exists at configure time
    return found


def build(args):
    """Installs the missing packages the rows need (scripts/deps.sh --bench),
    then configures the build directory if needed and builds it."""
    if args.no_deps:
        print("run.py: --no-deps: installing nothing", file=sys.stderr)
    elif shutil.which("apt-get") and shutil.which("dpkg-query"):
        deps = subprocess.run(["bash", os.path.join(ROOT, "scripts", "deps.sh"), "--bench"], stdout=sys.stderr)
        if deps.returncode != 0:
            print(f"run.py: scripts/deps.sh --bench failed (status {deps.returncode}); going on with what is "
                  "installed", file=sys.stderr)
    else:
        print("run.py: no apt-get here: install meson, ninja, g++, pkg-config, liburing, Asio, OpenSSL 3 (libssl-dev "
              "and openssl), wrk and nginx yourself; rows that lack one say n/a", file=sys.stderr)
    for tool in ("taskset", "meson", "ninja"):
        if not shutil.which(tool):
            sys.exit(f"run.py: {tool} not found (taskset is in util-linux; meson and ninja-build are packages)")
    if not os.path.exists(os.path.join(args.build, "build.ninja")):
        subprocess.run(["meson", "setup", args.build, "-Dbench=true", "-Dtests=disabled"], cwd=ROOT, check=True,
                       stdout=sys.stderr)
    elif found := found_since_setup(args.build):
        # A new source file only needs meson to run again; a new package needs a fresh configuration.
        how = "--reconfigure" if found == ["bench/echo_cosock_tls.cpp"] else "--wipe"
        print(f"run.py: {' and '.join(found)} appeared since {args.build} was configured: configuring it afresh "
              f"(meson setup {how})", file=sys.stderr)
        subprocess.run(["meson", "setup", how, args.build], cwd=ROOT, check=True, stdout=sys.stderr)
    if os.path.exists(os.path.join(args.build, "build.ninja")):
        # A directory configured while tests was a boolean option comes back with tests=auto, or refuses
        # the feature's values until it is configured afresh.
        if subprocess.run(["meson", "configure", args.build, "-Dtests=disabled"], cwd=ROOT,
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0:
            subprocess.run(["meson", "setup", "--wipe", args.build, "-Dbench=true", "-Dtests=disabled"], cwd=ROOT,
                           check=True, stdout=sys.stderr)
    subprocess.run(["ninja", "-C", args.build], check=True, stdout=subprocess.DEVNULL)


def pick_cpus():
    """(the server's CPU, the load generator's CPU, the CPUs a multi-threaded
    server gets: every one but the load generator's), as taskset lists."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        print(f"only CPU {allowed[0]} is available: server and load generator share it", file=sys.stderr)
        return str(allowed[0]), str(allowed[0]), str(allowed[0])
    return str(allowed[0]), str(allowed[1]), ",".join(str(c) for c in allowed if c != allowed[1])


def parse_counts(text):
    """'1,2' -> [1, 2], with 1 first (the reference); exits on a bad list."""
    try:
        counts = sorted({int(t) for t in text.split(",")})
    except ValueError:
        counts = []
    if not counts or counts[0] < 1:
        sys.exit(f"run.py: bad --scaling '{text}' (expected thread counts such as 1,2)")
    return counts if counts[0] == 1 else [1] + counts


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="a few cells, 1 round, short windows")
    p.add_argument("--rounds", type=int, help="rounds (default 3; 1 with --quick)")
    p.add_argument("--seconds", type=float, help="measured window per run (default 5; 1.5 with --quick)")
    p.add_argument("--warmup", type=float, help="warm-up per run (default 1; 0.3 with --quick)")
    p.add_argument("--cells", help="comma-separated cells as CONNECTIONSxBYTES (e.g. 64x64,10000x4096), or "
                   "CONNECTIONSxidle for memory; default: every cell (a few with --quick)")
    p.add_argument("--servers", help="comma-separated subset of: " + ", ".join(s[0] for s in SERVERS + TLS_SERVERS) +
                   f" ({REFERENCE} always runs, and {TLS_REFERENCE} whenever a TLS row is named; naming no TLS row "
                   "skips the TLS tables)")
    p.add_argument("--no-tls", action="store_true", help="skip the TLS tables")
    p.add_argument("--tls-cells", default=",".join(f"{c}x{s}" for c, s in TLS_CELLS),
                   help="the TLS tables' cells, as --cells (default %(default)s; the handshake table is always run)")
    p.add_argument("--before", metavar="BUILD", help="also run the cosock server of another build (e.g. the "
                   "commit before a change) as 'cosock NAME before' (and its TLS server as 'cosock NAME TLS before'), in the same "
                   "rounds")
    p.add_argument("--scaling", metavar="COUNTS", help="thread counts of the scaling table (default 1,2 in a full "
                   "run, none with --quick); 1 is always added, as the reference")
    p.add_argument("--scaling-cell", default="1000x64", help="the scaling table's cell (default 1000x64)")
    p.add_argument("--no-scaling", action="store_true", help="skip the scaling table")
    p.add_argument("--no-http", action="store_true", help="skip the wrk table against examples/http_hello")
    p.add_argument("--no-deps", action="store_true", help="do not install missing packages first "
                   "(scripts/deps.sh --bench)")
    p.add_argument("--build", default=os.path.join(ROOT, "build-bench"), help="meson build directory")
    p.add_argument("--out", help="Markdown report (default: <build>/bench-results.md; JSON beside it)")
    p.add_argument("--quiet-budget", type=float, help="seconds in all to wait for other load to pass "
                   "before runs (default 300; 20 with --quick)")
    args = p.parse_args()
    args.rounds = args.rounds or (1 if args.quick else 3)
    args.seconds = args.seconds or (1.5 if args.quick else 5)
    args.warmup = args.warmup or (0.3 if args.quick else 1)
    budget = args.quiet_budget if args.quiet_budget is not None else (20 if args.quick else 300)
    args.build = os.path.abspath(args.build)  # meson runs from the top of the tree
    args.out = args.out or os.path.join(args.build, "bench-results.md")
    cells = parse_cells(args.cells) if args.cells else QUICK_CELLS if args.quick else FULL_CELLS
    scaling = args.scaling or (None if args.quick else "1,2")
    args.scaling = [] if args.no_scaling or not scaling else parse_counts(scaling)
    args.scaling_cell = parse_cells(args.scaling_cell)[0]
    if args.scaling_cell[1] is None:
        sys.exit("run.py: the scaling cell needs a message size (CONNECTIONSxBYTES)")
    scaling_servers = list(SCALING_SERVERS) if args.scaling else []
    servers = list(SERVERS)
    tls_servers = [] if args.no_tls else list(TLS_SERVERS)
    tls_cells = [c for c in parse_cells(args.tls_cells) if c[1] is not None] + [(HANDSHAKE_CONNECTIONS, None)]
    if args.before:
        exe = os.path.abspath(os.path.join(args.before, "bench", "echo_cosock"))
        servers += [(f"cosock {b} before", exe, ["--backend", b]) for b in ("select", "poll", "epoll", "io_uring")]
        tls_exe = os.path.abspath(os.path.join(args.before, "bench", "echo_cosock_tls"))
        tls_servers += [(f"cosock {b} TLS before", tls_exe, ["--backend", b]) for b in ("epoll", "io_uring")]
    if args.servers:
        wanted = [w.strip() for w in args.servers.split(",")]
        servers = [s for s in servers if s[0] in wanted or s[0] == REFERENCE]
        scaling_servers = [s for s in scaling_servers if s[0] in wanted]
        named_tls = [s for s in tls_servers if s[0] in wanted]
        tls_servers = [s for s in tls_servers if s[0] in wanted or s[0] == TLS_REFERENCE] if named_tls else []
    args.tls = bool(tls_servers)

    build(args)

    tls_why_not, tls_dir = None, None
    if tls_servers:
        tls_dir = tempfile.TemporaryDirectory(prefix="bench-tls-")  # the key never leaves it
        certificate, tls_why_not = make_certificate(tls_dir.name)
    cpus = pick_cpus()
    quiet = Quiet(budget)
    started = time.time()
    results = {s[0]: {c: [] for c in cells} for s in servers}
    details = set()
    scaled = {s[0]: {n: [] for n in args.scaling} for s in scaling_servers}
    # By TLS cell, then as `results` (server, then the load generator's cell).
    tls_results = {c: {s[0]: {tls_load_cell(c): []} for s in tls_servers} for c in tls_cells}
    tls_rows = [s[0] for s in tls_servers]
    if tls_why_not:
        tls_servers = []  # the report says why
    total = args.rounds * (len(cells) * len(servers) + len(tls_cells) * len(tls_servers) +
                           len(scaling_servers) * len(args.scaling))
    done = 0
    for rnd in range(args.rounds):
        order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]  # no server always first
        for cell in cells:
            measured = {}
            for server in order:
                measured[server[0]] = r = measure_quietly(args, cpus, server, cell, quiet)
                done += 1
                shown = r.get("na") or r.get("failed") or (
                    f"{r['rt_per_s']:,.0f} rt/s" if "rt_per_s" in r else f"{r['rss_bytes_per_conn']:,.0f} B/conn")
                print(f"[{done}/{total}] round {rnd + 1} {cell_name(cell)} {server[0]}: {shown}", file=sys.stderr)
                if r.get("detail"):
                    details.add(r["detail"])
            ref = measured.get(REFERENCE, {})
            for name, r in measured.items():
                entry = {"self": r, "ref": ref} if "na" not in r and "failed" not in r else r
                results[name][cell].append(entry)
        # The TLS tables: the same, against the TLS reference.
        turn = rnd % max(1, len(tls_servers))
        order = tls_servers[turn:] + tls_servers[:turn]
        for cell in tls_cells if tls_servers else []:
            measured = {}
            handshakes, load_cell = cell[1] is None, tls_load_cell(cell)
            for server in order:
                measured[server[0]] = r = measure_quietly(args, cpus, server, load_cell, quiet,
                                                          (certificate[0], certificate[1], handshakes))
                done += 1
                shown = r.get("na") or r.get("failed") or (
                    f"{r['rt_per_s']:,.0f} {'handshakes' if handshakes else 'rt'}/s")
                what = f"TLS handshakes, {cell[0]} at a time" if handshakes else f"{cell_name(cell)} over TLS"
                print(f"[{done}/{total}] round {rnd + 1} {what} {server[0]}: {shown}", file=sys.stderr)
                if r.get("detail"):
                    details.add(r["detail"])
            ref = measured.get(TLS_REFERENCE, {})
            for name, r in measured.items():
                entry = {"self": r, "ref": ref} if "na" not in r and "failed" not in r else r
                tls_results[cell][name][load_cell].append(entry)
        # The scaling table: every other CPU for the server, its 1-thread run the reference.
        turn = rnd % max(1, len(scaling_servers))
        order = scaling_servers[turn:] + scaling_servers[:turn]
        for server in order:
            measured = {}
            for n in args.scaling:
                measured[n] = r = measure_quietly(args, (cpus[2], cpus[1]), with_threads(server, n),
                                                  args.scaling_cell, quiet)
                done += 1
                shown = r.get("na") or r.get("failed") or f"{r['rt_per_s']:,.0f} rt/s"
                print(f"[{done}/{total}] round {rnd + 1} {cell_name(args.scaling_cell)} {server[0]} ×{n}: {shown}",
                      file=sys.stderr)
            ref = measured.get(1, {})
            for n, r in measured.items():
                scaled[server[0]][n].append({"self": r, "ref": ref} if "na" not in r and "failed" not in r else r)

    handover = handover_lines(args, cpus, scaling_servers, quiet) if scaling_servers else []
    http_lines = []
    if not args.no_http:
        http_lines = wrk_table.run(args.build, cpus, quiet, args.rounds, args.seconds,
                                    (64,) if args.quick else wrk_table.CONNECTIONS,
                                    log=lambda text: print(text, file=sys.stderr))
    lines = header(args, cpus, quiet, sys.argv[1:], started, time.time() - started, details)
    for cell in cells:
        lines += cell_table(cell, [s[0] for s in servers], results)
    if args.tls:
        lines += tls_tables(tls_cells, tls_rows, tls_results, tls_why_not)
    if scaling_servers:
        lines += scaling_table(args, cpus, scaling_servers, scaled) + handover
    lines += http_lines
    report = "\n".join(lines)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(report)
    raw = {name: {cell_name(c): [r.get("self", r) for r in runs] for c, runs in per.items()}
           for name, per in results.items()}
    for name, per in scaled.items():
        raw[f"{name}, scaling"] = {f"{cell_name(args.scaling_cell)}, {n} thread{'s' if n > 1 else ''}":
                                   [r.get("self", r) for r in runs] for n, runs in per.items()}
    for cell, per in tls_results.items():
        for name, runs in per.items():
            raw.setdefault(name, {})[tls_cell_title(cell)] = [r.get("self", r) for r in runs[tls_load_cell(cell)]]
    with open(os.path.splitext(args.out)[0] + ".json", "w") as f:
        json.dump(raw, f, indent=1)
    print(report)
    print(f"written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
