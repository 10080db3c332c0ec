"""One file's share of the run's read counts (`--json`'s `files`), taken by difference.

The read loop stays as it is, counting for the whole run; a snapshot before a file and one
after it give that file's figures, and they add up to the run's.
"""

from __future__ import annotations

from typing import Any

from revbridge_cli.report.summary import Summary
from revbridge_cli.state.resume import Durable


class FileCounts:
    __slots__ = ("_before", "_durable", "_name", "_summary")

    def __init__(self, summary: Summary, durable: Durable | None, name: str) -> None:
        self._summary, self._durable, self._name = summary, durable, name
        self._before = self._now()

    def _now(self) -> tuple[int, int, int, int]:
        s = self._summary
        skipped = self._durable.skipped_records if self._durable else 0
        return s.records_read, s.events_read, s.records_invalid, skipped

    def done(self, error: str | None = None, notice: str | None = None) -> None:
        read, events, invalid, skipped = (
            a - b for a, b in zip(self._now(), self._before, strict=True)
        )
        entry: dict[str, Any] = {
            "path": self._name,
            "records_read": read,
            "events_read": events,
            "records_invalid": invalid,
            "records_skipped": skipped,
            "error": error,
            "notice": notice,
        }
        self._summary.files.append(entry)
