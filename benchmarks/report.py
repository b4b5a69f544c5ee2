#!/usr/bin/env python3
"""Turns benchmarks/run.sh's raw results into a Markdown report,
benchmarks/results/<date>-<time>-<host>.md (also as latest.md), and a chart of req/s and
CPU per request, <same name>.png and latest.png, drawn with gnuplot when it is installed
(a --quick run's names end in -quick). Prints the report.

    python3 benchmarks/report.py RAW.tsv [--quick] [--out DIR]

RAW.tsv has one record per line, tab-separated, the first field its kind:
    flag  NAME VALUE                      a setting, shown under "Flags"
    desc  SCENARIO TEXT                   what a scenario does
    note  TEXT                            shown under "Notes"
    run   SERVER SCENARIO RUN CPU_TICKS CLK_TCK  k=v ...   one measured wrk run
    rss   SERVER SCENARIO KIB             the server's VmHWM after one run (the largest is shown)
The k=v fields of a run come from benchmarks/wrk/report.lua: requests, duration_us,
p50_us, p99_us, p999_us, socket_errors, non2xx, expected_non2xx, samples, latency.
"""
import argparse
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
import tempfile
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
ORDER = ["haywire", "haywire-handoff", "hyper", "may_minihttp", "nginx"]
OURS = ("haywire", "haywire-handoff")


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
    logical = os.cpu_count()
    counts = f"{logical} logical CPUs"
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


def parse(path):
    flags, descs, notes = [], {}, []
    runs = defaultdict(list)
    rss = {}
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
            elif kind == "rss":
                key = (parts[1], parts[2])
                rss[key] = max(rss.get(key, 0), int(parts[3]))
            elif kind == "run":
                server, scenario, _, ticks, clk, result = parts[1:7]
                fields = dict(kv.split("=", 1) for kv in result.split())
                requests = int(fields["requests"])
                seconds = int(fields["duration_us"]) / 1e6
                cpu_us = int(ticks) * 1e6 / int(clk)
                runs[(server, scenario)].append({
                    "rps": requests / seconds if seconds else 0.0,
                    "p50": float(fields["p50_us"]),
                    "p99": float(fields["p99_us"]),
                    "p999": float(fields["p999_us"]),
                    "cpu": cpu_us / requests if requests else float("nan"),
                    "socket": int(fields["socket_errors"]),
                    "non2xx": int(fields["non2xx"]),
                    "expected": int(fields.get("expected_non2xx", 0)),
                })
                if fields.get("latency") == "wrk":
                    notes.append(f"{server} {scenario}: latency percentiles are wrk's own, "
                                 "with its coordinated-omission correction (see benchmarks/wrk/report.lua)")
    return flags, descs, notes, runs, rss


def summarize(runs, rss):
    table = {}
    for key, items in runs.items():
        # Latencies come from the median run by req/s (the lower middle one for even N).
        middle = sorted(items, key=lambda r: r["rps"])[(len(items) - 1) // 2]
        table[key] = {
            "rps": statistics.median(r["rps"] for r in items),
            "p50": middle["p50"],
            "p99": middle["p99"],
            "p999": middle["p999"],
            "cpu": statistics.median(r["cpu"] for r in items),
            "socket": sum(r["socket"] for r in items),
            "non2xx": sum(r["non2xx"] for r in items),
            "expected": sum(r["expected"] for r in items),
            "rss": rss.get(key),
            "runs": items,
        }
    return table


def fmt_us(us):
    if us >= 1000:
        return f"{us / 1000:.2f} ms"
    return f"{us:.0f} µs"


def fmt_rss(kib):
    return "–" if kib is None else f"{kib / 1024:.1f} MiB"


def ordered(names, order):
    return sorted(set(names), key=lambda n: (order.index(n) if n in order else len(order), n))


def markdown(info, flags, descs, notes, table, quick, chart_name):
    servers = ordered((k[0] for k in table), ORDER)
    scenarios = ordered((k[1] for k in table), list(descs))
    out = [f"# Haywire benchmark, {info['date']}", ""]
    if quick:
        out += ["**Quick smoke run** (one 2-second run per scenario): a check that the harness works, "
                "not figures to compare.", ""]
    out += ["## Host", ""]
    out += [f"- {key}: {value}" for key, value in info.items()]
    flag_map = dict(flags)
    out += ["", "## Flags", "", f"`{flag_map.pop('command', 'benchmarks/run.sh')}`", ""]
    out += [f"- {name}: {value}" for name, value in flag_map.items()]
    out += [
        "",
        "Each measured run starts its server afresh under `taskset -c` on the server CPUs, warms "
        "it up, then measures; wrk runs on the wrk CPUs. Runs are interleaved (run 1 of every "
        "server, then run 2, ...), so a slow spell of the machine lands on every server alike. "
        "**req/s**: median of the measured runs. "
        "**p50/p99/p99.9**: latency percentiles of the median run, as measured (wrk's histogram "
        "with its coordinated-omission correction undone, see benchmarks/wrk/report.lua): from "
        "writing a request to its answer; with pipelining, from writing a batch to its last "
        "answer; in close, after the connection is made. **CPU µs/req**: the "
        "server's utime+stime (all threads, and nginx's workers) over a run ÷ requests completed "
        "in it, median of the runs (the clock ticks at 1/CLK_TCK s). **peak RSS**: the server's "
        "VmHWM after a run (summed over nginx's processes), the largest over the runs. **errors**: socket "
        "errors (connect, read, write, timeout) + non-2xx answers, summed over the measured runs; "
        "mixed's deliberate 404s are counted apart.",
    ]
    for scenario in scenarios:
        out += ["", f"## {scenario}", "", descs.get(scenario, ""), ""]
        mixed = any(table[(s, scenario)]["expected"] for s in servers if (s, scenario) in table)
        head = "| server | req/s | p50 | p99 | p99.9 | CPU µs/req | peak RSS | errors (socket + non-2xx) |"
        rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        if mixed:
            head += " deliberate 404s |"
            rule += " ---: |"
        out += [head, rule]
        for server in servers:
            row = table.get((server, scenario))
            if not row:
                continue
            errors = row["socket"] + row["non2xx"]
            detail = f"{errors} ({row['socket']} + {row['non2xx']})" if errors else "0"
            line = (f"| {server} | {row['rps']:,.0f} | {fmt_us(row['p50'])} | {fmt_us(row['p99'])} | "
                    f"{fmt_us(row['p999'])} | {row['cpu']:.2f} | {fmt_rss(row['rss'])} | {detail} |")
            if mixed:
                line += f" {row['expected']:,} |"
            out.append(line)

    peers = [s for s in servers if s not in OURS]
    ours = [s for s in servers if s in OURS]
    if ours and peers:
        out += ["", "## Haywire against its peers", "",
                "Haywire's figure ÷ the peer's: req/s above 1 and CPU/req below 1 favour Haywire.", ""]
        head = "| scenario |" + "".join(f" req/s ÷ {p} | CPU/req ÷ {p} |" for p in peers)
        out += [head, "| --- |" + " ---: | ---: |" * len(peers)]
        for us in ours:
            for scenario in scenarios:
                mine = table.get((us, scenario))
                if not mine:
                    continue
                cells = []
                for peer in peers:
                    theirs = table.get((peer, scenario))
                    if theirs and theirs["rps"] and theirs["cpu"]:
                        cells += [f"{mine['rps'] / theirs['rps']:.2f}", f"{mine['cpu'] / theirs['cpu']:.2f}"]
                    else:
                        cells += ["–", "–"]
                label = scenario if us == "haywire" else f"{scenario} ({us})"
                out.append(f"| {label} | " + " | ".join(cells) + " |")

    out += ["", "## Runs", "", "Every measured run: req/s, CPU µs/req.", "",
            "| scenario | server | runs |", "| --- | --- | --- |"]
    for scenario in scenarios:
        for server in servers:
            row = table.get((server, scenario))
            if row:
                cells = "; ".join(f"{r['rps']:,.0f} req/s, {r['cpu']:.2f} µs" for r in row["runs"])
                out.append(f"| {scenario} | {server} | {cells} |")
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in notes]
    if chart_name:
        out += ["", f"![req/s and server CPU per request, per scenario and server]({chart_name})"]
    return "\n".join(out) + "\n"


def chart(table, scenario_order, path):
    """Two panels: req/s and CPU µs/req, clustered by scenario. Returns an error or None."""
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot is not installed (apt-get install gnuplot-nox): no chart"
    servers = ordered((k[0] for k in table), ORDER)
    scenarios = ordered((k[1] for k in table), scenario_order)
    terminals = command_output([gnuplot, "-e", "set terminal"])
    terminal = "pngcairo size 1400,560 font ',10'" if "pngcairo" in terminals else "png size 1400,560"
    with tempfile.TemporaryDirectory() as tmp:
        data = os.path.join(tmp, "data")
        with open(data, "w") as f:
            f.write("scenario " + " ".join(servers) + " " + " ".join(servers) + "\n")
            for scenario in scenarios:
                rps = [f"{table[(s, scenario)]['rps'] / 1000:.3f}" if (s, scenario) in table else "NaN"
                       for s in servers]
                cpu = [f"{table[(s, scenario)]['cpu']:.4f}" if (s, scenario) in table else "NaN"
                       for s in servers]
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


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw")
    parser.add_argument("--quick", action="store_true", help="mark the report as a smoke run")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    flags, descs, notes, runs, rss = parse(args.raw)
    if not runs:
        raise SystemExit("report.py: no measured runs in " + args.raw)
    table = summarize(runs, rss)
    info = host_info()
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    base = f"{stamp}-{info['hostname']}{'-quick' if args.quick else ''}"
    png = os.path.join(args.out, base + ".png")
    problem = chart(table, list(descs), png)
    if problem:
        notes.append(problem)
    else:
        shutil.copyfile(png, os.path.join(args.out, "latest.png"))
    for md, chart_name in ((base + ".md", base + ".png"), ("latest.md", "latest.png")):
        text = markdown(info, flags, descs, notes, table, args.quick, None if problem else chart_name)
        with open(os.path.join(args.out, md), "w") as f:
            f.write(text)
    print(text)
    written = [base + ".md", "latest.md"] + ([] if problem else [base + ".png", "latest.png"])
    print("written under " + os.path.relpath(args.out) + "/: " + ", ".join(written))


if __name__ == "__main__":
    main()
