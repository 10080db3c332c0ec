"""The sandbox's stored mode against the client it serves (issue 22, item 3).

    python bench/sandbox_stored.py --events 200000 --repeat 3

Side by side, interleaved, medians of --repeat: `revbridge send` to a `--no-store` sandbox (the
client's rate against an instant sink) and the same command to a sandbox writing a fresh
`--db` (events, identity graph and profiles committed before every 202). The target is a
stored rate at least 1.0x the sink rate: then a rehearsal of a big import measures the client,
not the sandbox. Each sandbox is its own process, started through the real command.

CPU seconds are printed too (the client's from its rusage, the sandbox's from /proc): on two
cores the client and the sandbox each get one, so a stored sandbox that spends no more CPU
per event than the client keeps up with it, and that comparison survives a noisy machine,
where wall times mostly measure the neighbours.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
from pathlib import Path

import generate
import orjson
from measure import SandboxProcess, revbridge_command, run_child


def send(path: Path, sb: SandboxProcess, events: int) -> tuple[float, float, float]:
    """Wall seconds, the client's CPU seconds and the sandbox's CPU seconds of one send."""
    before = sb.cpu_seconds()
    argv = [*revbridge_command(), "send", str(path), *sb.credentials(), "--quiet", "--json"]
    run = run_child(argv)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    summary = orjson.loads(lines[-1]) if lines else {}
    if run.returncode != 0 or summary.get("events_accepted") != events:
        sys.exit(f"send failed: exit {run.returncode}: {(run.stderr or run.stdout)[-2000:]}")
    return run.seconds, run.cpu_seconds, sb.cpu_seconds() - before


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    path = generate.ensure(args.events)
    sink: list[tuple[float, float, float]] = []
    stored: list[tuple[float, float, float]] = []
    for i in range(args.repeat):
        with SandboxProcess() as sb:
            sink.append(send(path, sb, args.events))
        with (
            tempfile.TemporaryDirectory(prefix="revbridge-bench-db-") as tmp,
            SandboxProcess(db=Path(tmp) / "stored.db") as sb,
        ):
            stored.append(send(path, sb, args.events))
        print(f"  run {i + 1}: sink {sink[-1]}, stored {stored[-1]}", file=sys.stderr)
    per_100k = 100_000 / args.events

    def med(runs: list[tuple[float, float, float]], i: int) -> float:
        return statistics.median(run[i] for run in runs)

    rate_sink, rate_stored = args.events / med(sink, 0), args.events / med(stored, 0)
    ratio = rate_stored / rate_sink
    print(f"input: {path.name}, {args.events:,} events; medians of {args.repeat} runs")
    for label, runs in (("--no-store sandbox", sink), ("stored sandbox    ", stored)):
        print(
            f"revbridge send, {label}: {args.events / med(runs, 0):,.0f} events/s; CPU s per "
            f"100k events: client {med(runs, 1) * per_100k:.2f}, "
            f"sandbox {med(runs, 2) * per_100k:.2f}"
        )
    verdict = "met" if ratio >= 1.0 else "NOT MET"
    print(f"stored / sink (wall): {ratio:.2f}x (target >= 1.0x: {verdict})")
    cpu = med(stored, 2) / med(sink, 1)
    print(f"stored sandbox CPU / client CPU: {cpu:.2f} (at most 1.0 keeps up on two cores)")


if __name__ == "__main__":
    main()
