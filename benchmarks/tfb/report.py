#!/usr/bin/env python3
"""Turns benchmarks/tfb/run.sh's raw results into a Markdown report,
benchmarks/tfb/results/<date>-<time>-<host>.md (also as latest.md), and a chart of req/s and
server CPU per request, <same name>.png and latest.png (gnuplot, when installed; a --quick
run's names end in -quick). Prints the report. The raw format and the rules (which runs
count, when req/s ratios are shown) are in benchmarks/lib/results.py.

    python3 benchmarks/tfb/report.py RAW.tsv [--quick] [--out DIR]
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "lib"))
import results as R  # noqa: E402  benchmarks/lib/results.py

ORDER = ["haywire", "haywire-before", "hyper", "actix", "may_minihttp", "xitca"]
OURS = "haywire"


def markdown(info, flags, descs, notes, table, quick, chart_name):
    servers = R.ordered((k[0] for k in table), ORDER)
    tests = R.ordered((k[1] for k in table), list(descs))
    out = R.header("Haywire TechEmpower benchmark", info, flags, quick)
    out += [
        "",
        "Each measured run starts its server afresh under `taskset -c` on the server CPUs, checks "
        "one answer, warms it up, then measures with wrk on the wrk CPUs, where PostgreSQL runs "
        "too (for every server alike); before every database run the tables are vacuumed and a "
        "checkpoint taken. Runs go in rounds, the servers in a shuffled order each round. "
        "**req/s**: median of the clean runs. **p50/p99**: latency of the median run, as "
        "measured (see benchmarks/wrk/report.lua); for plaintext, per pipelined batch. **CPU "
        "µs/req**: the server's utime+stime (all threads) over a run ÷ requests, median of the "
        "clean runs: the figure that still ranks servers when wrk or PostgreSQL is the limit. "
        "**DB µs/req**: the same for the PostgreSQL backends serving this server's own "
        "connections (not the checkpointer, autovacuum or anyone else's). **peak RSS**: the "
        "server's VmHWM, the largest over the runs.",
        "",
        R.RULES,
    ]

    def grid(title, key, fmt):
        rows = ["", f"## {title}", "", "| test | " + " | ".join(servers) + " |",
                "| --- |" + " ---: |" * len(servers)]
        for test in tests:
            cells = [fmt(table[(s, test)][key]) if (s, test) in table and table[(s, test)][key] is not None
                     else "–" for s in servers]
            rows.append(f"| {test} | " + " | ".join(cells) + " |")
        return rows + ["", R.caption(flags)]

    out += grid("Requests per second (median of clean runs)", "rps", lambda v: f"{v:,.0f}")
    out += grid("Server CPU µs per request (lower is better)", "cpu", lambda v: f"{v:.2f}")
    out += grid("Server CPU busy (CPU s ÷ wall s)", "busy", R.fmt_pct)
    out += grid("PostgreSQL CPU µs per request, the server's own backends (– where a test uses no database)",
                "db", lambda v: f"{v:.2f}")

    peers = [s for s in servers if s != OURS]
    if OURS in servers and peers:
        out += ["", "## Haywire against its peers", "",
                "Haywire's figure ÷ the peer's: req/s above 1 and CPU/req below 1 favour Haywire. "
                "**n/b**: one of the two was not the bottleneck, so req/s are not compared.", ""]
        out += ["| test |" + "".join(f" req/s ÷ {p} | CPU/req ÷ {p} |" for p in peers),
                "| --- |" + " ---: | ---: |" * len(peers)]
        for test in tests:
            mine = table.get((OURS, test))
            if not mine:
                continue
            cells = []
            for peer in peers:
                theirs = table.get((peer, test))
                cells += [R.rps_ratio(mine, theirs), R.cpu_ratio(mine, theirs)] if theirs else ["–", "–"]
            out.append(f"| {test} | " + " | ".join(cells) + " |")
        out += ["", R.caption(flags)]

    for test in tests:
        out += ["", f"## {test}", "", descs.get(test, ""), "",
                "| server | req/s | p50 | p99 | CPU µs/req | DB µs/req | server CPU busy | wrk CPU busy | "
                "req/wake-up | peak RSS | clean runs |",
                "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for server in servers:
            row = table.get((server, test))
            if not row:
                continue
            out.append(f"| {server} | {R.fmt(row['rps'], ',.0f')} | {R.fmt_us(row['p50'])} | "
                       f"{R.fmt_us(row['p99'])} | {R.fmt(row['cpu'], '.2f')} | {R.fmt(row['db'], '.2f')} | "
                       f"{R.fmt_pct(row['busy'])} | {R.fmt_pct(row['wrk_busy'])} | "
                       f"{R.fmt(row['per_wake'], '.1f')} | {R.fmt_rss(row['rss'])} | {R.fmt_errors(row)} |")
        out += ["", R.caption(flags)]

    out += R.runs_section(table, servers, tests, label="test")
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
    flags, descs, notes, runs = R.parse(args.raw)
    if not runs:
        raise SystemExit("tfb/report.py: no measured runs in " + args.raw)
    table = R.summarize(runs)
    servers = R.ordered((k[0] for k in table), ORDER)
    tests = R.ordered((k[1] for k in table), list(descs))
    R.write_report(args.out, args.quick, table, servers, tests, notes,
                   lambda info, notes, chart: markdown(info, flags, descs, notes, table, args.quick, chart))


if __name__ == "__main__":
    main()
