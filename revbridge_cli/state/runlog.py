"""The `runs` table of a state file: when each run started and ended, how, and its counts.

So that `revbridge state show` can say what cron has been doing without a log file. A run
writes its row at start, through the journal's own connection while it holds the lock, and
completes it at the very end, once its exit code is known. By then the journal is closed (the
exit code depends on closing it), so the end goes through a short connection of its own,
updating only that run's row: harmless if the next run already holds the state.

A row without an end is a run that is still going or was killed (`kill -9`, a power cut).
Journals written before this table existed simply have no runs to show; the table is created
by the first run that needs it.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Mapping
from typing import Any

import orjson

SCHEMA = """
create table if not exists runs (
    id integer primary key,
    pid integer not null,
    started_at text not null default (strftime('%Y-%m-%dT%H:%M:%fZ', 'now')),
    ended_at text,
    exit_code integer,
    counts text                  -- JSON: the summary's main counters
);
"""
KEEP = 100  # rows kept: the newest runs are what an operator asks about

# What a finished run's row keeps of its summary (the JSON summary has them all); the run
# picks them out, so the journal does not depend on the report that sits above it.
COUNTS = (
    "records_read",
    "records_skipped",
    "records_invalid",
    "events_read",
    "events_accepted",
    "events_rejected",
    "events_undelivered",
    "events_pending",
    "possible_duplicate_events",
    "requests",
    "retries",
)


def begin(db: sqlite3.Connection) -> int:
    """Note a run's start in the journal it holds; returns the row's id for `end`.

    Raises OSError when the state cannot be written: the run has not started, exit 2."""
    try:
        with db:
            db.execute("begin immediate")
            db.execute(SCHEMA.strip().rstrip(";"))
            cursor = db.execute("insert into runs (pid) values (?)", (os.getpid(),))
            db.execute("delete from runs where id <= (select max(id) from runs) - ?", (KEEP,))
    except sqlite3.Error as exc:
        raise OSError(f"cannot note this run in the state file: {exc}") from exc
    return int(cursor.lastrowid or 0)


def end(state_path: str, run_id: int, exit_code: int, counts: Mapping[str, int]) -> None:
    """Complete the run's row with its exit code and `COUNTS` (raises sqlite3.Error, OSError)."""
    db = sqlite3.connect(state_path, isolation_level=None, timeout=10)
    try:
        db.execute(
            "update runs set ended_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now'),"
            " exit_code = ?, counts = ? where id = ?",
            (exit_code, orjson.dumps(dict(counts)).decode(), run_id),
        )
    finally:
        db.close()


def last_runs(db: sqlite3.Connection, n: int) -> list[dict[str, Any]]:
    """The newest `n` runs, newest first; none for a journal older than the table."""
    try:
        rows = db.execute(
            "select id, pid, started_at, ended_at, exit_code, counts from runs"
            " order by id desc limit ?",
            (n,),
        ).fetchall()
    except sqlite3.OperationalError:  # no such table: written before runs were kept
        return []
    return [
        {
            "run": run_id,
            "pid": pid,
            "started_at": started,
            "ended_at": ended,
            "exit_code": code,
            "counts": orjson.loads(counts) if counts else None,
        }
        for run_id, pid, started, ended, code, counts in rows
    ]
