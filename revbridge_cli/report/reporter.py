"""What the run may tell whoever watches it, as a protocol: progress, attempts, notices.

The run knows only this shape, never a terminal: console.py's reporters fill it in for a screen
or a log file, and a run nobody watches gets the null one, so the run never checks for None.
"""

from __future__ import annotations

from typing import Protocol

from revbridge_cli.delivery.sender import Attempt
from revbridge_cli.report.summary import Summary


class Reporter(Protocol):
    """Where the run shows itself: a progress display, plain log lines, or nothing."""

    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None: ...

    def attempt(self, attempt: Attempt) -> None: ...

    def notice(self, message: str) -> None: ...

    def warning(self, message: str) -> None:
        """Before the first request: what the first records predict. Shown even with --quiet
        (a cron mail should carry it), one `revbridge: warning:` line each."""
        ...


class NullReporter:
    def progress(self, summary: Summary, bytes_read: int, total_bytes: int | None) -> None:
        pass

    def attempt(self, attempt: Attempt) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass
