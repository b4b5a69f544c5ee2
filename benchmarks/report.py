#!/usr/bin/env python3
"""Turns run.sh's raw results into benchmarks/results/<date>-<host>.md (also copied to
latest.md) and a chart, latest.png, drawn with gnuplot when it is available."""
import argparse
import datetime
import os
import platform
import shutil
import socket
import statistics
import subprocess
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "results")
ORDER = ["haywire", "haywire-handoff", "hyper", "may_minihttp", "nginx"]
SCENARIOS = ["pipe16", "pipe32", "ka", "close", "mixed"]


def command_output(cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def host_info():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    wrk = command_output(["wrk", "--version"]).splitlines()
    return {
        "host": socket.gethostname(),
        "cpu": model,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "rustc": command_output(["rustc", "--version"]),
        "wrk": wrk[0] if wrk else "unknown",
        "date": datetime.datetime.now().strftime("%Y-%m-%d %H:%M"),
    }


def parse(path):
    runs = defaultdict(list)
    rss = {}
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if parts[1] == "peak_rss_kib":
                rss[parts[0]] = int(parts[2])
                continue
            server, scenario, _, result, ticks, clk = parts
            fields = dict(kv.split("=") for kv in result.split()[1:])
            requests = int(fields["requests"])
            seconds = int(fields["duration_us"]) / 1e6
            cpu_us = int(ticks) / int(clk) * 1e6
            runs[(server, scenario)].append({
                "rps": requests / seconds,
                "p50": float(fields["p50_us"]),
                "p99": float(fields["p99_us"]),
                "p999": float(fields["p999_us"]),
                "cpu": cpu_us / requests if requests else float("nan"),
                "errors": int(fields["socket_errors"]) + int(fields["non2xx"]),
            })
    return runs, rss


def summarize(runs):
    table = {}
    for key, items in runs.items():
        by_rps = sorted(items, key=lambda r: r["rps"])
        median = by_rps[len(by_rps) // 2]
        table[key] = {
            "rps": statistics.median(r["rps"] for r in items),
            "p50": median["p50"],
            "p99": median["p99"],
            "p999": median["p999"],
            "cpu": statistics.median(r["cpu"] for r in items),
            "errors": sum(r["errors"] for r in items),
        }
    return table


def fmt_us(us):
    return f"{us / 1000:.2f} ms" if us >= 1000 else f"{us:.0f} µs"


def markdown(info, flags, table, rss):
    servers = [s for s in ORDER if any(k[0] == s for k in table)]
    scenarios = [s for s in SCENARIOS if any(k[1] == s for k in table)]
    lines = [
        f"# Haywire benchmark, {info['date']}",
        "",
        f"- host: {info['host']}, {info['cpu']}, {info['cores']} logical CPUs, kernel {info['kernel']}",
        f"- {info['rustc']}; {info['wrk']}",
        f"- flags: {flags}",
        "- req/s: median of the runs; latency: wrk's, from the median run; CPU/req: server",
        "  utime+stime over the run ÷ requests; errors: socket errors + unexpected non-2xx.",
        "",
        "| scenario | server | req/s | p50 | p99 | p99.9 | CPU µs/req | peak RSS | errors |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for scenario in scenarios:
        for server in servers:
            row = table.get((server, scenario))
            if not row:
                continue
            lines.append(
                f"| {scenario} | {server} | {row['rps']:,.0f} | {fmt_us(row['p50'])} | {fmt_us(row['p99'])} | "
                f"{fmt_us(row['p999'])} | {row['cpu']:.2f} | {rss.get(server, 0) / 1024:.1f} MiB | {row['errors']} |"
            )
    peers = [s for s in servers if s not in ("haywire", "haywire-handoff")]
    if "haywire" in servers and peers:
        lines += ["", "Haywire as a ratio of each peer (req/s: higher is better; CPU/req: lower is better):", ""]
        lines.append("| scenario | " + " | ".join(f"req/s vs {p} | CPU/req vs {p}" for p in peers) + " |")
        lines.append("| --- |" + " ---: | ---: |" * len(peers))
        for scenario in scenarios:
            ours = table.get(("haywire", scenario))
            if not ours:
                continue
            cells = []
            for peer in peers:
                theirs = table.get((peer, scenario))
                if theirs:
                    cells += [f"{ours['rps'] / theirs['rps']:.2f}×", f"{ours['cpu'] / theirs['cpu']:.2f}×"]
                else:
                    cells += ["–", "–"]
            lines.append(f"| {scenario} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n", servers, scenarios


def chart(table, servers, scenarios, path):
    gnuplot = shutil.which("gnuplot")
    if not gnuplot:
        return "gnuplot is not installed (apt-get install gnuplot-nox): no chart"
    data = os.path.join(OUT, "latest.dat")
    with open(data, "w") as f:
        f.write("scenario " + " ".join(servers) + " " + " ".join(f"{s}_cpu" for s in servers) + "\n")
        for scenario in scenarios:
            rps = [f"{table.get((s, scenario), {}).get('rps', 0) / 1000:.1f}" for s in servers]
            cpu = [f"{table.get((s, scenario), {}).get('cpu', 0):.3f}" for s in servers]
            f.write(f"{scenario} " + " ".join(rps + cpu) + "\n")
    n = len(servers)
    script = f"""
set terminal pngcairo size 1200,500 font ',10'
set output '{path}'
set multiplot layout 1,2
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.8 border -1
set key top right
set grid ytics
set title 'throughput (thousand req/s, higher is better)'
plot for [i=2:{n + 1}] '{data}' using i:xtic(1) title columnhead(i)
set title 'server CPU per request (µs, lower is better)'
plot for [i={n + 2}:{2 * n + 1}] '{data}' using i:xtic(1) title columnhead(i)
unset multiplot
"""
    result = subprocess.run([gnuplot], input=script, text=True, capture_output=True)
    os.remove(data)
    if result.returncode != 0:
        return "gnuplot failed: " + result.stderr.strip()
    return None


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("results")
    parser.add_argument("--flags", default="")
    args = parser.parse_args()
    runs, rss = parse(args.results)
    table = summarize(runs)
    info = host_info()
    text, servers, scenarios = markdown(info, args.flags, table, rss)
    os.makedirs(OUT, exist_ok=True)
    problem = chart(table, servers, scenarios, os.path.join(OUT, "latest.png"))
    if problem is None:
        text += "\n![req/s and CPU per request](latest.png)\n"
    else:
        print(problem)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    for name in (f"{stamp}-{info['host']}.md", "latest.md"):
        with open(os.path.join(OUT, name), "w") as f:
            f.write(text)
    print(text)


if __name__ == "__main__":
    main()
