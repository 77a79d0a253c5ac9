#!/usr/bin/env python3
"""Reads sysbench reports and summarises them.

    sbstats.py one FILE
        One run: prints "key=value" pairs (tps, qps, queries, errors,
        reconnects, p50_us, p99_us, sb_p99_us). Exits 1 if FILE is not a
        complete sysbench report.

    sbstats.py relay MANIFEST [--markdown OUT] [--min-ratio R] [--max-added-p50-us U]
                     [--fail-on-miss 1] [--latency-workloads "point_select ..."]
        The relay benchmark: MANIFEST is a tab-separated file with one line
        per run (see FIELDS). Runs of the same workload, mode, thread count
        and target are pooled: throughput is total events over total run
        time, and percentiles come from the summed latency histograms.
        Prints the result tables and the target verdicts; --markdown also
        writes them as Markdown. With --fail-on-miss 1 it exits 3 when a
        target is missed. The added-latency target at 1 thread is judged
        for --latency-workloads only (default point_select): a 1-thread
        durable INSERT waits for its commit's fsync, whose time on a shared
        disk varies by milliseconds, far more than the relay adds.

Percentiles: sysbench prints one percentile per run, so every run uses
--histogram=on and the percentiles are read from the histogram it prints:
the pXX latency is the smallest bucket value whose cumulative count reaches
XX% of the events, which is how sysbench computes its own --percentile.
Its buckets are logarithmic (1024 from 1 us to 100 s, each about 1.8%
wider than the one before), so a percentile is exact to within ~2%.
"""

import math
import re
import sys
from collections import defaultdict

FIELDS = [
    "workload", "mode", "threads", "target", "round", "file",
    "sluice_ticks", "db_ticks", "sb_cpu_ms", "busy_ticks", "total_ticks",
    "clk_tck", "ncpu", "sluice_sys_ticks",
]

HIST_START = "Latency histogram (values are in milliseconds)"
HIST_LINE = re.compile(r"^\s*([0-9.]+)\s+\|\**\s+(\d+)\s*$")
PATTERNS = {
    "transactions": re.compile(r"^\s*transactions:\s+(\d+)\s+\(([0-9.]+) per sec"),
    "queries": re.compile(r"^\s*queries:\s+(\d+)\s+\(([0-9.]+) per sec"),
    "errors": re.compile(r"^\s*ignored errors:\s+(\d+)"),
    "reconnects": re.compile(r"^\s*reconnects:\s+(\d+)"),
    "time": re.compile(r"^\s*total time:\s+([0-9.]+)s"),
    "events": re.compile(r"^\s*total number of events:\s+(\d+)"),
    "pct": re.compile(r"^\s*(\d+)th percentile:\s+([0-9.]+)"),
}


class Report:
    def __init__(self):
        self.hist = defaultdict(int)  # bucket value in ms -> count
        self.events = 0
        self.time = 0.0
        self.queries = 0
        self.errors = 0
        self.reconnects = 0
        self.sb_pct = None  # (percentile, ms) sysbench printed itself

    def add(self, other):
        for value, count in other.hist.items():
            self.hist[value] += count
        self.events += other.events
        self.time += other.time
        self.queries += other.queries
        self.errors += other.errors
        self.reconnects += other.reconnects

    def tps(self):
        return self.events / self.time if self.time else 0.0

    def qps(self):
        return self.queries / self.time if self.time else 0.0

    def percentile_us(self, pct):
        total = sum(self.hist.values())
        if total == 0:
            return float("nan")
        need = math.ceil(total * pct / 100.0)
        seen = 0
        for value in sorted(self.hist):
            seen += self.hist[value]
            if seen >= need:
                return value * 1000.0
        return max(self.hist) * 1000.0


def parse(path):
    report = Report()
    found = set()
    in_hist = False
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.startswith(HIST_START):
                in_hist = True
                continue
            if in_hist:
                m = HIST_LINE.match(line)
                if m:
                    report.hist[float(m.group(1))] += int(m.group(2))
                    continue
                if "distribution" in line or not line.strip():
                    continue
                in_hist = False
            for key, pattern in PATTERNS.items():
                m = pattern.match(line)
                if not m:
                    continue
                found.add(key)
                if key == "queries":
                    report.queries = int(m.group(1))
                elif key == "errors":
                    report.errors = int(m.group(1))
                elif key == "reconnects":
                    report.reconnects = int(m.group(1))
                elif key == "time":
                    report.time = float(m.group(1))
                elif key == "events":
                    report.events = int(m.group(1))
                elif key == "pct":
                    report.sb_pct = (int(m.group(1)), float(m.group(2)))
    missing = {"queries", "time", "events"} - found
    if missing or not report.hist:
        what = sorted(missing) + ([] if report.hist else ["histogram"])
        raise ValueError(f"{path}: not a complete sysbench report (missing {', '.join(what)})")
    return report


def cmd_one(path):
    try:
        r = parse(path)
    except (OSError, ValueError) as e:
        print(e, file=sys.stderr)
        return 1
    sb = f" sb_p{r.sb_pct[0]}_us={r.sb_pct[1] * 1000:.0f}" if r.sb_pct else ""
    print(
        f"tps={r.tps():.0f} qps={r.qps():.0f} queries={r.queries} errors={r.errors} "
        f"reconnects={r.reconnects} p50_us={r.percentile_us(50):.0f} "
        f"p99_us={r.percentile_us(99):.0f}{sb}"
    )
    return 0


class Cell:
    """All runs of one workload, mode, thread count and target."""

    def __init__(self):
        self.report = Report()
        self.rounds = []  # per-run tps, in round order
        self.rounds_p50 = []  # per-run p50 in us, in round order
        self.sluice_ticks = 0
        self.sluice_sys_ticks = 0
        self.db_ticks = 0
        self.sb_cpu_ms = 0
        self.busy_ticks = 0
        self.total_ticks = 0
        self.clk_tck = 100
        self.ncpu = 1

    def cpu_us_per_query(self, ticks):
        if not self.report.queries:
            return float("nan")
        return ticks * 1e6 / self.clk_tck / self.report.queries


def fmt_us(v):
    return "-" if math.isnan(v) else f"{v:.0f}"


def table(headers, rows, markdown):
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join("---:" if i >= 3 else "---" for i in range(len(headers))) + "|"]
        out += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join(out)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.rjust(w) if i >= 3 else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def cmd_relay(manifest, markdown_out, min_ratio, max_added_p50, fail_on_miss,
              latency_workloads):
    cells = defaultdict(Cell)
    order = []
    with open(manifest, encoding="utf-8") as f:
        for raw in f:
            if not raw.strip() or raw.startswith("#"):
                continue
            row = dict(zip(FIELDS, raw.rstrip("\n").split("\t")))
            key = (row["workload"], row["mode"], int(row["threads"]))
            if key not in order:
                order.append(key)
            cell = cells[key + (row["target"],)]
            run = parse(row["file"])
            cell.report.add(run)
            cell.rounds.append(run.tps())
            cell.rounds_p50.append(run.percentile_us(50))
            cell.sluice_ticks += int(row["sluice_ticks"])
            cell.sluice_sys_ticks += int(row.get("sluice_sys_ticks") or 0)
            cell.db_ticks += int(row["db_ticks"])
            cell.sb_cpu_ms += int(row["sb_cpu_ms"])
            cell.busy_ticks += int(row["busy_ticks"])
            cell.total_ticks += int(row["total_ticks"])
            cell.clk_tck = int(row["clk_tck"])
            cell.ncpu = int(row["ncpu"])

    main_rows, cpu_rows = [], []
    misses, checks = [], []
    for key in order:
        d, s = cells[key + ("direct",)], cells[key + ("sluice",)]
        workload, mode, threads = key
        ratio = s.report.tps() / d.report.tps() if d.report.tps() else float("nan")
        d50, d99 = d.report.percentile_us(50), d.report.percentile_us(99)
        s50, s99 = s.report.percentile_us(50), s.report.percentile_us(99)
        added = s50 - d50
        per_round = [b / a for a, b in zip(d.rounds, s.rounds) if a]
        spread = (f"{min(per_round):.2f}-{max(per_round):.2f}" if len(per_round) > 1
                  else "-")
        main_rows.append([
            workload, mode, str(threads),
            f"{d.report.tps():.0f}", f"{s.report.tps():.0f}", f"{ratio:.2f}", spread,
            f"{fmt_us(d50)} / {fmt_us(d99)}", f"{fmt_us(s50)} / {fmt_us(s99)}",
            f"{added:+.0f}",
            f"{s.cpu_us_per_query(s.sluice_ticks):.1f} "
            f"({s.cpu_us_per_query(s.sluice_sys_ticks):.1f})",
        ])
        for target, c in (("direct", d), ("sluice", s)):
            ours_ticks = c.sluice_ticks + c.db_ticks + c.sb_cpu_ms * c.clk_tck / 1000.0
            other = max(0.0, c.busy_ticks - ours_ticks)
            busy_pct = 100.0 * c.busy_ticks / c.total_ticks if c.total_ticks else float("nan")
            cpu_rows.append([
                workload, mode, str(threads), target,
                f"{c.cpu_us_per_query(c.sb_cpu_ms * c.clk_tck / 1000.0):.1f}",
                f"{c.cpu_us_per_query(c.db_ticks):.1f}",
                f"{c.cpu_us_per_query(c.sluice_ticks):.1f}",
                f"{c.cpu_us_per_query(c.busy_ticks):.1f}",
                f"{c.cpu_us_per_query(other):.1f}",
                f"{busy_pct:.0f}%",
                str(c.report.errors + c.report.reconnects),
            ])
        if threads >= 64:
            ok = ratio >= min_ratio
            checks.append(f"{'MET ' if ok else 'MISS'} {workload}/{mode}/{threads} threads: "
                          f"throughput ratio {ratio:.2f} (target >= {min_ratio:.2f}; "
                          f"per round {spread})")
            if not ok:
                misses.append(checks[-1])
        if threads == 1 and workload not in latency_workloads:
            checks.append(f"info {workload}/{mode}/1 thread: added p50 {added:+.0f} us "
                          f"(not judged: its latency is the commit's fsync, not the relay)")
        elif threads == 1:
            ok = added < max_added_p50
            added_rounds = [b - a for a, b in zip(d.rounds_p50, s.rounds_p50)]
            rounds_note = (f"; per round {min(added_rounds):+.0f} to {max(added_rounds):+.0f} us"
                           if len(added_rounds) > 1 else "")
            checks.append(f"{'MET ' if ok else 'MISS'} {workload}/{mode}/1 thread: "
                          f"added p50 {added:+.0f} us (target < {max_added_p50:.0f} us"
                          f"{rounds_note})")
            if not ok:
                misses.append(checks[-1])

    main_headers = ["workload", "mode", "threads", "direct tps", "sluice tps", "ratio",
                    "ratio range", "direct p50 / p99 us", "sluice p50 / p99 us",
                    "added p50 us", "sluice CPU us/q (kernel)"]
    cpu_headers = ["workload", "mode", "threads", "target", "sysbench", "mariadbd", "sluice",
                   "machine", "other", "busy", "errors"]
    if not checks:
        verdict = "no target applies (targets are for 1 and 64+ threads)"
    elif misses:
        verdict = f"{len(misses)} target(s) missed"
    else:
        verdict = "all targets met"

    text = [
        "Throughput and latency (pooled over rounds; ratio = sluice / direct;",
        "ratio range = lowest and highest per-round ratio; added p50 = sluice p50 - direct p50):",
        "",
        table(main_headers, main_rows, False),
        "",
        "CPU per query in us (sysbench, mariadbd and sluice processes; machine = all busy",
        "CPU time of the machine; other = machine minus those three: other tenants, kernel",
        "threads; busy = share of all CPUs busy during the runs; errors = errors + reconnects):",
        "",
        table(cpu_headers, cpu_rows, False),
        "",
        "Targets:",
        *("  " + c for c in checks),
        f"Verdict: {verdict}",
    ]
    print("\n".join(text))
    if markdown_out:
        md = [
            table(main_headers, main_rows, True),
            "",
            "CPU per query (µs):",
            "",
            table(cpu_headers, cpu_rows, True),
            "",
            "Targets:",
            "",
            *("- " + c for c in checks),
            "",
            f"Verdict: {verdict}",
        ]
        with open(markdown_out, "w", encoding="utf-8") as f:
            f.write("\n".join(md) + "\n")
    return 3 if misses and fail_on_miss else 0


def parse_options(args, defaults):
    """`--name value` pairs over `defaults`; None (after a message) for an
    unknown or incomplete option."""
    opts = dict(defaults)
    while args:
        if args[0] not in opts or len(args) < 2:
            print(f"unknown or incomplete option: {args[0]}", file=sys.stderr)
            return None
        opts[args[0]] = args[1]
        args = args[2:]
    return opts


def main(argv):
    if len(argv) >= 2 and argv[0] == "one":
        return cmd_one(argv[1])
    if len(argv) >= 2 and argv[0] == "relay":
        manifest = argv[1]
        opts = parse_options(argv[2:], {
            "--markdown": None, "--min-ratio": "0.85", "--max-added-p50-us": "60",
            "--fail-on-miss": "0", "--latency-workloads": "point_select"})
        if opts is None:
            return 2
        return cmd_relay(manifest, opts["--markdown"], float(opts["--min-ratio"]),
                         float(opts["--max-added-p50-us"]), opts["--fail-on-miss"] == "1",
                         opts["--latency-workloads"].replace(",", " ").split())
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
