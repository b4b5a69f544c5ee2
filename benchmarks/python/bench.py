#!/usr/bin/env python3
"""Python servers on one CPU: Haywire (WSGI, ASGI, native) against Granian (same
interface; RSGI for native), uvicorn (httptools + uvloop, ASGI) and gunicorn (gthread,
WSGI). Run through benchmarks/python/run.sh, which makes the venv.

Rows: a scenario (wrk script) and an endpoint. pipe16 and ka run hello and json; ka also
runs browser (hello asked with the fourteen headers a browser sends with a page request,
where wrk sends one), stream (1 MiB in 16 pieces of 64 KiB: WSGI generator, ASGI
more_body, RSGI response_stream; the native API has no streamed response, so
haywire-native sits it out) and django (benchsite/, an unchanged `startproject` with one
JSON view, WSGI and ASGI servers only); mixed has its own paths.

haywire-rust is the floor: haywire-wsgi's worker with every row's answer but mixed's
sent by stock routes in Rust (no_python.toml, plus a fixed 1 MiB body for stream), so no
request enters Python; the report sets each interface's CPU per request against it, and
against it plus the app alone (app_alone.py: the app's own CPU per request, called in
process with no server, measured before the rounds on the first server CPU).

Granian runs as its own benchmarks run it: WSGI both with `--blocking-threads 1` and with
its default (each a measured entry of its own), `--http1-pipeline-flush` in pipe16; the
comparison takes the better Granian entry per row and names it.

For every row, `runs` times over, every entry in an order shuffled per round (so a slow
spell of a shared machine lands on every server alike): start the server under
`taskset -c` (n workers on the first n of --server-cpus), check one answer, a warm-up, one
measured wrk run under `taskset -c WRK_CPUS` (its CPU time through
benchmarks/lib/cpu_time.py), the server's CPU time (its whole process tree), a Haywire
worker's Python thread's run time (schedstat) and peak RSS from /proc, stop it. The runs go to a raw TSV in benchmarks/lib/results.py's format; the
medians, the clean-run rule and the ratios come from there.

  --workers 1,2 --server-cpus 0-1   every entry at 1 and at 2 workers (2 CPUs), and a
                                    table of req/s at n workers ÷ at 1 (see README)
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "benchmarks" / "lib"))
import results as R  # noqa: E402  benchmarks/lib/results.py
from serverproc import status_kib  # noqa: E402


# The interpreter of the venv --before-venv names: an older Haywire build measured in the
# same rounds as the current one (the "-before" entries).
BEFORE_PYTHON: list[str] = []


def haywire(interface: str, before: bool = False):
    # The loop is named, as for Granian and uvicorn: with `auto` a venv without uvloop
    # (a --before-venv, say) would quietly run asyncio's loop and tilt the comparison;
    # named, such an entry fails its start check instead.
    loop = [] if interface == "wsgi" else ["--loop", "uvloop"]
    return lambda port, app, workers: [BEFORE_PYTHON[0] if before else sys.executable, "-m", "haywire",
                                       "--interface", interface, *loop,
                                       "--workers", str(workers), "--address", "127.0.0.1",
                                       "--port", str(port), "--log-level", "warning", app]


def haywire_rust(port, app, workers):
    """haywire-wsgi with no_python.toml's stock routes answering in Rust."""
    return [*haywire("wsgi")(port, app, workers), "--config", str(RUST_CONFIG)]


# haywire-rust's config: no_python.toml with /stream added (write_rust_config).
RUST_CONFIG = Path(f"/tmp/haywire-pybench-no-python-{os.getpid()}.toml")


def write_rust_config() -> None:
    """Writes RUST_CONFIG: no_python.toml and a /stream route with a fixed body of the
    stream row's size, too large to keep in that file."""
    RUST_CONFIG.write_text((HERE / "no_python.toml").read_text() +
                           f'\n[[route]]\nhandler = "text"\npath = "/stream"\nbody = "{"x" * STREAM_BYTES}"\n'
                           'content_type = "application/octet-stream"\n')


def granian(interface: str):
    return lambda port, app, workers: [str(BIN / "granian"), "--interface", interface, "--workers",
                                       str(workers), "--http", "1", "--no-ws", "--log-level", "warning",
                                       *(["--loop", "uvloop"] if interface != "wsgi" else []),
                                       "--host", "127.0.0.1", "--port", str(port), app]


def gunicorn(port, app, workers):
    return [str(BIN / "gunicorn"), "-w", str(workers), "-k", "gthread", "--threads", "1",
            "--keep-alive", "75", "--log-level", "warning", "-b", f"127.0.0.1:{port}", app]


def uvicorn(port, app, workers):
    return [str(BIN / "uvicorn"), "--workers", str(workers), "--http", "httptools", "--loop", "uvloop",
            "--no-access-log", "--log-level", "warning", "--host", "127.0.0.1", "--port", str(port), app]


# Granian's configurations (label -> extra flags in a row's scenario), as its own
# benchmarks run it; every row adds --http1-pipeline-flush in pipe16. The labels stay the
# same across rows, so an entry is one column of the chart.
def pipeline_flush(scenario: str) -> list[str]:
    return ["--http1-pipeline-flush"] if scenario == "pipe16" else []


def granian_wsgi_configs(scenario: str) -> dict[str, list[str]]:
    return {"bt1": ["--blocking-threads", "1", *pipeline_flush(scenario)], "default": pipeline_flush(scenario)}


def granian_async_configs(scenario: str) -> dict[str, list[str]]:
    return {"": pipeline_flush(scenario)}


CONFIG_LEGEND = {
    "bt1": "`--blocking-threads 1`",
    "default": "Granian's default blocking threads",
    "pipe16": "every Granian entry with `--http1-pipeline-flush`",
}


@dataclass(frozen=True)
class Server:
    interface: str  # the comparison group: wsgi, asgi or native
    app: str  # which app it serves: wsgi, asgi, native or rsgi
    command: object  # (port, app target, workers) -> argv
    configs: object = None  # scenario -> {label: extra flags}; None: one plain config


SERVERS = {
    "haywire-wsgi": Server("wsgi", "wsgi", haywire("wsgi")),
    "granian-wsgi": Server("wsgi", "wsgi", granian("wsgi"), granian_wsgi_configs),
    "gunicorn": Server("wsgi", "wsgi", gunicorn),
    "haywire-asgi": Server("asgi", "asgi", haywire("asgi")),
    "granian-asgi": Server("asgi", "asgi", granian("asgi"), granian_async_configs),
    "uvicorn": Server("asgi", "asgi", uvicorn),
    "haywire-native": Server("native", "native", haywire("native")),
    "haywire-rust": Server("rust", "rust", haywire_rust),
    "granian-rsgi": Server("native", "rsgi", granian("rsgi"), granian_async_configs),
    "haywire-wsgi-before": Server("wsgi", "wsgi", haywire("wsgi", before=True)),
    "haywire-asgi-before": Server("asgi", "asgi", haywire("asgi", before=True)),
    "haywire-native-before": Server("native", "native", haywire("native", before=True)),
}
INTERFACES = {"wsgi": "WSGI", "asgi": "ASGI", "native": "native (Granian: RSGI)"}
HAYWIRE = {"wsgi": "haywire-wsgi", "asgi": "haywire-asgi", "native": "haywire-native"}
GRANIAN = {"wsgi": "granian-wsgi", "asgi": "granian-asgi", "native": "granian-rsgi"}

TINY = {"wsgi": "apps:wsgi_app", "asgi": "apps:asgi_app", "native": "apps:native_app", "rsgi": "apps:rsgi_app"}
# haywire-rust's app is never called on the rows it runs in (its stock routes answer).
WITH_RUST = dict(TINY, rust="apps:wsgi_app")
DJANGO = {"wsgi": "benchsite.wsgi:application", "asgi": "benchsite.asgi:application",
          "rust": "benchsite.wsgi:application"}
# The app alone is not measured here: Django's ASGI handler runs the view in a thread
# through asgiref, whose cost depends on the server's own sync-thread arrangement (every
# ASGI server's differs), so no server-free figure bounds it.
NO_APP_ALONE = {("django", "asgi")}
STREAM_BYTES = 16 * 65536
# What Firefox sends with a page request (a session's cookie among them): the headers
# each server turns into an environ or a scope, where wrk's requests carry only Host.
BROWSER_HEADERS = (
    ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"),
    ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
    ("Accept-Language", "en-US,en;q=0.5"),
    ("Accept-Encoding", "gzip, deflate, br, zstd"),
    ("Referer", "http://127.0.0.1/"),
    ("Cookie", "csrftoken=Vr4bTq0kLx2mYw8ZpN3sA6dC; sessionid=x7k2m9q4w1e8r5t3y6u0i2o9p4a7s1d"),
    ("Connection", "keep-alive"),
    ("Upgrade-Insecure-Requests", "1"),
    ("Sec-Fetch-Dest", "document"),
    ("Sec-Fetch-Mode", "navigate"),
    ("Sec-Fetch-Site", "same-origin"),
    ("Sec-Fetch-User", "?1"),
    ("Priority", "u=0, i"),
    ("DNT", "1"),
)
JSON_BODY = {"message": "Hello, World!"}


@dataclass(frozen=True)
class Endpoint:
    path: str
    text: str
    scenarios: tuple[str, ...]
    apps: dict  # app kind -> target; a server whose kind is missing sits the row out
    expect: object  # body -> whether it is the right answer
    headers: tuple = ()  # (name, value) wrk adds to every request (ka)


ENDPOINTS = {
    "hello": Endpoint("/", "`GET /` -> `hello world`", ("pipe16", "ka"), WITH_RUST,
                      lambda b: b == b"hello world"),
    "json": Endpoint("/json", "`GET /json` -> a small JSON object, serialized per request (by the"
                     " app; haywire-rust sends a fixed one)", ("pipe16", "ka"), WITH_RUST,
                     lambda b: json.loads(b) == JSON_BODY),
    "browser": Endpoint("/", "`GET /` with a browser's 14 request headers (Firefox's for a page, a"
                        " session cookie among them) -> `hello world`", ("ka",), WITH_RUST,
                        lambda b: b == b"hello world", BROWSER_HEADERS),
    "stream": Endpoint("/stream", "`GET /stream` -> 1 MiB streamed in 16 pieces of 64 KiB, chunked (no"
                       " Content-Length); the native API has no streamed response; haywire-rust sends a fixed"
                       " 1 MiB body", ("ka",),
                       {k: v for k, v in WITH_RUST.items() if k != "native"}, lambda b: len(b) == STREAM_BYTES),
    "django": Endpoint("/json", "`GET /json` on benchsite/ (unchanged `django-admin startproject`, default"
                       " middleware, DEBUG off) -> `JsonResponse`; haywire-rust sends its fixed JSON",
                       ("ka",), DJANGO,
                       lambda b: json.loads(b) == JSON_BODY),
}
SCENARIOS = {
    "pipe16": "pipelined GET, depth 16 (latency per batch of 16)",
    "ka": "keep-alive, one request at a time per connection",
    "mixed": "keep-alive, in turn GET /users/<n>, GET /nope (404, expected), POST /echo 1 KiB",
}


@dataclass(frozen=True)
class Entry:
    """One measured server configuration in one row."""
    name: str  # unique within the row: server[config]@Nw
    server: str
    config: str
    flags: tuple[str, ...]
    workers: int


@dataclass(frozen=True)
class Row:
    scenario: str
    endpoint: str  # "mixed" for the mixed scenario

    @property
    def key(self) -> str:
        return self.scenario if self.scenario == "mixed" else f"{self.scenario}/{self.endpoint}"

    @property
    def apps(self) -> dict:
        return TINY if self.scenario == "mixed" else ENDPOINTS[self.endpoint].apps


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


def ticks(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except (OSError, IndexError, ValueError):
            pass
    return total


def python_thread_ns(workers: list[int]) -> int:
    """The run time of the main threads of `workers` (Haywire's Python threads), in ns:
    the part of a Haywire worker's CPU that the Python side spends, apart from the shard
    thread's (schedstat counts every nanosecond, where utime/stime count ticks)."""
    total = 0
    for p in workers:
        try:
            total += int(Path(f"/proc/{p}/task/{p}/schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            pass
    return total


def peak_rss_kib(pids: list[int]) -> int:
    total = 0
    for p in pids:
        try:
            total += status_kib(p, "VmHWM")
        except (OSError, RuntimeError):
            pass
    return total


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        pids = tree(proc.pid)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            for p in reversed(pids):
                try:
                    os.kill(p, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            proc.wait(5)


def cpu_list(text: str) -> list[int]:
    cpus: list[int] = []
    for part in text.split(","):
        a, _, b = part.partition("-")
        cpus += [c for c in range(int(a), int(b or a) + 1) if c not in cpus]
    return cpus


def wrk_command(args, row: Row, port: int, seconds: int) -> list[str]:
    url = f"http://127.0.0.1:{port}"
    base = ["taskset", "-c", args.wrk_cpus, "wrk", f"-t{args.wrk_threads}", f"-c{args.connections}",
            f"-d{seconds}s", "--timeout", "4s"]
    if row.scenario == "pipe16":
        return base + ["-s", "benchmarks/pipelined_get.lua", url + ENDPOINTS[row.endpoint].path, "--", "16"]
    if row.scenario == "ka":
        endpoint = ENDPOINTS[row.endpoint]
        headers = [flag for name, value in endpoint.headers for flag in ("-H", f"{name}: {value}")]
        return base + headers + ["-s", "benchmarks/wrk/keepalive.lua", url + endpoint.path]
    return base + ["-s", "benchmarks/wrk/mixed.lua", url + "/"]


def parse_result(output: str) -> dict[str, str] | None:
    for line in output.splitlines():
        if line.startswith("RESULT "):
            return dict(f.split("=", 1) for f in line.split()[1:])
    return None


def check_answer(port: int, row: Row) -> str | None:
    """One request before the warm-up: None when the answer is right, else what is wrong
    (a server that answers wrongly would be measured doing something else)."""
    if row.scenario == "mixed":
        path, expect = "/users/1", (lambda b: b == b"hello world")
    else:
        path, expect = ENDPOINTS[row.endpoint].path, ENDPOINTS[row.endpoint].expect
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        conn.request("GET", path)
        answer = conn.getresponse()
        body = answer.read()
        conn.close()
    except (OSError, http.client.HTTPException) as e:
        return f"GET {path}: {e!r}"
    try:
        good = answer.status == 200 and expect(body)
    except ValueError:
        good = False
    return None if good else f"GET {path}: {answer.status}, {len(body)} bytes: {body[:80]!r}"


def entries_for(row: Row, servers: list[str], workers: list[int]) -> list[Entry]:
    out = []
    for server in servers:
        spec = SERVERS[server]
        if spec.app not in row.apps:
            continue
        configs = spec.configs(row.scenario) if spec.configs else {"": []}
        for n in workers:
            for label, flags in configs.items():
                name = server + (f"[{label}]" if label else "") + (f"@{n}w" if len(workers) > 1 else "")
                out.append(Entry(name, server, label, tuple(flags), n))
    return out


def measure(args, row: Row, entry: Entry, rnd: int, port: int, env, raw, notes, checked) -> bool:
    """One measured run of `entry` in `row`, appended to `raw`; False when the server
    failed (it then sits out the rest of the row)."""
    cpus = cpu_list(args.server_cpus)[:entry.workers]
    spec = SERVERS[entry.server]
    command = ["taskset", "-c", ",".join(map(str, cpus))] + spec.command(port, row.apps[spec.app], entry.workers)
    command += list(entry.flags)
    deadline = time.monotonic() + 5
    while port_open(port) and time.monotonic() < deadline:
        time.sleep(0.1)
    log_path = f"/tmp/haywire-pybench-{entry.server}.log"
    began = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(command, cwd=HERE, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while not port_open(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                tail = Path(log_path).read_text(errors="replace").strip().splitlines()[-5:]
                notes.append(f"{entry.name} did not start in {row.key}: {' / '.join(tail) or 'no output'}")
                print(f"    did not start; see {log_path}", file=sys.stderr)
                return False
            time.sleep(0.1)
        time.sleep(0.3 * entry.workers)  # every worker listening, not just the first
        started = time.monotonic() - began
        if (entry.name, row.key) not in checked:
            problem = check_answer(port, row)
            if problem:
                notes.append(f"{entry.name} answered wrongly in {row.key}, left out: {problem}")
                print(f"    wrong answer: {problem}", file=sys.stderr)
                return False
            checked.add((entry.name, row.key))
        wrk_env = dict(env, WRK_CONNECTIONS=str(args.connections))
        subprocess.run(wrk_command(args, row, port, args.warmup), capture_output=True, env=wrk_env)
        pids = tree(proc.pid)
        before = ticks(pids)
        # Haywire's workers are the supervisor's children; each one's main thread runs Python.
        haywire_workers = pids[1:] if entry.server.startswith("haywire") else []
        python_before = python_thread_ns(haywire_workers)
        cpu_file = f"/tmp/haywire-pybench-wrk-{os.getpid()}.cpu"
        out = subprocess.run([sys.executable, str(ROOT / "benchmarks/lib/cpu_time.py"), cpu_file,
                              str(args.duration + 30)] + wrk_command(args, row, port, args.duration),
                             capture_output=True, text=True, env=wrk_env)
        pids = tree(proc.pid)
        after = ticks(pids)
        python_ns = python_thread_ns(haywire_workers) - python_before if haywire_workers else "-"
        result = parse_result(out.stdout)
        if result is None:
            notes.append(f"{entry.name} {row.key} run {rnd}: wrk gave no result")
            print(f"    wrk gave no result: {out.stdout}{out.stderr}", file=sys.stderr)
            return True
        result.update(server_ticks=str(after - before), clk_tck=str(os.sysconf("SC_CLK_TCK")),
                      server_cpus=str(len(cpus)), wrk_cpu_s=Path(cpu_file).read_text().strip(),
                      rss_kib=str(peak_rss_kib(pids)), parks="-", turns="-", python_ns=str(python_ns))
        raw.write(f"run\t{entry.name}\t{row.key}\t{rnd}\t{' '.join(f'{k}={v}' for k, v in result.items())}\n")
        raw.flush()
        rps = int(result["requests"]) / (int(result["duration_us"]) / 1e6)
        print(f"    {rps:,.0f} req/s, p99 {float(result['p99_us']) / 1000:.2f} ms, non2xx {result['non2xx']},"
              f" errors {result['socket_errors']}; started in {started:.1f} s", file=sys.stderr, flush=True)
        return True
    finally:
        stopping = time.monotonic()
        stop(proc)
        print(f"    stopped in {time.monotonic() - stopping:.1f} s", file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    plain = [s for s in SERVERS if not s.endswith("-before")]
    parser.add_argument("--servers", default=",".join(plain),
                        help=f"[{','.join(plain)}]; with --before-venv also haywire-*-before")
    parser.add_argument("--before-venv", metavar="DIR",
                        help="a venv with an older haywire installed: the haywire-*-before entries run it,"
                             " and the report compares them with the current build")
    parser.add_argument("--scenarios", default="pipe16,ka,mixed")
    parser.add_argument("--endpoints", default=",".join(ENDPOINTS),
                        help="[hello,json,browser,stream,django]; browser, stream and django run in ka only")
    parser.add_argument("--server-cpus", default="1", help="n workers run on the first n of these [1]")
    parser.add_argument("--wrk-cpus", default="0")
    parser.add_argument("--wrk-threads", type=int, default=1)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--workers", default="1", help="worker counts, e.g. 1,2: every entry at each [1]")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--port", type=int, default=19000)
    parser.add_argument("--seed", type=int, default=None, help="the round order's shuffle [random]")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--quick", action="store_true", help="--runs 1 --duration 2 --warmup 1")
    args = parser.parse_args()
    if args.quick:
        args.runs, args.duration, args.warmup = 1, 2, 1
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            parser.error(f"unknown server {s}")
        if s.endswith("-before") and not args.before_venv:
            parser.error(f"{s} needs --before-venv")
    if args.before_venv:
        BEFORE_PYTHON.append(str(Path(args.before_venv).resolve() / "bin" / "python"))
        if not os.access(BEFORE_PYTHON[0], os.X_OK):
            parser.error(f"--before-venv {args.before_venv}: no bin/python there")
    workers = sorted({int(n) for n in args.workers.split(",")})
    if workers[0] < 1 or workers[-1] > len(cpu_list(args.server_cpus)):
        parser.error(f"--workers {args.workers} needs as many CPUs in --server-cpus ({args.server_cpus})")
    seed = args.seed if args.seed is not None else random.randrange(1 << 16)
    rows = []
    for scenario in args.scenarios.split(","):
        if scenario not in SCENARIOS:
            parser.error(f"unknown scenario {scenario}")
        if scenario == "mixed":
            rows.append(Row(scenario, "mixed"))
            continue
        for endpoint in args.endpoints.split(","):
            if endpoint not in ENDPOINTS:
                parser.error(f"unknown endpoint {endpoint}")
            if scenario in ENDPOINTS[endpoint].scenarios:
                rows.append(Row(scenario, endpoint))
    plan = [(row, entries_for(row, servers, workers)) for row in rows]
    total = sum(len(entries) for _, entries in plan) * args.runs
    per_run = args.warmup + args.duration + 1.5  # + starting, checking and stopping the server
    print(f"{total} measured runs, about {total * per_run / 60:.0f} minutes", file=sys.stderr)

    os.chdir(ROOT)
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    raw_path = out_dir / ("latest-quick.tsv" if args.quick else "latest.tsv")
    env = dict(os.environ, PYTHONPATH=str(HERE))
    notes: list[str] = []
    checked: set = set()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "diff", "--quiet", "HEAD"]).returncode != 0
    flags = [
        ("command", "benchmarks/python/run.sh " + " ".join(sys.argv[1:])),
        ("commit", (commit or "unknown") + (" with uncommitted changes" if dirty else "")),
        ("server-cpus", f"{args.server_cpus} (n workers on the first n)"),
        ("workers", args.workers),
        ("wrk-cpus", args.wrk_cpus),
        ("wrk-threads", str(args.wrk_threads)),
        ("connections", str(args.connections)),
        ("duration", f"{args.duration}s after a {args.warmup} s warm-up"),
        ("runs", f"{args.runs} per entry, in rounds, entries shuffled each round (seed {seed})"),
        ("load average at start", " ".join(open("/proc/loadavg").read().split()[:3])),
        ("versions", versions()),
    ]
    if BEFORE_PYTHON:
        flags.append(("before", f"{args.before_venv}: {before_version()}"))
    step = 0
    with open(raw_path, "w") as raw:
        for name, value in flags:
            raw.write(f"flag\t{name}\t{value}\n")
        for row in rows:
            raw.write(f"desc\t{row.key}\t{describe(row)}\n")
        raw.flush()
        if "haywire-rust" in servers:
            write_rust_config()
            measure_apps_alone(args, rows, env, raw, notes)
        for row, entries in plan:
            failed: set[str] = set()
            for rnd in range(1, args.runs + 1):
                order = list(entries)
                random.Random(f"{seed}:{row.key}:{rnd}").shuffle(order)
                for i, entry in enumerate(order):
                    step += 1
                    if entry.name in failed:
                        continue
                    print(f"[{step}/{total}] {row.key} run {rnd}: {entry.name}", file=sys.stderr, flush=True)
                    if not measure(args, row, entry, rnd, args.port + i, env, raw, notes, checked):
                        failed.add(entry.name)
        for note in notes:
            raw.write(f"note\t{note}\n")
    Path(f"/tmp/haywire-pybench-wrk-{os.getpid()}.cpu").unlink(missing_ok=True)
    RUST_CONFIG.unlink(missing_ok=True)
    render_report(raw_path, rows, plan, workers, args.quick, out_dir)
    return 0


def measure_apps_alone(args, rows, env, raw, notes) -> None:
    """Each row's app alone (app_alone.py) per interface on the first server CPU, median
    of three processes, as `app` lines of the raw TSV (endpoint, interface, CPU µs/req)."""
    cpu = str(cpu_list(args.server_cpus)[0])
    for endpoint in dict.fromkeys(row.endpoint for row in rows if row.scenario != "mixed"):
        for interface in HAYWIRE:
            target = ENDPOINTS[endpoint].apps.get(interface)
            if target is None or (endpoint, interface) in NO_APP_ALONE:
                continue
            print(f"app alone: {endpoint} {interface}", file=sys.stderr, flush=True)
            command = ["taskset", "-c", cpu, sys.executable, str(HERE / "app_alone.py"), interface, target,
                       ENDPOINTS[endpoint].path]
            figures = []
            for _ in range(3):
                out = subprocess.run(command, cwd=HERE, env=env, capture_output=True, text=True)
                if out.returncode != 0:
                    notes.append(f"app alone failed for {endpoint} {interface}: {out.stderr.strip()[-200:]}")
                    break
                figures.append(float(out.stdout))
            else:
                raw.write(f"app\t{endpoint}\t{interface}\t{statistics.median(figures):.2f}\n")
                raw.flush()


def apps_alone(raw_path: Path) -> dict[tuple[str, str], float]:
    """The raw TSV's `app` lines: (endpoint, interface) -> the app alone's CPU µs/req."""
    found = {}
    for line in raw_path.read_text().splitlines():
        parts = line.split("\t")
        if parts[0] == "app":
            found[(parts[1], parts[2])] = float(parts[3])
    return found


def describe(row: Row) -> str:
    if row.scenario == "mixed":
        return SCENARIOS["mixed"] + "."
    return f"{SCENARIOS[row.scenario]}; {ENDPOINTS[row.endpoint].text}."


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for package in ("haywire", "granian", "uvicorn", "gunicorn", "uvloop", "httptools", "django"):
        try:
            found.append(f"{package} {version(package)}")
        except PackageNotFoundError:
            pass
    # An interpreter built without PGO and LTO (pyenv's default, say) runs Python code
    # slower than a distribution's, which moves every ratio against the Rust floor.
    built = sysconfig.get_config_var("CONFIG_ARGS") or ""
    build = "PGO" if "--enable-optimizations" in built else "no PGO"
    return ", ".join(found) + f"; Python {sys.version.split()[0]} ({build})"


def before_version() -> str:
    out = subprocess.run([BEFORE_PYTHON[0], "-c", "from importlib.metadata import version;"
                          " print(version('haywire'))"], capture_output=True, text=True)
    return f"haywire {out.stdout.strip() or 'unknown'}"


def render_report(raw_path: Path, rows, plan, workers, quick: bool, out_dir: Path) -> None:
    flags, descs, notes, runs = R.parse(raw_path)
    table = R.summarize(runs)
    alone = apps_alone(raw_path)
    names = [e.name for _, entries in plan for e in entries]
    keys = [row.key for row in rows]
    R.write_report(str(out_dir), quick, table, list(dict.fromkeys(names)), keys, notes,
                   lambda info, notes, chart: markdown(info, flags, descs, notes, table, rows, plan,
                                                       workers, quick, chart, alone))


def best(table, row_key: str, entries, server: str, workers: int):
    """The entry of `server` at `workers` with the highest median req/s in the row, and its
    summary: Granian's better configuration."""
    found = [(table[(e.name, row_key)], e) for e in entries
             if e.server == server and e.workers == workers and (e.name, row_key) in table]
    found = [(s, e) for s, e in found if s["rps"]]
    return max(found, key=lambda se: se[0]["rps"], default=(None, None))


def ratio(a, b, spec=".2f"):
    return "–" if not a or not b else format(a / b, spec)


def before_and_after(table, flags, plan) -> list[str]:
    """Each Haywire entry against its -before twin (the older build --before-venv names)."""
    lines = []
    for row, entries in plan:
        for e in entries:
            twin = e.name.replace(e.server, e.server + "-before", 1)
            after, before = table.get((e.name, row.key)), table.get((twin, row.key))
            if e.server in HAYWIRE.values() and after and before:
                lines.append(f"| {row.key} | {e.name} | {R.rps_ratio(after, before)} | {R.cpu_ratio(after, before)} |"
                             f" {R.fmt(before['cpu'], '.2f')} → {R.fmt(after['cpu'], '.2f')} |"
                             f" {R.fmt(before['python'], '.2f')} → {R.fmt(after['python'], '.2f')} |"
                             f" {R.fmt_us(before['p99'])} → {R.fmt_us(after['p99'])} |")
    if not lines:
        return []
    return ["## Haywire before and after", "",
            "Each Haywire entry ÷ its `-before` twin (the older build in the venv that `--before-venv`"
            " names; see **before** under Flags), same rounds: req/s above 1 and CPU/req below 1 favour"
            " the newer build. **Python thread**: the workers' Python threads' run time per request"
            " (schedstat, so it counts every nanosecond, not ticks), the steadier figure when a change"
            " is on the Python side.", "",
            "| row | entry | req/s | CPU/req | CPU µs/req before → after |"
            " Python thread µs/req before → after | p99 before → after |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: |", *lines, "", R.caption(flags), ""]


def floor(table, flags, plan, workers: int, alone) -> list[str]:
    """What the Python layer costs and could at most win: haywire-rust (the same server
    answering in Rust) and the app alone against each interface's Haywire and best
    Granian entry."""
    lines = []
    for row, entries in plan:
        base, _ = best(table, row.key, entries, "haywire-rust", workers)
        if not base or not base["cpu"]:
            continue
        for interface, ours in HAYWIRE.items():
            mine, _ = best(table, row.key, entries, ours, workers)
            theirs, entry = best(table, row.key, entries, GRANIAN[interface], workers)
            if not mine or not theirs or not mine["cpu"] or not theirs["cpu"]:
                continue
            app = alone.get((row.endpoint, interface))
            # Unmeasured where it is no bound (NO_APP_ALONE): no bridge or ceiling then.
            least = None if (row.endpoint, interface) in NO_APP_ALONE else base["cpu"] + (app or 0)
            uvi = best(table, row.key, entries, "uvicorn", workers)[0] if interface == "asgi" else None
            lines.append(f"| {row.key} | {INTERFACES[interface]} | {R.fmt(base['cpu'], '.2f')} |"
                         f" {R.fmt(app, '.2f')} | {R.fmt(mine['cpu'], '.2f')} |"
                         f" {R.fmt(least and mine['cpu'] - least, '.2f')} | {R.fmt(mine['python'], '.2f')} |"
                         f" {entry.name} {R.fmt(theirs['cpu'], '.2f')} | {ratio(theirs['cpu'], least)} |"
                         f" {ratio(uvi and uvi['cpu'], least)} |")
    if not lines:
        return []
    return ["## The floor: no Python at all", "",
            "**haywire-rust** is haywire-wsgi's server and process model with each row's answer sent by"
            " stock routes in Rust (benchmarks/python/no_python.toml; for stream a fixed 1 MiB body, for"
            " django the fixed JSON): no request enters Python. Its CPU per request is what any Python"
            " interface on this server costs at least: the kernel's TCP work and Haywire's HTTP."
            " **app alone**: the app's own CPU per request, called in one process with no server"
            " (benchmarks/python/app_alone.py, median of three, on the first server CPU, before the"
            " rounds; for the native API its handler and the turning of its value into a response,"
            " a dict into JSON); – for Django over ASGI (asgiref's sync thread costs what each"
            " server's thread arrangement makes it, so no server-free figure bounds it: no bridge or"
            " ceiling there). **bridge**: Haywire's CPU µs/req over the floor and the app alone: what carrying the"
            " request to the app and its answer back costs. **Python thread**: what the worker's Python"
            " thread itself runs per request (schedstat). **ceiling**: Granian's CPU/req ÷ (the floor +"
            " the app alone), the most req/s ÷ Granian a server-bound Haywire could reach if its bridge"
            " cost nothing; a ceiling under 1.5 means issue #18's req/s target cannot be met in that row"
            " on this machine by any work on the server's side. **ceiling ÷ uvicorn**: the same against"
            " uvicorn's CPU/req (ASGI), where the target is 2.", "",
            "| row | interface | floor CPU µs/req | app alone µs/req | Haywire CPU µs/req | bridge µs/req |"
            " Python thread µs/req | Granian entry, CPU µs/req | ceiling | ceiling ÷ uvicorn |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |", *lines, "", R.caption(flags), ""]


def markdown(info, flags, descs, notes, table, rows, plan, workers, quick, chart_name, alone) -> str:
    out = R.header("Python servers", info, flags, quick)
    out += [
        "",
        "Each measured run starts its server afresh under `taskset -c` (n workers on the first n"
        " server CPUs; Haywire pins worker k to the k-th), checks one answer, warms it up, then"
        " measures; wrk runs on the wrk CPUs. Runs go in rounds, the entries shuffled each round."
        " **req/s**: median of the clean runs. **p50/p99/p99.9**: of the median run, as measured"
        " (benchmarks/wrk/report.lua; in pipe16 per batch of 16). **CPU µs/req**: the server's whole"
        " process tree (supervisor + workers) user+system time over the run ÷ its requests, median"
        " of the clean runs. **peak RSS**: VmHWM summed over the tree, largest over the runs."
        " Granian's configurations: " + "; ".join(f"**{k}** {v}" for k, v in CONFIG_LEGEND.items()) + ".",
        "",
        R.RULES,
        "",
        "## Haywire against Granian and uvicorn",
        "",
        "Per row and interface, Haywire's figure against **the better Granian entry** (higher median"
        " req/s; named) and uvicorn (ASGI). Issue #18's targets: req/s ÷ Granian ≥ 1.5, CPU/req ÷"
        " Granian ≤ 1, p99 ≤ Granian's, req/s ÷ uvicorn ≥ 2; **misses** lists the ones not met."
        " **n/b**: one side was not the bottleneck (below"
        f" {R.BOTTLENECK_BUSY:.0%} of its CPUs busy), so its req/s are not compared.",
        "",
    ]
    for n in workers:
        if len(workers) > 1:
            out += [f"### {n} worker(s)", ""]
        out += ["| row | interface | Granian entry | req/s ÷ Granian | CPU/req ÷ Granian | p99 Haywire |"
                " p99 Granian | p99 ÷ Granian | req/s ÷ uvicorn | misses |",
                "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- |"]
        for row, entries in plan:
            for interface, ours in HAYWIRE.items():
                mine, _ = best(table, row.key, entries, ours, n)
                if not mine:
                    continue
                theirs, entry = best(table, row.key, entries, GRANIAN[interface], n)
                uvi = best(table, row.key, entries, "uvicorn", n)[0] if interface == "asgi" else None
                cells, misses = [], []
                if theirs:
                    rps = R.rps_ratio(mine, theirs)
                    cpu = R.cpu_ratio(mine, theirs)
                    p99 = ratio(mine["p99"], theirs["p99"])
                    misses += [m for m, bad in (("req/s", rps not in ("–", "n/b") and float(rps) < 1.5),
                                                ("CPU", cpu != "–" and float(cpu) > 1),
                                                ("p99", p99 != "–" and float(p99) > 1)) if bad]
                    cells = [entry.name, rps, cpu, R.fmt_us(mine["p99"]), R.fmt_us(theirs["p99"]), p99]
                else:
                    cells = ["–", "–", "–", R.fmt_us(mine["p99"]), "–", "–"]
                uv = R.rps_ratio(mine, uvi) if uvi else "–"
                if uv not in ("–", "n/b") and float(uv) < 2:
                    misses.append("÷ uvicorn")
                out.append(f"| {row.key} | {INTERFACES[interface]} | " + " | ".join(cells) +
                           f" | {uv} | {', '.join(misses) or 'none'} |")
        out += ["", R.caption(flags), ""]

    out += floor(table, flags, plan, workers[0], alone)
    out += before_and_after(table, flags, plan)
    if len(workers) > 1:
        out += ["## Workers", "",
                f"req/s at n workers (n CPUs) ÷ the same server's at {workers[0]} (issue #18: two workers ≥ 1.8×"
                " one); **n/b** when a run was not server-bound.", "",
                "| row | server | " + " | ".join(f"req/s {n}w" for n in workers) + " | " +
                " | ".join(f"{n}w ÷ {workers[0]}w" for n in workers[1:]) + " |",
                "| --- | --- |" + " ---: |" * (2 * len(workers) - 1)]
        for row, entries in plan:
            for base in dict.fromkeys(e.name.rsplit("@", 1)[0] for e in entries):
                rows_n = [table.get((f"{base}@{n}w", row.key)) for n in workers]
                if not rows_n[0]:
                    continue
                rates = [R.fmt(r["rps"] if r else None, ",.0f") for r in rows_n]
                ratios = [R.rps_ratio(r, rows_n[0]) if r else "–" for r in rows_n[1:]]
                out.append(f"| {row.key} | {base} | " + " | ".join(rates + ratios) + " |")
        out += ["", R.caption(flags), ""]

    out += ["## Every entry", ""]
    for row, entries in plan:
        out += [f"### {row.key}", "", descs.get(row.key, ""), "",
                "| entry | interface | req/s | p50 | p99 | p99.9 | CPU µs/req | server CPU busy |"
                " wrk CPU busy | peak RSS | clean runs |",
                "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for e in entries:
            s = table.get((e.name, row.key))
            if not s:
                out.append(f"| {e.name} | {SERVERS[e.server].interface} | no run |" + " – |" * 8)
                continue
            out.append(f"| {e.name} | {SERVERS[e.server].interface} | {R.fmt(s['rps'], ',.0f')} |"
                       f" {R.fmt_us(s['p50'])} | {R.fmt_us(s['p99'])} | {R.fmt_us(s['p999'])} |"
                       f" {R.fmt(s['cpu'], '.2f')} | {R.fmt_pct(s['busy'])} | {R.fmt_pct(s['wrk_busy'])} |"
                       f" {R.fmt_rss(s['rss'])} | {R.fmt_errors(s)} |")
        out += [""]
    names = list(dict.fromkeys(e.name for _, entries in plan for e in entries))
    out += R.runs_section(table, names, [r.key for r in rows], "row")
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in dict.fromkeys(notes)]
    if chart_name:
        out += ["", f"![req/s and server CPU per request, per row and entry]({chart_name})"]
    return "\n".join(out) + "\n"


if __name__ == "__main__":
    sys.exit(main())
