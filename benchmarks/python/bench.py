#!/usr/bin/env python3
"""Python servers on one CPU: Haywire (WSGI, ASGI, native) against Granian (same
interface; RSGI for native), uvicorn (httptools + uvloop, ASGI) and gunicorn (WSGI).
Run through benchmarks/python/run.sh, which makes the venv; see there for the flags.

For every scenario, `runs` times over, for every server in turn (interleaved, so a slow
spell of a shared machine lands on every server alike): start the server under
`taskset -c SERVER_CPUS` with one worker, wait for its port, a warm-up, one measured wrk
run under `taskset -c WRK_CPUS`, the server's CPU time (its whole process tree) from
/proc, stop it. Reports the median req/s, p99 and CPU per request.
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent

SERVERS = {
    # name: (interface, command builder)
    "haywire-wsgi": ("wsgi", lambda p: [sys.executable, "-m", "haywire", "--interface", "wsgi",
                                        "--workers", "1", "--address", "127.0.0.1", "--port", str(p), "apps:wsgi_app"]),
    "granian-wsgi": ("wsgi", lambda p: [str(BIN / "granian"), "--interface", "wsgi", "--workers", "1",
                                        "--http", "1", "--no-ws", "--host", "127.0.0.1", "--port", str(p),
                                        "apps:wsgi_app"]),
    "gunicorn": ("wsgi", lambda p: [str(BIN / "gunicorn"), "-w", "1", "-k", "gthread", "--threads", "1",
                                    "--keep-alive", "75", "-b", f"127.0.0.1:{p}", "apps:wsgi_app"]),
    "haywire-asgi": ("asgi", lambda p: [sys.executable, "-m", "haywire", "--interface", "asgi",
                                        "--workers", "1", "--address", "127.0.0.1", "--port", str(p), "apps:asgi_app"]),
    "granian-asgi": ("asgi", lambda p: [str(BIN / "granian"), "--interface", "asgi", "--workers", "1",
                                        "--http", "1", "--no-ws", "--loop", "uvloop", "--host", "127.0.0.1",
                                        "--port", str(p), "apps:asgi_app"]),
    "uvicorn": ("asgi", lambda p: [str(BIN / "uvicorn"), "--workers", "1", "--http", "httptools",
                                   "--loop", "uvloop", "--no-access-log", "--log-level", "warning",
                                   "--host", "127.0.0.1", "--port", str(p), "apps:asgi_app"]),
    "haywire-native": ("native", lambda p: [sys.executable, "-m", "haywire", "--interface", "native",
                                            "--workers", "1", "--address", "127.0.0.1", "--port", str(p),
                                            "apps:native_app"]),
    "granian-rsgi": ("native", lambda p: [str(BIN / "granian"), "--interface", "rsgi", "--workers", "1",
                                          "--http", "1", "--no-ws", "--loop", "uvloop", "--host", "127.0.0.1",
                                          "--port", str(p), "apps:rsgi_app"]),
}

SCENARIOS = {
    # name: (description, path, wrk script args builder)
    "pipe16": "pipelined GET, depth 16 (latency per batch of 16)",
    "ka": "keep-alive, one request at a time per connection",
    "mixed": "keep-alive, in turn GET /users/<n>, GET /nope (404, expected), POST /echo 1 KiB",
}
ENDPOINTS = {"hello": "/", "json": "/json"}


def port_open(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2):
            return True
    except OSError:
        return False


def tree(pid: int) -> list[int]:
    pids = [pid]
    try:
        children = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    except OSError:
        children = []
    for child in children:
        pids += tree(int(child))
    return pids


def ticks(pid: int) -> int:
    total = 0
    for p in tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            for p in reversed(tree(proc.pid)):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(5)


def wrk_command(args, scenario: str, endpoint: str, port: int, seconds: int) -> list[str]:
    url = f"http://127.0.0.1:{port}"
    base = ["taskset", "-c", args.wrk_cpus, "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}",
            f"-d{seconds}s", "--timeout", "4s"]
    if scenario == "pipe16":
        return base + ["-s", "benchmarks/pipelined_get.lua", url + ENDPOINTS[endpoint], "--", "16"]
    if scenario == "ka":
        return base + ["-s", "benchmarks/wrk/keepalive.lua", url + ENDPOINTS[endpoint]]
    return base + ["-s", "benchmarks/wrk/mixed.lua", url + "/"]


def parse_result(output: str) -> dict[str, float] | None:
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return {k: float(v) for k, v in (f.split("=") for f in line.split()[1:]) if k != "latency"}
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", default=",".join(SERVERS))
    parser.add_argument("--scenarios", default="pipe16,ka,mixed")
    parser.add_argument("--endpoints", default="hello,json")
    parser.add_argument("--server-cpus", default="1")
    parser.add_argument("--wrk-cpus", default="0")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--port", type=int, default=19000)
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--quick", action="store_true", help="--runs 1 --duration 2 --warmup 1")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 2, 1
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            parser.error(f"unknown server {s}")
    cases = []
    for scenario in args.scenarios.split(","):
        if scenario not in SCENARIOS:
            parser.error(f"unknown scenario {scenario}")
        if scenario == "mixed":
            cases.append((scenario, "mixed"))
        else:
            cases += [(scenario, e) for e in args.endpoints.split(",")]
    clk_tck = os.sysconf("SC_CLK_TCK")
    results: dict[tuple[str, str, str], list[dict[str, float]]] = {}
    env = dict(os.environ, PYTHONPATH=str(HERE))
    total = len(cases) * args.runs * len(servers)
    step = 0
    load = open("/proc/loadavg").read().split()[:3]
    os.chdir(ROOT)
    for scenario, endpoint in cases:
        for run in range(1, args.runs + 1):
            for i, server in enumerate(servers):
                step += 1
                port = args.port + i
                deadline = time.monotonic() + 5
                while port_open(port) and time.monotonic() < deadline:
                    time.sleep(0.1)
                command = ["taskset", "-c", args.server_cpus] + SERVERS[server][1](port)
                log = open(f"/tmp/haywire-pybench-{server}.log", "w")
                proc = subprocess.Popen(command, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
                try:
                    deadline = time.monotonic() + 20
                    while not port_open(port):
                        if proc.poll() is not None or time.monotonic() > deadline:
                            print(f"{server} did not start; see {log.name}", file=sys.stderr)
                            return 1
                        time.sleep(0.1)
                    time.sleep(0.3)
                    print(f"[{step}/{total}] {scenario}/{endpoint} run {run}: {server}", file=sys.stderr, flush=True)
                    subprocess.run(wrk_command(args, scenario, endpoint, port, args.warmup),
                                   capture_output=True, env=dict(env, WRK_CONNECTIONS=str(args.connections)))
                    before = ticks(proc.pid)
                    out = subprocess.run(wrk_command(args, scenario, endpoint, port, args.duration),
                                         capture_output=True, text=True,
                                         env=dict(env, WRK_CONNECTIONS=str(args.connections)))
                    after = ticks(proc.pid)
                    result = parse_result(out.stdout)
                    if result is None:
                        print(f"    wrk gave no result: {out.stdout}{out.stderr}", file=sys.stderr)
                        continue
                    result["cpu_s"] = (after - before) / clk_tck
                    rps = result["requests"] / (result["duration_us"] / 1e6)
                    print(f"    {rps:,.0f} req/s, p99 {result['p99_us'] / 1000:.2f} ms,"
                          f" non2xx {int(result['non2xx'])}, errors {int(result['socket_errors'])}",
                          file=sys.stderr, flush=True)
                    results.setdefault((server, scenario, endpoint), []).append(result)
                finally:
                    stop(proc)
                    log.close()
    report = render(args, servers, cases, results, load)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    name = "latest-quick.md" if args.quick else "latest.md"
    (out_dir / name).write_text(report)
    print(report)
    return 0


def render(args, servers, cases, results, load) -> str:
    cpu = "unknown"
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    versions = []
    for package in ("haywire", "granian", "uvicorn", "gunicorn", "uvloop", "httptools"):
        try:
            from importlib.metadata import version

            versions.append(f"{package} {version(package)}")
        except Exception:
            pass
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
    lines = [
        "# Python servers on one CPU",
        "",
        f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {cpu},"
        f" {os.cpu_count()} CPUs, Python {platform.python_version()}, load average at start {' '.join(load)}.",
        f"{', '.join(versions)}; {(wrk.stdout or wrk.stderr).splitlines()[0] if (wrk.stdout or wrk.stderr) else 'wrk'}.",
        "",
        f"Command: `benchmarks/python/run.sh {' '.join(sys.argv[1:])}`. Servers on CPU {args.server_cpus} with one worker"
        f" process, wrk on CPU {args.wrk_cpus} with {args.wrk_threads} thread(s), {args.connections} connections,"
        f" {args.duration} s per run after a {args.warmup} s warm-up, {args.runs} run(s) per server interleaved;"
        " the median run is shown. CPU per request is the server's whole process tree (supervisor + worker)"
        " user+system time over the measured run divided by its requests.",
        "",
        "Scenarios: " + "; ".join(f"**{k}**: {v}" for k, v in SCENARIOS.items()) + ".",
        "Endpoints: **hello** `GET /` -> `hello world`; **json** `GET /json` -> a small JSON object"
        " (serialized per request).",
        "",
        "| scenario | endpoint | server | interface | req/s | p99 (ms) | CPU µs/req | non-2xx | socket errors |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for scenario, endpoint in cases:
        for server in servers:
            runs = results.get((server, scenario, endpoint))
            if not runs:
                lines.append(f"| {scenario} | {endpoint} | {server} | {SERVERS[server][0]} | - | - | - | - | - |")
                continue
            rates = [r["requests"] / (r["duration_us"] / 1e6) for r in runs]
            median = sorted(zip(rates, range(len(runs))))[len(runs) // 2][1] if len(runs) % 2 else None
            chosen = runs[median] if median is not None else runs[max(range(len(runs)), key=lambda i: rates[i])]
            rps = statistics.median(rates)
            cpu_us = chosen["cpu_s"] / max(chosen["requests"], 1) * 1e6
            lines.append(
                f"| {scenario} | {endpoint} | {server} | {SERVERS[server][0]} | {rps:,.0f} |"
                f" {chosen['p99_us'] / 1000:.2f} | {cpu_us:.1f} | {int(chosen['non2xx'])} |"
                f" {int(chosen['socket_errors'])} |"
            )
    lines += [
        "",
        "p99 of a pipelined run is per batch of 16. With an even number of runs, req/s is the median"
        " of the runs and p99/CPU come from the faster run.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
