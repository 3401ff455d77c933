"""The HTTP table of the benchmark: wrk against examples/http_hello on every
backend, and against nginx (one process, return 200) when it is installed.

Used by run.py; each measurement starts a fresh server pinned to the first CPU
and runs `wrk -t1 -cN` pinned to the second, after a one-second warm-up run.
wrk takes whole seconds, so the measured run is run.py's window rounded up
(2 s in quick mode).
Figures: requests/s, p50/p99 latency, and server CPU µs per request (from
/proc/PID/stat over the measured run), each also as a ratio to the reference
measured in the same round: nginx when installed, else cosock epoll.
"""

import math
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time

CONNECTIONS = (64, 1000)
TICK = os.sysconf("SC_CLK_TCK")

NGINX_CONF = """daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log {dir}/error.log;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    keepalive_requests 100000000;
    keepalive_timeout 600s;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    server {{
        listen 127.0.0.1:{port} backlog=4096;
        location / {{ default_type text/plain; return 200 "Hello, World!\\n"; }}
    }}
}}
"""


def servers(build):
    """(name, how to start it) for every HTTP server this machine can run."""
    hello = os.path.join(build, "examples", "http_hello")
    out = [(f"cosock {b}", ("hello", hello, b)) for b in ("select", "poll", "epoll", "io_uring")]
    nginx = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
    out.append(("nginx", ("nginx", nginx, None)))
    return out


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK  # utime, stime


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(how, cpu, workdir):
    """Starts a server; returns (process, port) or (None, why it cannot run)."""
    kind, exe, backend = how
    if exe is None or not os.path.exists(exe):
        return None, "not installed (apt-get install nginx)" if kind == "nginx" else "http_hello not built"
    if kind == "nginx":
        port = free_port()
        conf = os.path.join(workdir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=workdir, port=port))
        proc = subprocess.Popen(["taskset", "-c", cpu, exe, "-c", conf, "-p", workdir], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        for _ in range(100):  # up to 10 s for the port to answer
            if proc.poll() is not None:
                with open(os.path.join(workdir, "error.log")) as f:
                    return None, (f.read().strip().splitlines() or ["nginx exited"])[-1]
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return proc, port
            except OSError:
                time.sleep(0.1)
        proc.kill()
        return None, "nginx did not answer in 10 s"
    # stderr goes to a file: a server that reports each dropped client must never block on a full pipe.
    err_path = os.path.join(workdir, "stderr")
    with open(err_path, "w") as err:
        proc = subprocess.Popen(["taskset", "-c", cpu, exe, "--port", "0", "--backend", backend],
                                stdout=subprocess.PIPE, stderr=err, text=True)
    line = proc.stdout.readline()
    m = re.search(r" on [^ ]*:(\d+)", line)
    if not m:
        proc.wait(5)
        with open(err_path) as f:
            return None, (f.read().strip().splitlines() or [f"exited with status {proc.returncode}"])[-1]
    return proc, int(m.group(1))


def parse_wrk(text):
    """requests/s, p50 µs, p99 µs and errors from `wrk --latency` output."""
    def micros(value, unit):
        return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p = {q: re.search(rf"^\s+{q}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M) for q in ("50", "99")}
    errors = re.search(r"Socket errors: (.*)", text)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    if not rps or not all(p.values()):
        return None
    return {"rps": float(rps.group(1)), "p50_us": micros(*p["50"].groups()), "p99_us": micros(*p["99"].groups()),
            "errors": (errors.group(1) if errors else "") + (f" non-2xx {non2xx.group(1)}" if non2xx else "")}


def wrk_seconds(seconds):
    """wrk's -d takes whole seconds, minutes or hours (4.1 refuses "1.5s" and
    knows no "ms"): the window rounded up, at least one second."""
    return max(1, math.ceil(seconds))


def measure(how, cpus, conns, seconds):
    with tempfile.TemporaryDirectory(prefix="bench-http-") as workdir:
        proc, port = start(how, cpus[0], workdir)
        if proc is None:
            return {"na": port}
        try:
            url = f"http://127.0.0.1:{port}/"
            wrk = ["taskset", "-c", cpus[1], "wrk", "-t1", f"-c{conns}", "--latency", "--timeout", "10s"]
            subprocess.run(wrk + ["-d1s", url], capture_output=True, timeout=60)  # warm-up
            before = cpu_seconds(proc.pid)
            out = subprocess.run(wrk + [f"-d{seconds}s", url], capture_output=True, text=True,
                                 timeout=seconds + 60)
            used = cpu_seconds(proc.pid) - before
            r = parse_wrk(out.stdout)
            if r is None:
                return {"failed": (out.stderr.strip() or out.stdout.strip() or "wrk printed nothing")[-150:]}
            r["cpu_us_per_req"] = used * 1e6 / max(1.0, r["rps"] * seconds)
            return r
        finally:
            proc.kill()
            proc.wait()


def run(build, cpus, quiet, rounds, seconds, conn_cells=CONNECTIONS, log=print):
    """Measures every server, rounds interleaved; returns Markdown lines."""
    if not shutil.which("wrk"):
        return ["### HTTP: wrk against http_hello", "", "n/a: wrk not installed (apt-get install wrk)", ""]
    table = servers(build)
    names = [n for n, _ in table]
    ref = "nginx" if shutil.which("nginx") or os.path.exists("/usr/sbin/nginx") else "cosock epoll"
    seconds = wrk_seconds(seconds)
    results = {(n, c): [] for n in names for c in conn_cells}
    for rnd in range(rounds):
        for conns in conn_cells:
            measured = {}
            for name, how in table[rnd % len(table):] + table[:rnd % len(table)]:
                quiet.wait()
                measured[name] = r = measure(how, cpus, conns, seconds)
                shown = r.get("na") or r.get("failed") or f"{r['rps']:,.0f} req/s"
                log(f"http round {rnd + 1} wrk -c{conns} {name}: {shown}")
            for name, r in measured.items():
                results[(name, conns)].append((r, measured.get(ref, {})))
    return table_lines(names, ref, conn_cells, results, seconds)


def table_lines(names, ref, conn_cells, results, seconds):
    from statistics import median
    lines = []
    for conns in conn_cells:
        lines += [f"### HTTP: wrk -t1 -c{conns} against http_hello", "",
                  f"wrk -d{seconds}s per run; (×r) = ratio to {ref} in the same round.", "",
                  "| server | requests/s | p50 µs | p99 µs | server CPU µs/request | wrk errors |",
                  "| --- | --- | --- | --- | --- | --- |"]
        for name in names:
            runs = results[(name, conns)]
            done = [(r, rf) for r, rf in runs if "rps" in r]
            if not done:
                r = runs[0][0] if runs else {"na": "not run"}
                lines.append(f"| {name} | {'n/a' if 'na' in r else 'failed'}: {r.get('na') or r.get('failed')} |")
                continue
            cells = []
            for key, digits in (("rps", 0), ("p50_us", 0), ("p99_us", 0), ("cpu_us_per_req", 2)):
                value = median(r[key] for r, _ in done)
                ratios = [r[key] / rf[key] for r, rf in done if rf.get(key)]
                cells.append(f"{value:,.{digits}f}" + (f" (×{median(ratios):.2f})" if ratios else ""))
            errors = "; ".join(sorted({r["errors"].strip() for r, _ in done if r["errors"].strip()})) or "none"
            lines.append(f"| {name} | " + " | ".join(cells) + f" | {errors} |")
        lines.append("")
    return lines
