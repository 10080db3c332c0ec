"""The benchmark of issue 5, in one command: the floor, the naive importer and `revbridge send`,
side by side on the same generated input, against a no-store sandbox in its own process.

    python bench/run.py                         # 1,000,000 events, 3 repeats
    python bench/run.py --quick                 # the latency scenario runs once
    python bench/run.py --memory-check          # + revbridge on 5x the input (RSS flatness)
    python bench/run.py --json-array            # + a ~2 GB JSON array file (RSS flatness)
    python bench/run.py --formats               # + the same events as CSV and Parquet

Every figure is the median of --repeat runs, and every ratio compares figures of this same
run, so a noisy machine shifts both sides together. Results are printed, and written to
bench/results/latest.json and bench/results/performance-table.md. See bench/README.md.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
from pathlib import Path
from typing import Any

import generate
import orjson
from measure import BENCH, ChildRun, SandboxProcess, revbridge_command, run_child
from report import (
    Figure,
    Target,
    machine,
    markdown_table,
    notes,
    target_lines,
    text_table,
)

RESULTS = BENCH / "results"
FLOOR_SHARE = 0.35
SPEEDUP_INSTANT = 3.0
SPEEDUP_LATENCY = 10.0
RSS_LIMIT_MB = 300.0
RSS_GROWTH = 1.3


class Bench:
    """One benchmark run: the input, the options, and the problems found on the way."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.problems: list[str] = []
        self.extra = shlex.split(args.revbridge_args)
        self.parquet_fixed_mb = 0.0  # set by `formats`

    # ---- one contender, one run ----------------------------------------------------------

    def _log(self, what: str, run: ChildRun) -> None:
        print(f"    {what}: {run.seconds:.2f} s, {run.peak_rss_mb:.0f} MB", file=sys.stderr)

    def _check(self, what: str, run: ChildRun, ok: bool) -> None:
        if run.returncode != 0 or not ok:
            tail = (run.stderr or run.stdout)[-2000:]
            self.problems.append(f"{what}: exit {run.returncode}, output: {tail.strip()}")

    def floor(self, path: Path, fig: Figure) -> None:
        run = run_child([sys.executable, str(BENCH / "floor.py"), str(path)])
        self._check("floor", run, _last_json(run).get("events") == fig.events)
        self._record("floor", run, fig)

    def naive(self, path: Path, sb: SandboxProcess, fig: Figure) -> None:
        argv = [sys.executable, str(BENCH / "naive_importer.py"), str(path), *sb.credentials()]
        if fig.extrapolated:
            argv += ["--limit", str(fig.events)]
        run = run_child(argv)
        summary = _last_json(run)
        self._check("naive importer", run, summary.get("users_accepted") == fig.events)
        self._record("naive", run, fig, summary.get("requests"))

    def revbridge(self, path: Path, sb: SandboxProcess, fig: Figure) -> None:
        argv = [*revbridge_command(), "send", str(path), *sb.credentials(), "--quiet", "--json"]
        run = run_child([*argv, *self.extra])
        summary = _last_json(run)
        accepted = summary.get("events_accepted") == fig.events
        self._check(f"revbridge send {path.name}", run, accepted and summary.get("exit_code") == 0)
        self._record("revbridge", run, fig, summary.get("requests"))

    def client_alone(self, path: Path, fig: Figure) -> None:
        """`send --dry-run`: the same read, checks and packing with no HTTP and no server, so
        the client's own ceiling on this machine shows beside what the server lets it reach."""
        argv = [*revbridge_command(), "send", str(path), "--dry-run", "--quiet", "--json"]
        run = run_child([*argv, *self.extra])
        summary = _last_json(run)
        packed = summary.get("events_sent") == fig.events
        self._check("revbridge send --dry-run", run, packed and summary.get("exit_code") == 0)
        self._record("client alone", run, fig)

    def _record(self, what: str, run: ChildRun, fig: Figure, requests: int | None = None) -> None:
        self._log(what, run)
        fig.seconds.append(run.seconds)
        fig.rss_mb.append(run.peak_rss_mb)
        if isinstance(requests, int):
            fig.requests.append(requests)

    # ---- scenarios -----------------------------------------------------------------------

    def instant(self, path: Path, n: int) -> list[Figure]:
        size = path.stat().st_size
        floor = Figure("floor (read + orjson.loads)", n, size, n)
        naive = Figure("naive importer (vendor docs)", n, size, n)
        rb = Figure("revbridge send", n, size, n)
        alone = Figure("revbridge send --dry-run (no HTTP)", n, size, n)
        with SandboxProcess(0.0) as sb:
            for i in range(self.args.repeat):
                print(f"  no latency, run {i + 1}/{self.args.repeat}", file=sys.stderr)
                self.floor(path, floor)
                self.naive(path, sb, naive)
                self.revbridge(path, sb, rb)
                self.client_alone(path, alone)
        return [floor, naive, rb, alone]

    def latency(self, path: Path, n: int) -> list[Figure]:
        a = self.args
        prefix = min(a.naive_prefix, n)
        naive = Figure("naive importer (vendor docs)", prefix, _prefix_bytes(path, prefix), n)
        if prefix < n:
            naive.note = (
                f"run on the first {prefix:,} events only; its rate is measured, its wall "
                f"time (*) extrapolated to {n:,} events"
            )
        rb = Figure("revbridge send", n, path.stat().st_size, n)
        repeat = 1 if a.quick else a.repeat
        with SandboxProcess(a.latency) as sb:
            for i in range(repeat):
                print(f"  latency {a.latency * 1000:.0f} ms, run {i + 1}/{repeat}", file=sys.stderr)
                self.naive(path, sb, naive)
                self.revbridge(path, sb, rb)
        return [naive, rb]

    def formats(self, ndjson: Path, n: int) -> list[Figure]:
        """The same events as NDJSON, CSV and Parquet, instant server: rate and peak RSS of
        each format side by side (issue 15: within 1.3x of NDJSON's memory), and Parquet on a
        fifth of the rows, for whether its memory grows with the file. Sets `parquet_fixed_mb`."""
        small = max(1, n // 5)
        paths = [ndjson, generate.ensure_format(n, "csv"), generate.ensure_format(n, "parquet")]
        paths.append(generate.ensure_format(small, "parquet"))
        sizes = [n, n, n, small]
        figs = [
            Figure(f"revbridge send, {p.suffix[1:].upper()}", m, p.stat().st_size, m)
            for p, m in zip(paths, sizes, strict=True)
        ]
        figs[-1].name += f" {small:,} rows"
        fixed: list[float] = []
        with SandboxProcess(0.0) as sb:
            for i in range(self.args.repeat):
                print(f"  formats, run {i + 1}/{self.args.repeat}", file=sys.stderr)
                for path, fig in zip(paths, figs, strict=True):
                    self.revbridge(path, sb, fig)
                fixed.append(self._parquet_fixed_cost(paths[2]))
        self.parquet_fixed_mb = statistics.median(fixed)
        return figs

    def _parquet_fixed_cost(self, parquet: Path) -> float:
        """What pyarrow costs before any row is shaped: importing it and opening a reader on
        the file (its first batch), over the same process without it. It does not grow with
        the file, so the formats' targets compare what is left (see docs/performance.md)."""
        base = "import revbridge_cli.run"
        probe = (
            f"{base}; from revbridge_cli.input.parquet_rows import ParquetRows; "
            f"next(iter(ParquetRows({str(parquet)!r}, 'bench')))"
        )
        runs = [run_child([sys.executable, "-c", code]) for code in (base, probe)]
        for code, run in zip((base, probe), runs, strict=True):
            self._check(f"python -c {code!r}", run, run.returncode == 0)
        return runs[1].peak_rss_mb - runs[0].peak_rss_mb

    def single(self, path: Path, n: int, name: str) -> Figure:
        """revbridge alone on a bigger input, once: for peak RSS against input size."""
        fig = Figure(name, n, path.stat().st_size, n)
        with SandboxProcess(0.0) as sb:
            print(f"  {name}", file=sys.stderr)
            self.revbridge(path, sb, fig)
        return fig


def _last_json(run: ChildRun) -> dict[str, Any]:
    lines = run.stdout.strip().splitlines()
    try:
        value = orjson.loads(lines[-1]) if lines else {}
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def _prefix_bytes(path: Path, n: int) -> int:
    size = 0
    with open(path, "rb") as f:
        for i, line in enumerate(f):
            if i == n:
                break
            size += len(line)
    return size


FORMATS_TITLE = "the same events as NDJSON, CSV and Parquet (server latency 0)"


def _format_targets(figs: list[Figure], parquet_fixed_mb: float) -> list[Target]:
    """Issue 15's figure as written (each format's peak within 1.3x of NDJSON's), and for
    Parquet the two that say whether its memory is flat: its peak less pyarrow's fixed cost
    (measured in this run), and its peak on 5x the rows against a fifth of them."""
    ndjson, csv, parquet, parquet_small = figs
    out = []
    for fig in (csv, parquet):
        growth = fig.peak_rss / ndjson.peak_rss
        out.append(
            Target(
                f"peak RSS {fig.name.rsplit(' ', 1)[1]} <= {RSS_GROWTH:g}x NDJSON's",
                f"{fig.peak_rss:.1f} MB = {growth:.2f}x ({fig.rate / ndjson.rate:.0%} of its rate)",
                growth <= RSS_GROWTH,
            )
        )
    beyond = parquet.peak_rss - parquet_fixed_mb
    out.append(
        Target(
            f"peak RSS PARQUET less pyarrow's fixed cost ({parquet_fixed_mb:.1f} MB: its import "
            f"and one open reader, measured here) <= {RSS_GROWTH:g}x NDJSON's",
            f"{beyond:.1f} MB = {beyond / ndjson.peak_rss:.2f}x",
            beyond <= RSS_GROWTH * ndjson.peak_rss,
        )
    )
    growth = parquet.peak_rss / parquet_small.peak_rss
    out.append(
        Target(
            f"peak RSS PARQUET, {parquet.events:,} rows <= {RSS_GROWTH:g}x its "
            f"{parquet_small.events:,} rows' (flat in the file's size)",
            f"{parquet.peak_rss:.1f} MB against {parquet_small.peak_rss:.1f} MB = {growth:.2f}x",
            growth <= RSS_GROWTH,
        )
    )
    return out


def _formats_only(
    args: argparse.Namespace,
    bench: Bench,
    path: Path,
    n: int,
    head: list[str],
    info: dict[str, Any],
) -> None:
    """`--formats-only`: the formats comparison alone, written beside the main results (to
    formats.json and formats-table.md) so that it never overwrites them."""
    figs = bench.formats(path, n)
    targets = _format_targets(figs, bench.parquet_fixed_mb)
    out = [*head, "", FORMATS_TITLE, text_table(figs), "targets:", *target_lines(targets)]
    if bench.problems:
        out += ["PROBLEMS:", *(f"  - {p}" for p in bench.problems)]
    print("\n".join(out))
    RESULTS.mkdir(exist_ok=True)
    data = {
        "machine": info,
        "options": vars(args),
        "figures": [f.to_json() for f in figs],
        "targets": [{"label": t.label, "value": t.value, "met": t.met} for t in targets],
        "problems": bench.problems,
    }
    (RESULTS / "formats.json").write_bytes(orjson.dumps(data, option=orjson.OPT_INDENT_2))
    table = [*head, "", f"**{FORMATS_TITLE}**", "", markdown_table(figs), "", "Targets:", ""]
    table += [f"- {line.strip()}" for line in target_lines(targets)]
    (RESULTS / "formats-table.md").write_text("\n".join(table) + "\n")


def _targets(
    instant: list[Figure], latency: list[Figure], extra: dict[str, Figure], lat_ms: str
) -> list[Target]:
    floor, naive, rb, _ = instant
    naive_l, rb_l = latency
    share = rb.rate / floor.rate
    speed = rb.rate / naive.rate
    speed_l = rb_l.rate / naive_l.rate
    rss = max(rb.peak_rss, rb_l.peak_rss)
    out = [
        Target(
            f"end-to-end rate >= {FLOOR_SHARE:.0%} of the floor",
            f"{share:.1%} ({rb.rate:,.0f} vs {floor.rate:,.0f} events/s)",
            share >= FLOOR_SHARE,
        ),
        Target(
            f">= {SPEEDUP_INSTANT:g}x the naive importer, instant server",
            f"{speed:.2f}x",
            speed >= SPEEDUP_INSTANT,
        ),
        Target(
            f">= {SPEEDUP_LATENCY:g}x the naive importer, {lat_ms} server latency",
            f"{speed_l:.2f}x",
            speed_l >= SPEEDUP_LATENCY,
        ),
        Target(f"peak RSS < {RSS_LIMIT_MB:g} MB", f"{rss:.1f} MB", rss < RSS_LIMIT_MB),
    ]
    for name, fig in extra.items():
        growth = fig.peak_rss / rb.peak_rss
        out.append(
            Target(
                f"peak RSS {name} <= {RSS_GROWTH:g}x the 1x NDJSON run, and < {RSS_LIMIT_MB:g} MB",
                f"{fig.peak_rss:.1f} MB = {growth:.2f}x",
                growth <= RSS_GROWTH and fig.peak_rss < RSS_LIMIT_MB,
            )
        )
    return out


def _parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description="revbridge benchmark (issue 5)")
    p.add_argument("--events", type=int, default=1_000_000, help="events in the input")
    p.add_argument("--repeat", type=int, default=3, help="runs per figure (median)")
    p.add_argument("--quick", action="store_true", help="run the latency scenario once")
    p.add_argument("--latency", type=float, default=0.2, help="server latency, s")
    p.add_argument(
        "--naive-prefix",
        type=int,
        default=50_000,
        help="events the naive importer sends with latency (rate extrapolated)",
    )
    p.add_argument("--memory-check", action="store_true", help="also run revbridge on 5x")
    p.add_argument("--json-array", action="store_true", help="also run a JSON array input")
    p.add_argument(
        "--formats", action="store_true", help="also run the same events as CSV and Parquet"
    )
    p.add_argument(
        "--formats-only",
        action="store_true",
        help="run only the formats comparison (NDJSON, CSV, Parquet), not the other scenarios",
    )
    p.add_argument(
        "--json-array-events",
        type=int,
        default=10_000_000,
        help="events in the JSON array file (10,000,000 is about 2 GB)",
    )
    p.add_argument(
        "--revbridge-args",
        default="",
        help="extra options for revbridge send, e.g. '--concurrency 16'",
    )
    return p.parse_args()


def main() -> None:
    args = _parse()
    bench = Bench(args)
    n = args.events
    path = generate.ensure(n)
    info = machine()
    size = path.stat().st_size
    head = [
        f"machine: {info['cpu']}, {info['cores']} cores, "
        f"{info['implementation']} {info['python']}, "
        f"load average at start {info['load_average_at_start'][0]}",
        f"input: {path.name}, {n:,} flat events, {size / 1e6:,.1f} MB NDJSON, "
        f"{max(1, n // generate.EVENTS_PER_USER):,} users interleaved (seed {generate.SEED})",
        f"medians of {args.repeat} runs; revbridge extra args: {args.revbridge_args or 'none'}",
    ]
    print("\n".join(head), file=sys.stderr)
    if args.formats_only:
        _formats_only(args, bench, path, n, head, info)
        return
    instant = bench.instant(path, n)
    latency = bench.latency(path, n)
    extra: dict[str, Figure] = {}
    if args.memory_check:
        big = generate.ensure(5 * n)
        extra["5x NDJSON"] = bench.single(big, 5 * n, "revbridge send, 5x NDJSON")
    if args.json_array:
        m = args.json_array_events
        array = generate.ensure(m, array=True)
        extra["JSON array"] = bench.single(array, m, f"revbridge send, JSON array {m:,}")
    lat_ms = f"{args.latency * 1000:.0f} ms"
    targets = _targets(instant, latency, extra, lat_ms)
    sections = [
        ("server latency 0 (instant)", instant),
        (f"server latency {lat_ms}" + (" (1 run: --quick)" if args.quick else ""), latency),
    ]
    if extra:
        sections.append(("peak memory against input size (1 run each)", list(extra.values())))
    if args.formats:
        figs = bench.formats(path, n)
        sections.append((FORMATS_TITLE, figs))
        targets += _format_targets(figs, bench.parquet_fixed_mb)
    out = [*head, ""]
    for title, figs in sections:
        out += [title, text_table(figs), *(f"  {line}" for line in notes(figs)), ""]
    floor, naive, rb, alone = instant
    out += [
        "ratios (same run):",
        f"  revbridge / floor, instant:  {rb.rate / floor.rate:.1%}",
        f"  revbridge --dry-run / floor: {alone.rate / floor.rate:.1%} (the client alone)",
        f"  revbridge / naive, instant:  {rb.rate / naive.rate:.2f}x",
        f"  revbridge / naive, {lat_ms}:  {latency[1].rate / latency[0].rate:.2f}x",
        "targets:",
        *target_lines(targets),
    ]
    if bench.problems:
        out += ["PROBLEMS (a contender failed or did not deliver everything):"]
        out += [f"  - {p}" for p in bench.problems]
    print("\n".join(out))
    _write(args, info, sections, targets, bench.problems, head)


def _write(
    args: argparse.Namespace,
    info: dict[str, Any],
    sections: list[tuple[str, list[Figure]]],
    targets: list[Target],
    problems: list[str],
    head: list[str],
) -> None:
    RESULTS.mkdir(exist_ok=True)
    data = {
        "machine": info,
        "options": vars(args),
        "scenarios": [
            {"title": title, "figures": [f.to_json() for f in figs]} for title, figs in sections
        ],
        "targets": [{"label": t.label, "value": t.value, "met": t.met} for t in targets],
        "problems": problems,
    }
    opts = orjson.OPT_INDENT_2
    (RESULTS / "latest.json").write_bytes(orjson.dumps(data, option=opts) + b"\n")
    md = [*(f"{line}  " for line in head), ""]
    for title, figs in sections:
        md += [f"**{title}**", "", markdown_table(figs), ""]
        md += [f"{line}  " for line in notes(figs)] + ([""] if notes(figs) else [])
    md += ["Targets:", ""]
    md += [f"- {'met' if t.met else '**not met**'}: {t.label}: {t.value}" for t in targets]
    (RESULTS / "performance-table.md").write_text("\n".join(md) + "\n")


if __name__ == "__main__":
    main()
