#!/usr/bin/env python3
"""Turns benchmarks/tfb/run.sh's raw results into a Markdown report,
benchmarks/tfb/results/<date>-<time>-<host>.md (also as latest.md), and a chart of req/s and
server CPU per request, <same name>.png and latest.png (gnuplot, when installed; a --quick
run's names end in -quick). Prints the report. Host facts, number formats and the chart
come from benchmarks/report.py.

    python3 benchmarks/tfb/report.py RAW.tsv [--quick] [--out DIR]

RAW.tsv has one record per line, tab-separated, the first field its kind:
    flag  NAME VALUE                      a setting, shown under "Flags"
    desc  TEST TEXT                       what a test does
    note  TEXT                            shown under "Notes"
    run   SERVER TEST RUN CPU_TICKS DB_TICKS CLK_TCK  k=v ...   one measured wrk run
    rss   SERVER TEST KIB                 the server's VmHWM after one run (the largest is shown)
CPU_TICKS are the server's utime+stime over the run, DB_TICKS PostgreSQL's (the postmaster
and all its processes; `-` for a test that uses no database). The k=v fields come from benchmarks/wrk/report.lua.
"""
import argparse
import datetime
import os
import shutil
import statistics
import sys
from collections import defaultdict

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
import report as base  # noqa: E402  benchmarks/report.py

ORDER = ["haywire", "hyper", "actix", "may_minihttp", "xitca"]
base.ORDER = ORDER  # the chart's server order
OURS = "haywire"


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
                rss[key] = max(rss.get(key, 0), int(parts[3] or 0))
            elif kind == "run":
                server, test, _, ticks, db_ticks, clk, result = parts[1:8]
                fields = dict(kv.split("=", 1) for kv in result.split())
                requests = int(fields["requests"])
                seconds = int(fields["duration_us"]) / 1e6
                per_request = (1e6 / int(clk) / requests) if requests else float("nan")
                runs[(server, test)].append({
                    "rps": requests / seconds if seconds else 0.0,
                    "p50": float(fields["p50_us"]),
                    "p99": float(fields["p99_us"]),
                    "cpu": int(ticks) * per_request,
                    "db": None if db_ticks == "-" else int(db_ticks) * per_request,
                    "socket": int(fields["socket_errors"]),
                    "non2xx": int(fields["non2xx"]),
                })
                if fields.get("latency") == "wrk":
                    notes.append(f"{server} {test}: latency percentiles are wrk's own, "
                                 "with its coordinated-omission correction (see benchmarks/wrk/report.lua)")
    return flags, descs, notes, runs, rss


def summarize(runs, rss):
    table = {}
    for key, items in runs.items():
        middle = sorted(items, key=lambda r: r["rps"])[(len(items) - 1) // 2]
        table[key] = {
            "rps": statistics.median(r["rps"] for r in items),
            "p50": middle["p50"],
            "p99": middle["p99"],
            "cpu": statistics.median(r["cpu"] for r in items),
            "db": None if any(r["db"] is None for r in items) else statistics.median(r["db"] for r in items),
            "socket": sum(r["socket"] for r in items),
            "non2xx": sum(r["non2xx"] for r in items),
            "rss": rss.get(key),
            "runs": items,
        }
    return table


def markdown(info, flags, descs, notes, table, quick, chart_name):
    servers = base.ordered((k[0] for k in table), ORDER)
    tests = base.ordered((k[1] for k in table), list(descs))
    out = [f"# Haywire TechEmpower benchmark, {info['date']}", ""]
    if quick:
        out += ["**Quick smoke run** (one 2-second run per test): a check that the harness works, "
                "not figures to compare.", ""]
    out += ["## Host", ""] + [f"- {key}: {value}" for key, value in info.items()]
    flag_map = dict(flags)
    out += ["", "## Flags", "", f"`{flag_map.pop('command', 'benchmarks/tfb/run.sh')}`", ""]
    out += [f"- {name}: {value}" for name, value in flag_map.items()]
    out += [
        "",
        "Each measured run starts its server afresh under `taskset -c` on the server CPUs, checks "
        "one answer, warms it up, then measures with wrk on the wrk CPUs, where PostgreSQL runs "
        "too (for every server alike). Runs are interleaved (run 1 of every server, then run 2, "
        "...). **req/s**: median of the runs. **p50/p99**: latency of the median run, as measured "
        "(see benchmarks/wrk/report.lua); for plaintext, per pipelined batch. **CPU µs/req**: the "
        "server's utime+stime (all threads) over a run ÷ requests, median of the runs: the figure "
        "that still ranks servers when wrk or PostgreSQL is the limit. **DB µs/req**: the same "
        "for PostgreSQL (all its processes). **peak RSS**: the server's VmHWM, the largest over "
        "the runs. **errors**: socket errors + non-2xx answers, summed over the runs.",
    ]

    def grid(title, key, fmt):
        rows = ["", f"## {title}", "", "| test | " + " | ".join(servers) + " |",
                "| --- |" + " ---: |" * len(servers)]
        for test in tests:
            cells = [fmt(table[(s, test)][key]) if (s, test) in table and table[(s, test)][key] is not None
                     else "–" for s in servers]
            rows.append(f"| {test} | " + " | ".join(cells) + " |")
        return rows

    out += grid("Requests per second (median)", "rps", lambda v: f"{v:,.0f}")
    out += grid("Server CPU µs per request (median; lower is better)", "cpu", lambda v: f"{v:.2f}")
    out += grid("PostgreSQL CPU µs per request (median; – where a test uses no database)", "db",
                lambda v: f"{v:.2f}")

    peers = [s for s in servers if s != OURS]
    if OURS in servers and peers:
        out += ["", "## Haywire against its peers", "",
                "Haywire's figure ÷ the peer's: req/s above 1 and CPU/req below 1 favour Haywire.", ""]
        out += ["| test |" + "".join(f" req/s ÷ {p} | CPU/req ÷ {p} |" for p in peers),
                "| --- |" + " ---: | ---: |" * len(peers)]
        for test in tests:
            mine = table.get((OURS, test))
            if not mine:
                continue
            cells = []
            for peer in peers:
                theirs = table.get((peer, test))
                if theirs and theirs["rps"] and theirs["cpu"]:
                    cells += [f"{mine['rps'] / theirs['rps']:.2f}", f"{mine['cpu'] / theirs['cpu']:.2f}"]
                else:
                    cells += ["–", "–"]
            out.append(f"| {test} | " + " | ".join(cells) + " |")

    for test in tests:
        out += ["", f"## {test}", "", descs.get(test, ""), "",
                "| server | req/s | p50 | p99 | CPU µs/req | DB µs/req | peak RSS | errors (socket + non-2xx) |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for server in servers:
            row = table.get((server, test))
            if not row:
                continue
            errors = row["socket"] + row["non2xx"]
            detail = f"{errors:,} ({row['socket']:,} + {row['non2xx']:,})" if errors else "0"
            out.append(f"| {server} | {row['rps']:,.0f} | {base.fmt_us(row['p50'])} | {base.fmt_us(row['p99'])} | "
                       f"{row['cpu']:.2f} | {'–' if row['db'] is None else format(row['db'], '.2f')} | {base.fmt_rss(row['rss'])} | {detail} |")

    out += ["", "## Runs", "", "Every measured run: req/s, server CPU µs/req.", "",
            "| test | server | runs |", "| --- | --- | --- |"]
    for test in tests:
        for server in servers:
            row = table.get((server, test))
            if row:
                cells = "; ".join(f"{r['rps']:,.0f} req/s, {r['cpu']:.2f} µs" for r in row["runs"])
                out.append(f"| {test} | {server} | {cells} |")
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in dict.fromkeys(notes)]
    if chart_name:
        out += ["", f"![req/s and server CPU per request, per test and server]({chart_name})"]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw")
    parser.add_argument("--quick", action="store_true", help="mark the report as a smoke run")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    flags, descs, notes, runs, rss = parse(args.raw)
    if not runs:
        raise SystemExit("tfb/report.py: no measured runs in " + args.raw)
    table = summarize(runs, rss)
    info = base.host_info()
    os.makedirs(args.out, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y-%m-%d-%H%M")
    name = f"{stamp}-{info['hostname']}{'-quick' if args.quick else ''}"
    png = os.path.join(args.out, name + ".png")
    problem = base.chart(table, list(descs), png)
    if problem:
        notes.append(problem)
    else:
        shutil.copyfile(png, os.path.join(args.out, "latest.png"))
    for md, chart_name in ((name + ".md", name + ".png"), ("latest.md", "latest.png")):
        text = markdown(info, flags, descs, notes, table, args.quick, None if problem else chart_name)
        with open(os.path.join(args.out, md), "w") as f:
            f.write(text)
    print(text)
    written = [name + ".md", "latest.md"] + ([] if problem else [name + ".png", "latest.png"])
    print("written under " + os.path.relpath(args.out) + "/: " + ", ".join(written))


if __name__ == "__main__":
    main()
