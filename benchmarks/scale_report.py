#!/usr/bin/env python3
"""Summarizes benchmarks/scale.sh's points: one benchmarks/run.sh raw file per shard
count. Prints a Markdown table (req/s, server CPU per request, scaling efficiency against
the same server's 1-shard point) and writes it to
benchmarks/results/scale-<date>-<time>-<host>.md and scale-latest.md.

    python3 benchmarks/scale_report.py [--cpus N] [--skipped "4 8"] RAW.tsv ...
"""
import argparse
import datetime
import os
import socket
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import results as R  # noqa: E402  benchmarks/lib/results.py


def parse(path):
    """(shards, {(server, scenario): summary row}) of one run.sh raw file: medians of the
    clean runs (benchmarks/lib/results.py)."""
    flags, _, _, runs = R.parse(path)
    shards = int(dict(flags)["shards"])
    table = {key: row for key, row in R.summarize(runs).items() if row["clean"]}
    return shards, table


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("raw", nargs="+")
    parser.add_argument("--cpus", type=int, default=os.cpu_count())
    parser.add_argument("--skipped", default="")
    args = parser.parse_args()
    points = {}
    for path in args.raw:
        shards, table = parse(path)
        points[shards] = {key: (row["rps"], row["cpu"]) for key, row in table.items()}
    keys = sorted({key for point in points.values() for key in point})
    lines = [
        "| server | scenario | shards | req/s | CPU µs/req | efficiency |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for server, scenario in keys:
        base = points.get(1, {}).get((server, scenario))
        for n in sorted(points):
            if (server, scenario) not in points[n]:
                continue
            rate, cpu = points[n][(server, scenario)]
            eff = f"{rate / (n * base[0]):.2f}" if base else "n/a"
            lines.append(f"| {server} | {scenario} | {n} | {rate:,.0f} | {cpu:.2f} | {eff} |")
    now = datetime.datetime.now()
    host = socket.gethostname().split(".")[0]
    head = [
        f"# Haywire scaling, {now:%Y-%m-%d %H:%M} on {host} ({args.cpus} CPUs)",
        "",
        "Each point: `benchmarks/run.sh` with the server on CPUs 0..n-1 and wrk on the next",
        "CPUs; efficiency = req/s at n shards ÷ (n × req/s at 1 shard) of the same server.",
        "",
    ]
    if args.skipped.strip():
        head += [f"Skipped (not enough CPUs here): {args.skipped.strip()} shards.", ""]
    text = "\n".join(head + lines) + "\n"
    print(text)
    out = os.path.join(HERE, "results")
    os.makedirs(out, exist_ok=True)
    for name in (f"scale-{now:%Y-%m-%d-%H%M}-{host}.md", "scale-latest.md"):
        with open(os.path.join(out, name), "w") as f:
            f.write(text)


if __name__ == "__main__":
    main()
