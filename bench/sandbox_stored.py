"""The sandbox's stored mode against the client it serves (issue 22, item 3).

    python bench/sandbox_stored.py --events 200000 --repeat 3

Side by side, interleaved, medians of --repeat: `revbridge send` to a `--no-store` sandbox (the
client's rate against an instant sink) and the same command to a sandbox writing a fresh
`--db` (events, identity graph and profiles committed before every 202). The target is a
stored rate at least 1.0x the sink rate: then a rehearsal of a big import measures the client,
not the sandbox. Each sandbox is its own process, started through the real command.
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


def send(path: Path, sb: SandboxProcess, events: int) -> float:
    argv = [*revbridge_command(), "send", str(path), *sb.credentials(), "--quiet", "--json"]
    run = run_child(argv)
    lines = [line for line in run.stdout.splitlines() if line.startswith("{")]
    summary = orjson.loads(lines[-1]) if lines else {}
    if run.returncode != 0 or summary.get("events_accepted") != events:
        sys.exit(f"send failed: exit {run.returncode}: {(run.stderr or run.stdout)[-2000:]}")
    return run.seconds


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--events", type=int, default=200_000)
    p.add_argument("--repeat", type=int, default=3)
    args = p.parse_args()
    path = generate.ensure(args.events)
    sink: list[float] = []
    stored: list[float] = []
    for i in range(args.repeat):
        with SandboxProcess() as sb:
            sink.append(send(path, sb, args.events))
        with (
            tempfile.TemporaryDirectory(prefix="revbridge-bench-db-") as tmp,
            SandboxProcess(db=Path(tmp) / "stored.db") as sb,
        ):
            stored.append(send(path, sb, args.events))
        print(f"  run {i + 1}: sink {sink[-1]:.2f} s, stored {stored[-1]:.2f} s", file=sys.stderr)
    rate_sink = args.events / statistics.median(sink)
    rate_stored = args.events / statistics.median(stored)
    ratio = rate_stored / rate_sink
    print(f"input: {path.name}, {args.events:,} events; medians of {args.repeat} runs")
    print(f"revbridge send, --no-store sandbox: {rate_sink:,.0f} events/s")
    print(f"revbridge send, stored sandbox:     {rate_stored:,.0f} events/s")
    verdict = "met" if ratio >= 1.0 else "NOT MET"
    print(f"stored / sink: {ratio:.2f}x (target >= 1.0x: {verdict})")


if __name__ == "__main__":
    main()
