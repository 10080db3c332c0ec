"""The books of a run: every record read ends accepted, in the rejected file, or pending.

For inputs of flat events (one event a record), which is what the failure tests send: a
record's fate is its event's, and the rejected file names each record it holds in `source`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson


def rejected_rows(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def assert_books_balance(summary: dict[str, Any], rejected: Path) -> list[dict[str, Any]]:
    """records read == accepted + records in the rejected file + pending; returns the rows."""
    rows = rejected_rows(rejected)
    assert len(rows) == summary["rejected_rows"]
    kept = {source for row in rows for source in row["source"].split(", ")}
    accepted = summary["events_accepted"]
    pending = summary["events_pending"]
    assert summary["records_read"] == accepted + len(kept) + pending, (summary, rows)
    return rows
