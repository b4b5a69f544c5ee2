#!/usr/bin/env python3
"""Turns benchmarks/run.sh's raw results into a Markdown report,
benchmarks/results/<date>-<time>-<host>.md (also as latest.md), and a chart of req/s and
CPU per request, <same name>.png and latest.png, drawn with gnuplot when it is installed
(a --quick run's names end in -quick). Prints the report. The raw format and the rules
(which runs count, when req/s ratios are shown) are in benchmarks/lib/results.py.

    python3 benchmarks/report.py RAW.tsv [--quick] [--out DIR]
"""
import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "lib"))
import results as R  # noqa: E402  benchmarks/lib/results.py

ORDER = ["haywire", "haywire-before", "haywire-handoff", "hyper", "may_minihttp", "nginx", "floor"]
OURS = ("haywire", "haywire-before", "haywire-handoff")
BEFORE = "haywire-before"
FLOOR = "floor"


def markdown(info, flags, descs, notes, table, quick, chart_name):
    servers = R.ordered((k[0] for k in table), ORDER)
    scenarios = R.ordered((k[1] for k in table), list(descs))
    out = R.header("Haywire benchmark", info, flags, quick)
    out += [
        "",
        "Each measured run starts its server afresh under `taskset -c` on the server CPUs, warms "
        "it up, then measures; wrk runs on the wrk CPUs. Runs go in rounds (run 1 of every "
        "server, then run 2, ...), the servers in a shuffled order each round, so a slow spell "
        "of the machine lands on every server alike. "
        "**req/s**: median of the clean runs. "
        "**p50/p99/p99.9**: latency percentiles of the median run, as measured (wrk's histogram "
        "with its coordinated-omission correction undone, see benchmarks/wrk/report.lua): from "
        "writing a request to its answer; with pipelining, from writing a batch to its last "
        "answer; in close, after the connection is made. **CPU µs/req**: the "
        "server's utime+stime (all threads, and nginx's workers) over a run ÷ requests completed "
        "in it, median of the clean runs. **÷ floor**: that ÷ the floor server's (benchmarks/"
        "peers/floor: epoll, a canned answer per `\\r\\n\\r\\n`, no parsing). **peak RSS**: the "
        "server's VmHWM after a run (summed over nginx's processes), the largest over the runs.",
        "",
        R.RULES,
    ]
    for scenario in scenarios:
        floor = table.get((FLOOR, scenario))
        out += ["", f"## {scenario}", "", descs.get(scenario, ""), ""]
        mixed = any(table[(s, scenario)]["expected"] for s in servers if (s, scenario) in table)
        head = ("| server | req/s | p50 | p99 | p99.9 | CPU µs/req | ÷ floor | server CPU busy | "
                "wrk CPU busy | req/wake-up | peak RSS | clean runs |")
        rule = "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
        if mixed:
            head += " deliberate 404s |"
            rule += " ---: |"
        out += [head, rule]
        for server in servers:
            row = table.get((server, scenario))
            if not row:
                continue
            line = (f"| {server} | {R.fmt(row['rps'], ',.0f')} | {R.fmt_us(row['p50'])} | "
                    f"{R.fmt_us(row['p99'])} | {R.fmt_us(row['p999'])} | {R.fmt(row['cpu'], '.2f')} | "
                    f"{R.cpu_ratio(row, floor) if floor else '–'} | {R.fmt_pct(row['busy'])} | "
                    f"{R.fmt_pct(row['wrk_busy'])} | {R.fmt(row['per_wake'], '.1f')} | "
                    f"{R.fmt_rss(row['rss'])} | {R.fmt_errors(row)} |")
            if mixed:
                line += f" {row['expected']:,} |"
            out.append(line)
        out += ["", R.caption(flags)]

    peers = [s for s in servers if s not in OURS]
    ours = [s for s in servers if s in OURS]
    if ours and peers:
        out += ["", "## Haywire against its peers and the floor", "",
                "Haywire's figure ÷ the other server's: req/s above 1 and CPU/req below 1 favour "
                "Haywire. **n/b**: one of the two was not the bottleneck, so req/s are not compared.", ""]
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
                    cells += [R.rps_ratio(mine, theirs), R.cpu_ratio(mine, theirs)] if theirs else ["–", "–"]
                label = scenario if us == "haywire" else f"{scenario} ({us})"
                out.append(f"| {label} | " + " | ".join(cells) + " |")
        out += ["", R.caption(flags)]

    if "haywire" in servers and BEFORE in servers:
        out += ["", "## Haywire before and after", "",
                f"haywire ÷ {BEFORE} (the binary `--before-bin` names, on the same config), "
                "same run: req/s above 1 and CPU/req below 1 favour the newer build.", "",
                "| scenario | req/s | CPU/req | req/wake-up before → after | p99 before → after |",
                "| --- | ---: | ---: | ---: | ---: |"]
        for scenario in scenarios:
            after, before = table.get(("haywire", scenario)), table.get((BEFORE, scenario))
            if after and before:
                out.append(f"| {scenario} | {R.rps_ratio(after, before)} | {R.cpu_ratio(after, before)} | "
                           f"{R.fmt(before['per_wake'], '.1f')} → {R.fmt(after['per_wake'], '.1f')} | "
                           f"{R.fmt_us(before['p99'])} → {R.fmt_us(after['p99'])} |")
        out += ["", R.caption(flags)]

    out += R.runs_section(table, servers, scenarios)
    if notes:
        out += ["", "## Notes", ""] + [f"- {n}" for n in dict.fromkeys(notes)]
    if chart_name:
        out += ["", f"![req/s and server CPU per request, per scenario and server]({chart_name})"]
    return "\n".join(out) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("raw")
    parser.add_argument("--quick", action="store_true", help="mark the report as a smoke run")
    parser.add_argument("--out", default=os.path.join(HERE, "results"))
    args = parser.parse_args()
    flags, descs, notes, runs = R.parse(args.raw)
    if not runs:
        raise SystemExit("report.py: no measured runs in " + args.raw)
    table = R.summarize(runs)
    servers = R.ordered((k[0] for k in table), ORDER)
    scenarios = R.ordered((k[1] for k in table), list(descs))
    R.write_report(args.out, args.quick, table, servers, scenarios, notes,
                   lambda info, notes, chart: markdown(info, flags, descs, notes, table, args.quick, chart))


if __name__ == "__main__":
    main()
