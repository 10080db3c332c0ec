"""Issue 20, found on the way: after a stop (Ctrl-C, SIGTERM, --limit) the progress showed
the whole file as read ("35.5 MB of 35.5 MB") while the record count stayed where the stop
left it. The bytes reported after a stop are the bytes read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from conftest import write_ndjson

from revbridge_cli.config.settings import build_settings
from revbridge_cli.run import Run


class StopsAtRecord:
    """A reporter that asks the run to stop once `at` records were read, as a signal does."""

    def __init__(self, at: int) -> None:
        self.at = at
        self.run: Run | None = None
        self.reports: list[tuple[int, int, int | None]] = []

    def progress(self, summary: Any, bytes_read: int, total_bytes: int | None) -> None:
        self.reports.append((summary.records_read, bytes_read, total_bytes))
        if self.run is not None and summary.records_read >= self.at:
            self.run.request_stop("SIGINT")

    def attempt(self, attempt: Any) -> None:
        pass

    def notice(self, message: str) -> None:
        pass

    def warning(self, message: str) -> None:
        pass


def _records(n: int) -> list[dict[str, Any]]:
    return [{"user_id": f"u{i % 50}", "event_name": "x", "seq": i} for i in range(n)]


def test_a_stop_reports_the_bytes_read_not_the_file(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "e.ndjson", _records(20_000))
    reporter = StopsAtRecord(at=1_000)
    run = Run(build_settings([str(path)], None, {}, dry_run=True), reporter)
    reporter.run = run
    run.prepare()
    summary = asyncio.run(run.execute())
    assert 1_000 <= summary.records_read < 20_000
    records, bytes_read, total = reporter.reports[-1]
    assert total == path.stat().st_size
    assert 0 < bytes_read < total  # was total: the bar jumped to the end
    share = bytes_read / total
    assert share < 0.5 and records == summary.records_read  # both say the same point


def test_limit_reports_the_bytes_read_too(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "e.ndjson", _records(20_000))
    reporter = StopsAtRecord(at=10**9)
    run = Run(build_settings([str(path)], None, {}, dry_run=True, limit=300), reporter)
    run.prepare()
    summary = asyncio.run(run.execute())
    assert summary.records_read == 300
    assert reporter.reports[-1][1] < path.stat().st_size
