"""What a progress report says, apart from how it is drawn: input bytes read (never going
back), the rate over the last few seconds, the share done and the time left, and the counters
a person reads, in order.

Both screens (rich on a terminal, plain lines elsewhere) and the log file show the same figures;
computing them once, with no terminal in sight, keeps the three from telling different stories.
"""

from __future__ import annotations

import time
from collections import deque

from rich.filesize import decimal

from revbridge_cli.delivery.sender import Attempt
from revbridge_cli.report.summary import Summary

RATE_WINDOW_SECONDS = 10.0


class Meter:
    """What both screens show, kept between calls: input bytes (never going back), the rate
    over the last few seconds, and the batches waiting to be retried."""

    def __init__(self) -> None:
        self.started = time.monotonic()
        self.bytes_read = 0
        self.total_bytes: int | None = None
        self.summary: Summary | None = None
        self.retrying: set[int] = set()
        self._samples: deque[tuple[float, int]] = deque()

    def update(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        self.summary = summary
        # The pipeline reports the bytes of finished files plus those read in the current one;
        # a report made between two reads may not know the latter: keep the furthest point.
        self.bytes_read = max(self.bytes_read, bytes_read)
        self.total_bytes = total_bytes
        now = time.monotonic()
        self._samples.append((now, _done(summary)))
        while len(self._samples) > 2 and now - self._samples[1][0] > RATE_WINDOW_SECONDS:
            self._samples.popleft()

    def attempt(self, attempt: Attempt) -> None:
        if attempt.retry_in is not None:
            self.retrying.add(attempt.batch_seq)
        else:
            self.retrying.discard(attempt.batch_seq)

    def rate(self) -> float:
        """Events (records when nothing is sent) per second, over the last ten seconds."""
        if not self._samples:
            return 0.0
        now = time.monotonic()
        t0, n0 = self._samples[0]
        if now - t0 < 1.0:  # too short a window: the whole run so far
            t0, n0 = self.started, 0
        n = _done(self.summary) if self.summary else 0
        return (n - n0) / max(now - t0, 1e-9)

    def fraction(self) -> float | None:
        """How much of the run is done, 0 to 1; None without a known input size.

        Reading runs ahead of sending (the packer holds users until their batch fills), so
        when sending it is the share of input read times the share of what was read that has
        a verdict; a user row with several events may make the latter look done too soon.
        """
        if self.total_bytes is None or self.summary is None:
            return None
        read = min(self.bytes_read / self.total_bytes, 1.0) if self.total_bytes else 1.0
        s = self.summary
        if not sending(s):
            return read
        valid = s.records_read - s.records_invalid
        settled = min(s.events_sent / valid, 1.0) if valid > 0 else 1.0
        return read * settled

    def share_text(self) -> str:
        """The bar's percentage, named for what it measures: on a send the share of the input
        with a verdict (settled), which trails the bytes read while requests are out; on a dry
        run or validate the share read."""
        fraction = self.fraction()
        if fraction is None:
            return ""
        what = "settled" if self.summary is not None and sending(self.summary) else "read"
        return f"{100 * fraction:.0f}% {what}"

    def eta(self) -> float | None:
        """Seconds left at the pace so far; None while unknown."""
        elapsed = time.monotonic() - self.started
        fraction = self.fraction()
        if fraction is None or fraction <= 0.0 or elapsed < 1.0:
            return None
        return elapsed * (1.0 - fraction) / fraction

    def bytes_text(self) -> str:
        if self.total_bytes is None:
            return f"{decimal(self.bytes_read)} read"
        return f"{decimal(self.bytes_read)} of {decimal(self.total_bytes)} read"

    def eta_text(self) -> str:
        eta = self.eta()
        return "ETA --:--" if eta is None else f"ETA {_clock(eta)}"


def sending(summary: Summary) -> bool:
    """Requests really go out (not validate, not --dry-run): only then are there verdicts."""
    return summary.sent and not summary.dry_run


def _done(summary: Summary) -> int:
    """What the rate counts: accepted events when sending, records otherwise."""
    return summary.events_accepted if sending(summary) else summary.records_read


def unit(summary: Summary) -> str:
    return "accepted events/s" if sending(summary) else "records/s"


def counters(summary: Summary, retrying: int) -> list[tuple[str, str]]:
    """(label, number) pairs for the screen, in the order a person reads them."""
    out = [("records", f"{summary.records_read:,}")]
    if sending(summary):
        out += [
            ("accepted", f"{summary.events_accepted:,} events"),
            ("rejected", f"{summary.users_rejected:,} users"),
            ("retrying", f"{retrying:,}"),
        ]
        if summary.users_undelivered:
            out.append(("undelivered", f"{summary.users_undelivered:,} users"))
    elif summary.dry_run:
        out.append(("would send", f"{summary.events_sent:,} events"))
    if summary.records_invalid:
        out.append(("invalid", f"{summary.records_invalid:,}"))
    return out


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours:d}:{minutes:02d}:{secs:02d}"
