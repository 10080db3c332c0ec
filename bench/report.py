"""Figures, ratios and targets of one benchmark run, as a text table, Markdown and JSON.

Kept apart from the running so the arithmetic (medians, ratios, extrapolation, met/not met)
can be read in one place and checked by eye against the printed table.
"""

from __future__ import annotations

import os
import platform
import statistics
from dataclasses import dataclass, field
from typing import Any

MB = 1e6


@dataclass
class Figure:
    """One contender in one scenario over its repeats. A run on a prefix of the input
    (`events` < `total_events`) reports its measured rate and an extrapolated wall time."""

    name: str
    events: int
    input_bytes: int
    total_events: int
    seconds: list[float] = field(default_factory=list)
    rss_mb: list[float] = field(default_factory=list)
    requests: list[int] = field(default_factory=list)  # what the contender said it sent
    note: str = ""

    @property
    def median_seconds(self) -> float:
        return statistics.median(self.seconds)

    @property
    def rate(self) -> float:
        return self.events / self.median_seconds

    @property
    def mb_per_s(self) -> float:
        return self.input_bytes / MB / self.median_seconds

    @property
    def extrapolated(self) -> bool:
        return self.events < self.total_events

    @property
    def wall(self) -> float:
        """Wall time for the whole input: measured, or extrapolated from a prefix's rate."""
        return self.total_events / self.rate if self.extrapolated else self.median_seconds

    @property
    def peak_rss(self) -> float:
        return statistics.median(self.rss_mb)

    @property
    def median_requests(self) -> float | None:
        """Per run of `events`: with latency, what a contender's wall time mostly pays for."""
        return statistics.median(self.requests) if self.requests else None

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "events": self.events,
            "total_events": self.total_events,
            "input_bytes": self.input_bytes,
            "runs_seconds": [round(s, 3) for s in self.seconds],
            "runs_peak_rss_mb": [round(r, 1) for r in self.rss_mb],
            "median_seconds": round(self.median_seconds, 3),
            "events_per_second": round(self.rate, 1),
            "mb_per_second": round(self.mb_per_s, 2),
            "wall_seconds_full_input": round(self.wall, 3),
            "extrapolated": self.extrapolated,
            "peak_rss_mb": round(self.peak_rss, 1),
            "runs_requests": self.requests,
            "note": self.note,
        }


@dataclass(frozen=True, slots=True)
class Target:
    label: str
    value: str
    met: bool


def machine() -> dict[str, Any]:
    """What the figures were measured on; the load average says how noisy it was."""
    model = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }


def _row(f: Figure) -> list[str]:
    star = "*" if f.extrapolated else ""
    requests = f.median_requests
    return [
        f.name,
        f"{f.events:,}",
        f"{f.wall:,.2f}{star}",
        f"{f.rate:,.0f}",
        f"{f.mb_per_s:,.1f}",
        "-" if requests is None else f"{requests:,.0f}",
        f"{f.peak_rss:,.1f}",
    ]


_HEADER = ["contender", "events run", "wall s", "events/s", "MB/s", "requests", "peak RSS MB"]


def text_table(figures: list[Figure]) -> str:
    rows = [_HEADER, *(_row(f) for f in figures)]
    widths = [max(len(r[i]) for r in rows) for i in range(len(_HEADER))]
    lines = []
    for r in rows:
        numbers = zip(r[1:], widths[1:], strict=True)
        cells = [r[0].ljust(widths[0]), *(c.rjust(w) for c, w in numbers)]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join("  " + line for line in lines)


def markdown_table(figures: list[Figure]) -> str:
    lines = ["| " + " | ".join(_HEADER) + " |", "|" + "---|" * len(_HEADER)]
    lines += ["| " + " | ".join(_row(f)) + " |" for f in figures]
    return "\n".join(lines)


def notes(figures: list[Figure]) -> list[str]:
    return [f"{f.name}: {f.note}" for f in figures if f.note]


def target_lines(targets: list[Target]) -> list[str]:
    return [f"  [{'met' if t.met else 'NOT MET'}] {t.label}: {t.value}" for t in targets]
