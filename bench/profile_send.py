"""Where `revbridge send` spends its time: py-spy over the real command, summarised.

Runs `revbridge send` on the benchmark input against a no-store sandbox in its own process,
under `py-spy record --format raw` (collapsed stacks), and aggregates the samples by function
(self and inclusive share), by line, and by file, so the hot spots can be named precisely
without opening a flame graph. py-spy samples from outside the process, so the run is not
slowed by instrumentation the way cProfile would slow it.

    pip install py-spy            # it needs ptrace: run as root, or allow it in the container
    python bench/profile_send.py                      # 1,000,000 events
    python bench/profile_send.py --events 200000 --top 30

Writes bench/results/profile.md (the summary) and bench/data/profile.raw (the stacks; load it
in speedscope.app or feed it to flamegraph.pl for a picture).
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import generate
import orjson
from measure import BENCH, SandboxProcess, revbridge_command

_FRAME = re.compile(r"^(?P<func>.*) \((?P<file>.*?)(?::(?P<line>\d+))?\)$")
_SHORTEN = (
    (re.compile(r"^.*/site-packages/"), ""),
    (re.compile(r"^.*/lib/python3\.\d+/"), "stdlib/"),
    (re.compile(r"^" + re.escape(str(BENCH.parent)) + "/"), ""),
)


def _short(path: str) -> str:
    for pattern, repl in _SHORTEN:
        path = pattern.sub(repl, path)
    return path


def _parse(raw: Path) -> list[tuple[list[tuple[str, str, str]], int]]:
    """Collapsed stacks: 'frame;frame;... count' with frames 'func (file:line)'."""
    stacks = []
    for line in raw.read_text().splitlines():
        text, _, count = line.rpartition(" ")
        if not text or not count.isdigit():
            continue
        frames = []
        for frame in text.split(";"):
            m = _FRAME.match(frame)
            if m:
                frames.append((m["func"], _short(m["file"]), m["line"] or "?"))
        if frames:
            stacks.append((frames, int(count)))
    return stacks


def summarise(raw: Path, top: int) -> str:
    stacks = _parse(raw)
    total = sum(n for _, n in stacks)
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    lines: Counter[str] = Counter()
    files: Counter[str] = Counter()
    for frames, n in stacks:
        func, file, line = frames[-1]
        own[f"{file}:{func}"] += n
        lines[f"{file}:{line} ({func})"] += n
        files[file] += n
        for key in {f"{f}:{fn}" for fn, f, _ in frames}:
            inclusive[key] += n

    def table(title: str, counts: Counter[str], k: int) -> list[str]:
        out = [f"### {title}", "", "| share | samples | where |", "|---:|---:|---|"]
        out += [f"| {c / total:6.1%} | {c:,} | `{key}` |" for key, c in counts.most_common(k)]
        return [*out, ""]

    return "\n".join(
        [
            f"{total:,} samples (on-CPU only: time waiting on the server is not sampled)",
            "",
            *table("Self time by function (where the CPU actually is)", own, top),
            *table("Inclusive time by function (itself and everything it calls)", inclusive, top),
            *table("Self time by line", lines, top),
            *table("Self time by file", files, top),
        ]
    )


def _outcome(stdout: str) -> str:
    """The figures of revbridge's `--json` line; py-spy writes its own lines beside it."""
    for line in reversed(stdout.splitlines()):
        try:
            s = orjson.loads(line)
        except orjson.JSONDecodeError:
            continue
        if isinstance(s, dict) and "exit_code" in s:
            return (
                f"exit {s['exit_code']}, {s.get('events_accepted', 0):,} events accepted in "
                f"{s.get('requests', 0):,} requests, {s.get('elapsed_seconds', 0):.1f} s"
            )
    return "no --json summary was printed"


def main() -> None:
    p = argparse.ArgumentParser(description="profile revbridge send with py-spy")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--rate", type=int, default=100, help="py-spy samples per second")
    p.add_argument("--top", type=int, default=20)
    p.add_argument("--latency", type=float, default=0.0, help="sandbox latency, s")
    p.add_argument("--revbridge-args", default="", help="extra options for revbridge send")
    args = p.parse_args()
    beside = Path(sys.executable).parent / "py-spy"  # not a version manager's shim
    py_spy = str(beside) if beside.exists() else shutil.which("py-spy")
    if py_spy is None:
        sys.exit("py-spy is not installed: pip install py-spy")
    path = generate.ensure(args.events)
    raw = generate.DATA_DIR / "profile.raw"
    with SandboxProcess(args.latency) as sb:
        send = [*revbridge_command(), "send", str(path), *sb.credentials(), "--quiet", "--json"]
        send += args.revbridge_args.split()
        argv = [py_spy, "record", "--format", "raw", "--rate", str(args.rate), "-o", str(raw)]
        started = time.monotonic()
        done = subprocess.run([*argv, "--", *send], capture_output=True, text=True)
        seconds = time.monotonic() - started
    if done.returncode != 0:
        sys.exit(f"py-spy or revbridge failed ({done.returncode}):\n{done.stderr[-3000:]}")
    head = [
        "## Profile of `revbridge send`",
        "",
        f"{args.events:,} events ({path.name}), no-store sandbox in its own process, latency "
        f"{args.latency * 1000:.0f} ms; {seconds:.1f} s under py-spy at {args.rate} Hz.",
        f"The run: {_outcome(done.stdout)}.",
        "",
    ]
    text = "\n".join(head) + summarise(raw, args.top)
    out = BENCH / "results" / "profile.md"
    out.parent.mkdir(exist_ok=True)
    out.write_text(text + "\n")
    print(text)
    print(f"\nwritten: {out}, stacks: {raw}", file=sys.stderr)


if __name__ == "__main__":
    main()
