"""What benchmarks/report.py, benchmarks/tfb/report.py and benchmarks/scale_report.py
share: reading the raw results the harnesses write, the rules that make a comparison fair
(which runs count, when req/s may be compared), number formats, host facts, the chart and
writing the report files.

Raw results: one record per line, tab-separated, the first field its kind:
    flag  NAME VALUE                 a setting, shown under "Flags"
    desc  SCENARIO TEXT              what a scenario (or TechEmpower test) does
    note  TEXT                       shown under "Notes"
    run   SERVER SCENARIO ROUND k=v ...   one measured wrk run
A run's k=v fields: from benchmarks/wrk/report.lua requests, duration_us, p50_us, p99_us,
p999_us, socket_errors, non2xx, expected_non2xx, samples, latency; from the harness
server_ticks and clk_tck (the server's utime+stime over the run), server_cpus (how many CPUs
it may use), wrk_cpu_s (wrk's user+system seconds), rss_kib (its VmHWM after the run),
parks and turns (Haywire's event-loop counters over the run, `-` when not exposed),
python_ns (the Python workers' main threads' run time over the run, from schedstat, in
the Python benchmark's Haywire entries; `-` elsewhere) and, in TechEmpower runs, db_ticks (PostgreSQL's CPU for the server's own connections, `-` where a
test uses no database).
"""
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
from collections import defaultdict

# A server is the bottleneck of a run when it kept its CPUs at least this busy: only then
# does its req/s say what it can do, rather than what the load generator or a neighbour on
# the machine let it do.
BOTTLENECK_BUSY = 0.90


def parse(path):
    """(flags, descs, notes, runs): runs maps (server, scenario) to a list of run dicts."""
    flags, descs, notes = [], {}, []
    runs = defaultdict(list)
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            kind = parts[0]
            if kind == "flag":
                flags.append((parts[1], parts[2]))
            elif kind == "desc":
                descs[parts[1]] = parts[2]
            elif kind == "note":
                notes.append(parts[1])
            elif kind == "run":
                server, scenario, rnd = parts[1:4]
                fields = dict(kv.split("=", 1) for kv in parts[4].split())
                runs[(server, scenario)].append(run_of(rnd, fields))
                if fields.get("latency") == "wrk":
                    notes.append(f"{server} {scenario}: latency percentiles are wrk's own, "
                                 "with its coordinated-omission correction (see benchmarks/wrk/report.lua)")
    return flags, descs, notes, runs


def number(fields, key):
    value = fields.get(key, "-")
    return None if value in ("-", "") else float(value)


def run_of(rnd, fields):
    requests = int(fields["requests"])
    seconds = int(fields["duration_us"]) / 1e6
    clk = int(fields["clk_tck"])
    server_s = int(fields["server_ticks"]) / clk
    db_ticks = number(fields, "db_ticks")
    parks = number(fields, "parks")
    turns = number(fields, "turns")
    wrk_s = number(fields, "wrk_cpu_s")
    python_ns = number(fields, "python_ns")
    socket_errors = int(fields["socket_errors"])
    non2xx = int(fields["non2xx"])
    per_request = 1e6 / requests if requests else float("nan")
    return {
        "round": rnd,
        "requests": requests,
        "rps": requests / seconds if seconds else 0.0,
        "p50": float(fields["p50_us"]),
        "p99": float(fields["p99_us"]),
        "p999": float(fields["p999_us"]),
        "cpu": server_s * per_request,
        "db": None if db_ticks is None else db_ticks / clk * per_request,
        # µs of the Python thread per request.
        "python": None if python_ns is None or not requests else python_ns / 1e3 / requests,
        "busy": server_s / seconds if seconds else float("nan"),
        "cpus": int(fields.get("server_cpus", 1)),
        "wrk_busy": None if wrk_s is None or not seconds else wrk_s / seconds,
        "per_wake": requests / parks if parks else None,
        "per_turn": requests / turns if turns else None,
        "socket": socket_errors,
        "non2xx": non2xx,
        "expected": int(fields.get("expected_non2xx", 0)),
        "rss": number(fields, "rss_kib"),
        # A run with a socket error or an unexpected non-2xx answer measured something
        # else than the scenario: it is shown, never part of a median.
        "clean": socket_errors == 0 and non2xx == 0 and requests > 0,
    }


def median_of(items, key):
    values = [r[key] for r in items if r[key] is not None]
    return statistics.median(values) if values else None


def summarize(runs):
    """(server, scenario) -> the medians of its clean runs, with every run kept."""
    table = {}
    for key, items in runs.items():
        clean = [r for r in items if r["clean"]]
        row = {
            "runs": items,
            "clean": len(clean),
            "socket": sum(r["socket"] for r in items),
            "non2xx": sum(r["non2xx"] for r in items),
            "expected": sum(r["expected"] for r in items),
            "rss": max((r["rss"] for r in items if r["rss"] is not None), default=None),
            "cpus": items[0]["cpus"],
        }
        for k in ("rps", "cpu", "db", "python", "busy", "wrk_busy", "per_wake", "per_turn"):
            row[k] = median_of(clean, k)
        if clean:
            # Latencies come from the median run by req/s (the lower middle one for even N).
            middle = sorted(clean, key=lambda r: r["rps"])[(len(clean) - 1) // 2]
            row.update(p50=middle["p50"], p99=middle["p99"], p999=middle["p999"])
        else:
            row.update(p50=None, p99=None, p999=None)
        table[key] = row
    return table


def bottleneck(row):
    """Whether the server's CPUs, not wrk or the machine, limited its req/s."""
    return row["busy"] is not None and row["busy"] >= BOTTLENECK_BUSY * row["cpus"]


def rps_ratio(mine, theirs):
    """req/s ÷ req/s, or why it is not shown."""
    if not mine["rps"] or not theirs["rps"]:
        return "–"
    if not (bottleneck(mine) and bottleneck(theirs)):
        return "n/b"
    return f"{mine['rps'] / theirs['rps']:.2f}"


def cpu_ratio(mine, theirs):
    if not mine["cpu"] or not theirs or not theirs["cpu"]:
        return "–"
    return f"{mine['cpu'] / theirs['cpu']:.2f}"


def fmt_us(us):
    if us is None:
        return "–"
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} µs"


def fmt_rss(kib):
    return "–" if kib is None else f"{kib / 1024:.1f} MiB"


def fmt(value, spec):
    return "–" if value is None else format(value, spec)


def fmt_pct(value):
    return "–" if value is None else f"{value * 100:.0f}%"


def fmt_errors(row):
    """`clean/total` runs, and the errors of the others."""
    total = len(row["runs"])
    errors = row["socket"] + row["non2xx"]
    text = f"{row['clean']}/{total}"
    if errors:
        text += f" ({row['socket']:,} socket + {row['non2xx']:,} non-2xx)"
    return text


def ordered(names, order):
    return sorted(set(names), key=lambda n: (order.index(n) if n in order else len(order), n))


RULES = (
    "**Which runs count**: a run with any socket error or unexpected non-2xx answer is listed "
    "under Runs (marked ✗) and left out of every median; **clean** says how many runs were "
    "clean. **CPU busy**: CPU seconds ÷ wall seconds over the measured run, for the server "
    "(all its threads and processes) and for wrk; 100% is one CPU. A server below "
    f"{BOTTLENECK_BUSY:.0%} of its CPUs was not the bottleneck (wrk, or the machine's other "
    "load, was): its req/s says little, so req/s ratios involving it read **n/b**. CPU per "
    "request compares servers either way. **req/wake-up**: requests ÷ the times the server's "
    "event loop went to sleep (Haywire's `haywire_loop_parks_total`; – where a server does "
    "not count them)."
)


def command_output(cmd):
    try:
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (result.stdout or result.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def host_info():
    model, cores, sockets = "unknown", set(), set()
    physical = None
    with open("/proc/cpuinfo") as f:
        for line in f:
            key, _, value = line.partition(":")
            key, value = key.strip(), value.strip()
            if key == "model name" and model == "unknown":
                model = value
            elif key == "physical id":
                physical = value
                sockets.add(value)
            elif key == "core id":
                cores.add((physical, value))
    counts = f"{os.cpu_count()} logical CPUs"
    if cores:
        counts += f", {len(cores)} physical cores, {max(len(sockets), 1)} socket(s)"
    wrk = command_output(["wrk", "--version"]).splitlines()
    return {
        "hostname": socket.gethostname(),
        "CPU": f"{model}; {counts}",
        "kernel": platform.release(),
        "rustc": command_output(["rustc", "--version"]),
        "wrk": wrk[0] if wrk else "unknown",
        "date": datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z"),
    }


def chart(table, servers, scenarios, path):
    """Two panels: req/s and CPU µs/req, clustered by scenario. Returns an error or None."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot is not installed (apt-get install gnuplot-nox): no chart"
    terminals = command_output([gnuplot, "-e", "set terminal"])
    terminal = "pngcairo size 1400,560 font ',10'" if "pngcairo" in terminals else "png size 1400,560"

    def cell(server, scenario, key, scale):
        row = table.get((server, scenario))
        return f"{row[key] / scale:.4f}" if row and row[key] else "NaN"

    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        with open(data, "w") as f:
            f.write("scenario " + " ".join(servers) + " " + " ".join(servers) + "\n")
            for scenario in scenarios:
                rps = [cell(s, scenario, "rps", 1000) for s in servers]
                cpu = [cell(s, scenario, "cpu", 1) for s in servers]
                f.write(f"{scenario} " + " ".join(rps + cpu) + "\n")
        n = len(servers)
        script = f"""
set terminal {terminal}
set termoption noenhanced
set output '{path}'
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set key top right
set grid ytics
set logscale y
set mytics 10
set title 'throughput: thousand req/s, log scale (higher is better)'
plot for [i=2:{n + 1}] '{data}' using i:xtic(1) title columnhead(i)
set title 'server CPU per request: µs, log scale (lower is better)'
plot for [i={n + 2}:{2 * n + 1}] '{data}' using i:xtic(1) title columnhead(i)
unset multiplot
"""
        result = subprocess.run([gnuplot], input=script, text=True, capture_output=True)
    if result.returncode != 0:
        return "gnuplot failed: " + result.stderr.strip()
    return None


def write_report(out_dir, quick, table, servers, scenarios, notes, render):
    """Draws the chart and writes <date>-<host>.md and latest.md (and the .png files);
    `render(info, notes, chart_name)` makes the Markdown. Prints the report."""
    info = host_info()
    os.makedirs(out_dir, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    base = f"{stamp}-{info['hostname']}{'-quick' if quick else ''}"
    png = os.path.join(out_dir, base + ".png")
    problem = chart(table, servers, scenarios, png)
    if problem:
        notes = notes + [problem]
    else:
        shutil.copyfile(png, os.path.join(out_dir, "latest.png"))
    for md, chart_name in ((base + ".md", base + ".png"), ("latest.md", "latest.png")):
        text = render(info, notes, None if problem else chart_name)
        with open(os.path.join(out_dir, md), "w") as f:
            f.write(text)
    print(text)
    written = [base + ".md", "latest.md"] + ([] if problem else [base + ".png", "latest.png"])
    print("written under " + os.path.relpath(out_dir) + "/: " + ", ".join(written))


def header(title, info, flags, quick):
    """The report's title, host facts and flags (the exact command first)."""
    out = [f"# {title}, {info['date']}", ""]
    if quick:
        out += ["**Quick smoke run** (one 2-second run each): a check that the harness works, "
                "not figures to compare.", ""]
    out += ["## Host", ""] + [f"- {key}: {value}" for key, value in info.items()]
    flag_map = dict(flags)
    out += ["", "## Flags", "", f"`{flag_map.pop('command', '?')}` at commit {flag_map.pop('commit', '?')}", ""]
    out += [f"- {name}: {value}" for name, value in flag_map.items()]
    return out


def caption(flags):
    """One line naming the exact command and commit, under every table."""
    flag_map = dict(flags)
    return f"_`{flag_map.get('command', '?')}` at commit {flag_map.get('commit', '?')}_"


def runs_section(table, servers, scenarios, label="scenario"):
    out = ["", "## Runs", "",
           "Every measured run in the order run: req/s, server CPU µs/req, server CPU busy; "
           "✗ marks a run with errors (left out of the medians).", "",
           f"| {label} | server | runs |", "| --- | --- | --- |"]
    for scenario in scenarios:
        for server in servers:
            row = table.get((server, scenario))
            if row:
                cells = "; ".join(
                    f"{'' if r['clean'] else '✗ '}{r['rps']:,.0f} req/s, {r['cpu']:.2f} µs, {fmt_pct(r['busy'])}"
                    for r in row["runs"])
                out.append(f"| {scenario} | {server} | {cells} |")
    return out
