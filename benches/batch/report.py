#!/usr/bin/env python3
"""Summarises the write-batching benchmark (benches/batch.sh).

    report.py report MANIFEST [--markdown OUT] [--target-threads 64]
              [--min-ratio 1.8] [--max-db-cpu-ratio 0.25] [--max-sluice-us 10]
              [--max-p50-ratio 1.2] [--fail-on-miss 0|1]
        MANIFEST has one line per measured phase: tab-separated key=value
        fields; the phase's identity (kind, variant, threads, target, round,
        file, ...), then the readings before ("b.") and after ("a.") it.
        Phases of the same kind, variant, thread count and target are pooled
        over rounds: rows/s is total rows over total time, sysbench
        percentiles come from the summed latency histograms (the loadgen's
        are averaged over rounds). Prints the tables, the CPU arithmetic and
        the target verdicts; --markdown also writes them as Markdown. Exits 3
        with --fail-on-miss 1 when a target is missed, 1 when a correctness
        check of a phase failed (rows in the table != rows the client was
        told were inserted, or client errors).

    report.py delta BEFORE AFTER KEY
        BEFORE and AFTER are "key=value key=value ..." strings: prints
        AFTER[KEY] - BEFORE[KEY] (a missing key counts as 0).

Units: CPU figures are microseconds of CPU time per inserted row; 1 us per
row is 1 ms (0.001 s) per 1000 rows.
"""

import json
import math
import os
import sys
from collections import defaultdict

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import sbstats  # noqa: E402  (benches/lib/sbstats.py: sysbench report parser)

NAN = float("nan")


def words(text):
    out = {}
    for word in text.split():
        if "=" in word:
            key, value = word.split("=", 1)
            out[key] = value
    return out


def num(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return 0.0


def cmd_delta(before, after, key):
    b, a = words(before), words(after)
    print(f"{num(a.get(key)) - num(b.get(key)):.0f}")
    return 0


MACHINE_BUSY = ["m_user", "m_nice", "m_system", "m_irq", "m_softirq", "m_steal"]
MACHINE_KERNEL = ["m_system", "m_irq", "m_softirq"]
MACHINE_IDLE = ["m_idle", "m_iowait"]


class Phase:
    """One measured run, with its deltas."""

    def __init__(self, fields):
        self.f = fields
        self.kind = fields["kind"]
        self.variant = fields["variant"]
        self.threads = int(fields["threads"])
        self.target = fields["target"]
        self.round = int(fields["round"])
        self.clk = int(fields.get("clk_tck", 100))
        self.ncpu = int(fields.get("ncpu", 1))
        self.bg_busy = num(fields.get("bg_busy_pct"))
        self.contended = fields.get("contended") == "1"
        self.report = None
        if self.kind in ("sysbench", "ingest"):
            self.report = sbstats.parse(fields["file"])
            # An ingest statement of several rows is one sysbench event.
            self.rows = self.report.events * INGEST_ROWS.get(self.variant, 1) \
                if self.kind == "ingest" else self.report.events
            self.time = self.report.time
            self.errors = self.report.errors + self.report.reconnects
            self.p50 = self.report.percentile_us(50)
            self.p99 = self.report.percentile_us(99)
        else:
            with open(fields["file"], encoding="utf-8") as f:
                last = [line for line in f if line.strip().startswith("{")][-1]
            data = json.loads(last)
            self.rows = int(data["rows"])
            self.time = float(data["seconds"])
            self.errors = 0
            self.p50 = float(data["p50_us"])
            self.p99 = float(data["p99_us"])

    def d(self, key):
        return num(self.f.get("a." + key)) - num(self.f.get("b." + key))

    def has(self, key):
        return "a." + key in self.f and "b." + key in self.f

    @property
    def rows_table(self):
        return int(self.d("rows_in_table"))


class Cell:
    """All phases of one kind, variant, thread count and target."""

    def __init__(self):
        self.phases = []

    def add(self, phase):
        self.phases.append(phase)

    def total(self, key):
        return sum(p.d(key) for p in self.phases)

    @property
    def rows(self):
        # Ingestion rows that repeat a key do not all grow the table: a
        # row there is one the client sent.
        return sum(p.rows if p.kind == "ingest" else p.rows_table for p in self.phases)

    @property
    def client_rows(self):
        return sum(p.rows for p in self.phases)

    @property
    def time(self):
        return sum(p.time for p in self.phases)

    @property
    def rate(self):
        return self.client_rows / self.time if self.time else NAN

    @property
    def clk(self):
        return self.phases[0].clk

    @property
    def ncpu(self):
        return self.phases[0].ncpu

    def percentiles(self):
        first = self.phases[0]
        if first.report is not None:
            pooled = sbstats.Report()
            for p in self.phases:
                pooled.add(p.report)
            return pooled.percentile_us(50), pooled.percentile_us(99)
        return (sum(p.p50 for p in self.phases) / len(self.phases),
                sum(p.p99 for p in self.phases) / len(self.phases))

    def ticks_us_per_row(self, keys):
        rows = self.rows
        if rows <= 0:
            return NAN
        return sum(self.total(k) for k in keys) * 1e6 / self.clk / rows

    def ms_us_per_row(self, keys):
        rows = self.rows
        if rows <= 0:
            return NAN
        return sum(self.total(k) for k in keys) * 1000.0 / rows

    def per_1000_rows(self, key):
        rows = self.rows
        if rows <= 0 or not all(p.has(key) for p in self.phases):
            return NAN
        return self.total(key) * 1000.0 / rows

    def cpu(self):
        """CPU per row in us: a dict of named parts."""
        out = {
            "client": self.ms_us_per_row(["client_user_ms", "client_sys_ms"]),
            "client_sys": self.ms_us_per_row(["client_sys_ms"]),
            "sluice": self.ticks_us_per_row(["sluice_utime", "sluice_stime"]),
            "sluice_sys": self.ticks_us_per_row(["sluice_stime"]),
            "db": self.ticks_us_per_row(["db_utime", "db_stime"]),
            "db_sys": self.ticks_us_per_row(["db_stime"]),
            "machine": self.ticks_us_per_row(MACHINE_BUSY),
            "machine_kernel": self.ticks_us_per_row(MACHINE_KERNEL),
            "steal": self.ticks_us_per_row(["m_steal"]),
        }
        out["other"] = out["machine"] - out["client"] - out["sluice"] - out["db"]
        busy = self.total_list(MACHINE_BUSY)
        total = busy + self.total_list(MACHINE_IDLE)
        out["busy_pct"] = 100.0 * busy / total if total else NAN
        out["bg_busy_pct"] = sum(p.bg_busy for p in self.phases) / len(self.phases)
        return out

    def total_list(self, keys):
        return sum(self.total(k) for k in keys)

    def batching(self):
        """Backend statements and Sluice's batch counters, per phase pool."""
        rows = self.rows
        inserts = self.total("s_Com_insert")
        batches = self.total("q_batches")
        batched = self.total("q_rows_batched")
        return {
            "rows_per_insert": rows / inserts if inserts else NAN,
            "avg_batch": batched / batches if batches else NAN,
            "batched_share": 100.0 * batched / rows if rows else NAN,
            "batches": batches,
            "inserts": inserts,
            "failures": self.total("q_batch_failures"),
            "isolated": self.total("q_isolated_rows"),
            "commits_per_1k": self.per_1000_rows("s_Com_commit"),
            "fsyncs_per_1k": self.per_1000_rows("s_Innodb_data_fsyncs"),
            "log_writes_per_1k": self.per_1000_rows("s_Innodb_log_writes"),
            "unbatched": self.unbatched(),
        }

    def unbatched(self):
        keys = set()
        for p in self.phases:
            keys.update(k[2:] for k in p.f if k.startswith("a.q_unbatched_"))
        out = {}
        for key in sorted(keys):
            value = self.total(key)
            if value:
                out[key[len("q_unbatched_"):]] = int(value)
        return out

    def problems(self):
        out = []
        for p in self.phases:
            where = f"{p.kind}/{p.variant}/{p.threads}/{p.target}/r{p.round}"
            if p.kind == "ingest" and p.rows_table > p.rows:
                out.append(f"{where}: the client sent {p.rows} rows, the table grew by "
                           f"{p.rows_table}")
            elif p.kind != "ingest" and p.rows_table != p.rows:
                out.append(f"{where}: the client counted {p.rows} rows, the table grew by "
                           f"{p.rows_table}")
            # An ingestion phase's client ignores the repeated keys' 1062s.
            if p.errors and p.kind != "ingest":
                out.append(f"{where}: {p.errors} client errors/reconnects")
            if p.target == "sluice" and (p.d("q_outcome_unknown") or 0):
                out.append(f"{where}: {p.d('q_outcome_unknown'):.0f} rows with unknown outcome")
            if p.target == "direct" and p.d("q_rows_batched"):
                out.append(f"{where}: Sluice batched rows during a direct phase")
        return out


def f0(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.0f}"


def f1(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.1f}"


def f2(v):
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.2f}"


def table(headers, rows, markdown, left=2):
    if markdown:
        out = ["| " + " | ".join(headers) + " |",
               "|" + "|".join("---" if i < left else "---:" for i in range(len(headers))) + "|"]
        out += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(out)
    widths = [max([len(h)] + [len(r[i]) for r in rows]) for i, h in enumerate(headers)]

    def line(cells):
        return "  ".join(c.ljust(w) if i < left else c.rjust(w)
                         for i, (c, w) in enumerate(zip(cells, widths))).rstrip()

    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


# Ingestion variants (benches/lib/ingest.lua): what each sends, its rows
# per statement, and the throughput ratio it is held to.
INGEST_NAMES = {
    "dup0": "INSERT, no repeated keys",
    "dup1": "INSERT, 1 % repeated keys",
    "dup5": "INSERT, 5 % repeated keys",
    "ignore1": "INSERT IGNORE, 1 % repeated",
    "upsert1": "ON DUPLICATE KEY UPDATE, 1 % repeated",
    "rows5": "INSERT of 5 rows",
}
INGEST_ROWS = {"rows5": 5}
INGEST_MIN_RATIO = {"dup1": 1.3, "ignore1": 1.3, "upsert1": 1.3, "dup5": 1.1, "rows5": 1.2}


def workload_name(kind, variant):
    if kind == "sysbench":
        return "sysbench oltp_insert (text)"
    if kind == "ingest":
        return f"ingest: {INGEST_NAMES.get(variant, variant)}"
    return f"loadgen ({variant})"


def cmd_report(manifest, opts):
    cells = defaultdict(Cell)
    order = []
    with open(manifest, encoding="utf-8") as f:
        for raw in f:
            if not raw.strip():
                continue
            fields = dict(item.split("=", 1) for item in raw.rstrip("\n").split("\t") if "=" in item)
            phase = Phase(fields)
            key = (phase.kind, phase.variant, phase.threads)
            if key not in order:
                order.append(key)
            cells[key + (phase.target,)].add(phase)

    target_threads = int(opts["--target-threads"])
    main_rows, cpu_rows, backend_rows = [], [], []
    problems, checks, misses = [], [], []
    contended = []
    arithmetic = []
    for key in order:
        d, s = cells.get(key + ("direct",)), cells.get(key + ("sluice",))
        if d is None or s is None:
            continue
        kind, variant, threads = key
        name = workload_name(kind, variant)
        problems += d.problems() + s.problems()
        contended += [f"{p.kind}/{p.variant}/{p.threads}/{p.target}/r{p.round}"
                      for p in d.phases + s.phases if p.contended]
        ratio = s.rate / d.rate if d.rate else NAN
        per_round = []
        for pd in d.phases:
            for ps in s.phases:
                if ps.round == pd.round and pd.rows and pd.time:
                    per_round.append((ps.rows / ps.time) / (pd.rows / pd.time))
        spread = f"{min(per_round):.2f}-{max(per_round):.2f}" if len(per_round) > 1 else "-"
        d50, d99 = d.percentiles()
        s50, s99 = s.percentiles()
        sb = s.batching()
        main_rows.append([
            name, str(threads), f0(d.rate), f0(s.rate), f2(ratio), spread,
            f"{f0(d50)} / {f0(d99)}", f"{f0(s50)} / {f0(s99)}", f2(s50 / d50 if d50 else NAN),
            f1(sb["rows_per_insert"]), f1(sb["avg_batch"]), f0(sb["batched_share"]) + "%",
        ])
        cpus = {}
        for target, c in (("direct", d), ("sluice", s)):
            cpu = c.cpu()
            cpus[target] = cpu
            cpu_rows.append([
                name, str(threads), target,
                f1(cpu["client"]), f"{f1(cpu['sluice'])} ({f1(cpu['sluice_sys'])})",
                f"{f1(cpu['db'])} ({f1(cpu['db_sys'])})", f1(cpu["other"]),
                f1(cpu["machine"]), f1(cpu["machine_kernel"]), f1(cpu["steal"]),
                f"{cpu['busy_pct']:.0f}%", f"{cpu['bg_busy_pct']:.0f}%",
            ])
            b = c.batching()
            backend_rows.append([
                name, str(threads), target, str(c.rows), f1(1000.0 / b["rows_per_insert"]
                                                           if b["rows_per_insert"] else NAN),
                f1(b["commits_per_1k"]), f1(b["fsyncs_per_1k"]), f1(b["log_writes_per_1k"]),
                f0(b["batches"]) if target == "sluice" else "-",
                f0(b["failures"]) if target == "sluice" else "-",
                (", ".join(f"{k} {v}" for k, v in b["unbatched"].items()) or "-")
                if target == "sluice" else "-",
            ])
        if kind == "sysbench" and threads == target_threads:
            dc, sc = cpus["direct"], cpus["sluice"]
            db_ratio = sc["db"] / dc["db"] if dc["db"] else NAN
            ok = db_ratio <= float(opts["--max-db-cpu-ratio"])
            checks.append((ok, f"{name}, {threads} threads: mariadbd CPU per row through Sluice "
                               f"{sc['db']:.1f} us = {db_ratio:.2f} x direct ({dc['db']:.1f} us) "
                               f"(target <= {float(opts['--max-db-cpu-ratio']):.2f})"))
            ok = sc["sluice"] <= float(opts["--max-sluice-us"])
            per_stmt = (s.ticks_us_per_row(["sluice_utime", "sluice_stime"]) * s.rows
                        / sb["inserts"] if sb["inserts"] else NAN)
            checks.append((ok, f"{name}, {threads} threads: Sluice CPU per batched INSERT "
                               f"{sc['sluice']:.1f} us (target <= {float(opts['--max-sluice-us']):.0f} us; "
                               f"{per_stmt:.0f} us per multi-row statement it sent)"))
            ok = ratio >= float(opts["--min-ratio"])
            checks.append((ok, f"{name}, {threads} threads: rows/s through Sluice {s.rate:.0f} = "
                               f"{ratio:.2f} x direct {d.rate:.0f} (target >= "
                               f"{float(opts['--min-ratio']):.2f}; per round {spread})"))
            arithmetic += cpu_arithmetic(name, threads, d, s, dc, sc)
        if kind == "ingest" and variant in INGEST_MIN_RATIO:
            want = INGEST_MIN_RATIO[variant]
            checks.append((ratio >= want, f"{name}, {threads} threads: rows/s through Sluice "
                                          f"{s.rate:.0f} = {ratio:.2f} x direct {d.rate:.0f} "
                                          f"(target >= {want:.2f}; per round {spread})"))
        if kind == "sysbench" and threads == 1:
            p50_ratio = s50 / d50 if d50 else NAN
            ok = p50_ratio <= float(opts["--max-p50-ratio"])
            rounds = []
            for pd in d.phases:
                for ps in s.phases:
                    if ps.round == pd.round and pd.p50:
                        rounds.append(ps.p50 / pd.p50)
            note = (f"; per round {min(rounds):.2f}-{max(rounds):.2f}" if len(rounds) > 1 else "")
            checks.append((ok, f"{name}, 1 thread: p50 through Sluice {s50:.0f} us = "
                               f"{p50_ratio:.2f} x direct {d50:.0f} us (target <= "
                               f"{float(opts['--max-p50-ratio']):.2f}{note})"))
    for ok, text in checks:
        if not ok:
            misses.append(text)

    main_headers = ["workload", "conc", "direct rows/s", "sluice rows/s", "ratio", "ratio range",
                    "direct p50 / p99 us", "sluice p50 / p99 us", "p50 ratio",
                    "rows per INSERT", "avg batch", "rows batched"]
    cpu_headers = ["workload", "conc", "target", "client", "sluice (sys)", "mariadbd (sys)",
                   "other", "machine", "kernel", "steal", "busy", "bg before"]
    backend_headers = ["workload", "conc", "target", "rows", "INSERTs /1k rows",
                       "COMMITs /1k rows", "fsyncs /1k rows", "log writes /1k rows",
                       "batches", "failed", "unbatched (reason count)"]
    if not checks:
        verdict = ("no target applies (targets are for sysbench at 1 and the target thread "
                   "count, and for the ingestion phases)")
    elif misses:
        verdict = f"{len(misses)} of {len(checks)} target(s) missed"
    else:
        verdict = f"all {len(checks)} targets met"
    if problems:
        verdict += f"; {len(problems)} correctness problem(s)"

    def render(markdown):
        bullet = "- " if markdown else "  "
        out = [
            "Throughput and latency (conc = sysbench threads / loadgen clients; ratio = sluice /",
            "direct, pooled over rounds; ratio range = per round; rows per INSERT = rows / the",
            "server's Com_insert through Sluice; avg batch = SHOW SLUICE STATUS rows_batched /",
            "batches, multi-row batches only; rows batched = share of rows that went out in one):",
            "",
            table(main_headers, main_rows, markdown),
            "",
            "CPU per inserted row in us (= ms per 1000 rows): client = sysbench or loadgen;",
            "sluice and mariadbd from /proc/PID/stat (of which system time in brackets);",
            "machine = all busy CPU of the machine (/proc/stat), kernel = its system+irq+softirq",
            "part, steal = time the hypervisor gave to other guests (counted in machine);",
            "other = machine - client - sluice - mariadbd (kernel threads, other tenants);",
            "busy = share of all CPUs busy during the phases; bg before = busy share in the",
            "second before each phase, with nothing of the benchmark running:",
            "",
            table(cpu_headers, cpu_rows, markdown, left=3),
            "",
            "Backend statements (server status deltas) and Sluice's batches:",
            "",
            table(backend_headers, backend_rows, markdown, left=3),
            "",
        ]
        if arithmetic:
            out += ["Where the CPU goes:", ""]
            out += [(bullet + a) for a in arithmetic]
            out.append("")
        out.append("Targets:")
        if markdown:
            out.append("")
        out += [f"{bullet}{'MET ' if ok else 'MISS'} {text}" for ok, text in checks]
        if contended:
            out.append("")
            out.append("Measured while another benchmark still ran (after the longest wait): "
                       + ", ".join(contended))
        if problems:
            out.append("")
            out.append("Correctness problems:")
            out += [bullet + p for p in problems]
        out.append("")
        out.append(f"Verdict: {verdict}")
        return "\n".join(out)

    print(render(False))
    if opts["--markdown"]:
        with open(opts["--markdown"], "w", encoding="utf-8") as f:
            f.write(render(True) + "\n")
    if problems:
        return 1
    return 3 if misses and opts["--fail-on-miss"] == "1" else 0


def cpu_arithmetic(name, threads, d, s, dc, sc):
    """Sentences on where the CPU of one row goes, direct vs through Sluice."""
    ncpu = d.ncpu
    out = []
    for label, c, cpu in (("direct", d, dc), ("through Sluice", s, sc)):
        cap = ncpu * 1e6 / cpu["machine"] if cpu["machine"] else NAN
        out.append(
            f"{name}, {threads} threads, {label}: {cpu['machine']:.0f} us of machine CPU per row = "
            f"client {cpu['client']:.0f} + sluice {cpu['sluice']:.0f} + mariadbd {cpu['db']:.0f} + "
            f"other {cpu['other']:.0f} (kernel share of the whole {cpu['machine_kernel']:.0f}); "
            f"{ncpu} CPUs / {cpu['machine']:.0f} us = {cap:.0f} rows/s if the machine did nothing "
            f"else; measured {c.rate:.0f} rows/s at {cpu['busy_pct']:.0f}% busy")
    if dc["machine"] and sc["machine"]:
        free = sc["machine"] - sc["sluice"]
        out.append(
            f"{name}, {threads} threads: machine CPU per row through Sluice / direct = "
            f"{sc['machine']:.0f} / {dc['machine']:.0f}, so a CPU-bound ratio of "
            f"{dc['machine'] / sc['machine']:.2f}; with a proxy that cost nothing it would be "
            f"{dc['machine'] / free:.2f} ({dc['machine']:.0f} / {free:.0f})")
    return out


def main(argv):
    if len(argv) == 4 and argv[0] == "delta":
        return cmd_delta(argv[1], argv[2], argv[3])
    if len(argv) >= 2 and argv[0] == "report":
        opts = sbstats.parse_options(argv[2:], {
            "--markdown": None, "--target-threads": "64", "--min-ratio": "1.8",
            "--max-db-cpu-ratio": "0.25", "--max-sluice-us": "10",
            "--max-p50-ratio": "1.2", "--fail-on-miss": "0"})
        if opts is None:
            return 2
        return cmd_report(argv[1], opts)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
