"""Where accepted data goes: a SQLite file written by one thread, or nowhere.

SQLite connections must not be shared across threads and concurrent writers only queue on the
database lock, so every write goes through a single writer thread, one transaction per request
with `executemany`. Handlers wait for their commit before answering 202: that is both what a
202 promises and the back-pressure that keeps a fast client from outrunning the disk. Readers
open their own short-lived connections; WAL mode lets them read while the writer writes.
"""

from __future__ import annotations

import queue
import sqlite3
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from revbridge_cli.contract import identity_key

STANDARD_EVENT_KEYS = frozenset({"event_name", "timestamp", "revenue", "event_value"})

SCHEMA = """
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    request_trace_id TEXT NOT NULL,
    user_key TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    event_name TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    revenue NUMERIC,
    event_value NUMERIC,
    properties TEXT NOT NULL,
    received_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS profiles (
    user_key TEXT PRIMARY KEY,
    identifiers TEXT NOT NULL,
    user_properties TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS profile_updates (
    id INTEGER PRIMARY KEY,
    user_key TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    user_properties TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    id INTEGER PRIMARY KEY,
    trace_id TEXT,
    status INTEGER NOT NULL,
    users_accepted INTEGER NOT NULL,
    users_rejected INTEGER NOT NULL,
    events_accepted INTEGER NOT NULL,
    bytes INTEGER NOT NULL,
    duration_ms REAL NOT NULL,
    received_at TEXT NOT NULL,
    fault TEXT
);
"""

INSERT_EVENT = (
    "INSERT INTO events (request_trace_id, user_key, identifiers, event_name, timestamp,"
    " revenue, event_value, properties, received_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_REQUEST = (
    "INSERT INTO requests (trace_id, status, users_accepted, users_rejected, events_accepted,"
    " bytes, duration_ms, received_at, fault) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
INSERT_PROFILE_UPDATE = (
    "INSERT INTO profile_updates (user_key, identifiers, user_properties, updated_at)"
    " VALUES (?, ?, ?, ?)"
)
FOLD_EVERY = 100_000  # profile updates appended before they are folded into `profiles`
UPSERT_PROFILE = (
    "INSERT OR REPLACE INTO profiles (user_key, identifiers, user_properties, updated_at)"
    " VALUES (?, ?, ?, ?)"
)


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def user_key(identifiers: dict[str, Any]) -> str:
    """Stable across requests, and the importer's own rule (`contract.identity_key`): what
    the importer groups as one user is one profile here."""
    return identity_key(identifiers).decode()


@dataclass(slots=True)
class RequestRecord:
    """One row of the `requests` table; status 0 means the connection was reset unanswered."""

    trace_id: str | None
    status: int
    bytes: int
    duration_ms: float
    received_at: str
    fault: str | None = None
    users_accepted: int = 0
    users_rejected: int = 0
    events_accepted: int = 0

    def row(self) -> tuple[Any, ...]:
        return (
            self.trace_id,
            self.status,
            self.users_accepted,
            self.users_rejected,
            self.events_accepted,
            self.bytes,
            self.duration_ms,
            self.received_at,
            self.fault,
        )


@dataclass(slots=True)
class Batch:
    """The rows of one request's valid users, built in the handler thread, written by the writer."""

    events: list[tuple[Any, ...]] = field(default_factory=list)
    profiles: list[tuple[str, dict[str, Any], dict[str, Any]]] = field(default_factory=list)


def build_batch(users: list[dict[str, Any]], trace_id: str, received_at: str) -> Batch:
    """Missing timestamps are stamped with the arrival time, as the vendor says its server does."""
    batch = Batch()
    add_event = batch.events.append
    for user in users:
        identifiers = user["identifiers"]
        key = user_key(identifiers)
        identifiers_json = orjson.dumps(identifiers).decode()
        for event in user["events"]:
            properties = {k: v for k, v in event.items() if k not in STANDARD_EVENT_KEYS}
            add_event(
                (
                    trace_id,
                    key,
                    identifiers_json,
                    event["event_name"],
                    event.get("timestamp", received_at),
                    event.get("revenue"),
                    event.get("event_value"),
                    orjson.dumps(properties).decode(),
                    received_at,
                )
            )
        batch.profiles.append((key, identifiers, user.get("user_properties") or {}))
    return batch


class Counters:
    """In-memory tallies, kept in both modes so a no-store benchmark still has its numbers."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_status: Counter[int] = Counter()
        self.users_accepted = 0
        self.users_rejected = 0
        self.events_accepted = 0

    def add(self, record: RequestRecord) -> None:
        with self._lock:
            self.by_status[record.status] += 1
            self.users_accepted += record.users_accepted
            self.users_rejected += record.users_rejected
            self.events_accepted += record.events_accepted

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "requests": sum(self.by_status.values()),
                "requests_by_status": dict(sorted(self.by_status.items())),
                "users_accepted": self.users_accepted,
                "users_rejected": self.users_rejected,
                "events_accepted": self.events_accepted,
            }


class NullStore:
    """`store=False`: validate and count, write nothing, so a benchmark measures the client."""

    db_path: Path | None = None

    def record(self, record: RequestRecord, batch: Batch | None = None) -> None:
        return None

    def flush(self) -> None:
        return None

    def close(self) -> None:
        return None


_Job = tuple[RequestRecord, Batch | None, threading.Event | None]


class SqliteStore:
    """A database file with one writer thread; `record` returns once the request is committed."""

    def __init__(self, path: Path) -> None:
        self.db_path = path
        setup = sqlite3.connect(path)
        try:
            setup.execute("PRAGMA journal_mode=WAL")
            setup.executescript(SCHEMA)
        finally:
            setup.close()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._pending = 0  # profile updates appended and not folded yet
        self._thread = threading.Thread(target=self._run, name="sandbox-writer", daemon=True)
        self._thread.start()

    def record(self, record: RequestRecord, batch: Batch | None = None) -> None:
        """Waits for the commit only when there is data: a 202 must mean "stored"."""
        if self._closed:
            return
        done = threading.Event() if batch is not None else None
        self._queue.put((record, batch, done))
        if done is not None:
            self._wait(done)

    def flush(self) -> None:
        """Lets a reader see every request answered so far, including unwaited request rows."""
        if self._closed:
            return
        done = threading.Event()
        self._queue.put((RequestRecord(None, -1, 0, 0.0, ""), None, done))
        self._wait(done)

    def _wait(self, done: threading.Event) -> None:
        """A job queued after close is never written: give up instead of waiting forever."""
        while not done.wait(0.2):
            if not self._thread.is_alive():
                return

    def close(self) -> None:
        if self._closed:
            return
        self.flush()
        self._closed = True
        self._queue.put(None)
        self._thread.join(timeout=5)

    def _run(self) -> None:
        conn = sqlite3.connect(self.db_path, isolation_level=None)
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA wal_autocheckpoint=16384")
        try:
            while (job := self._queue.get()) is not None:
                record, batch, done = job
                try:
                    if record.status >= 0:
                        self._write(conn, record, batch)
                    elif self._pending:  # a flush: leave `profiles` whole for any reader
                        self._fold(conn)
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    print(f"revbridge sandbox: write failed: {exc}", file=sys.stderr)
                finally:
                    if done is not None:
                        done.set()
        finally:
            conn.close()

    def _write(self, conn: sqlite3.Connection, record: RequestRecord, batch: Batch | None) -> None:
        """Events and profile updates are appended, in the request's own transaction: a 202
        means stored. Merging profiles per request cost 60% of the time (random upserts over
        the whole table, each commit rewriting pages all over it), so updates are folded into
        `profiles` in bulk, in key order, every FOLD_EVERY updates and whenever anyone reads."""
        conn.execute("BEGIN")
        if batch is not None:
            conn.executemany(INSERT_EVENT, batch.events)
            conn.executemany(
                INSERT_PROFILE_UPDATE,
                [
                    (key, orjson.dumps(ids).decode(), orjson.dumps(props).decode(),
                     record.received_at)
                    for key, ids, props in batch.profiles
                ],
            )  # fmt: skip
            self._pending += len(batch.profiles)
        conn.execute(INSERT_REQUEST, record.row())
        conn.execute("COMMIT")
        if self._pending >= FOLD_EVERY:
            self._fold(conn)

    def _fold(self, conn: sqlite3.Connection) -> None:
        fold_profiles(conn)
        self._pending = 0


def apply_updates(profiles: dict[str, list[Any]], updates: list[tuple[str, str, str, str]]) -> None:
    """Last write wins per key, in arrival order. Merged in Python rather than with SQLite's
    json_patch, which would delete keys sent as null."""
    for key, identifiers, properties, updated_at in updates:
        current = profiles.get(key)
        if current is None:
            profiles[key] = [orjson.loads(identifiers), orjson.loads(properties), updated_at]
        else:
            current[0].update(orjson.loads(identifiers))
            current[1].update(orjson.loads(properties))
            current[2] = updated_at


def fold_profiles(conn: sqlite3.Connection) -> None:
    """Move pending profile updates into `profiles`, in one transaction."""
    updates = conn.execute(
        "SELECT id, user_key, identifiers, user_properties, updated_at FROM profile_updates"
        " ORDER BY id"
    ).fetchall()
    if not updates:
        return
    keys = sorted({row[1] for row in updates})
    merged: dict[str, list[Any]] = {}
    for start in range(0, len(keys), 10_000):
        chunk = orjson.dumps(keys[start : start + 10_000]).decode()
        for key, identifiers, properties, updated_at in conn.execute(
            "SELECT user_key, identifiers, user_properties, updated_at FROM profiles"
            " WHERE user_key IN (SELECT value FROM json_each(?))",
            (chunk,),
        ):
            merged[key] = [orjson.loads(identifiers), orjson.loads(properties), updated_at]
    apply_updates(merged, [row[1:] for row in updates])
    conn.execute("BEGIN")
    conn.executemany(
        UPSERT_PROFILE,
        [
            (key, orjson.dumps(ids).decode(), orjson.dumps(props).decode(), at)
            for key, (ids, props, at) in sorted(merged.items())
        ],
    )
    conn.execute("DELETE FROM profile_updates WHERE id <= ?", (updates[-1][0],))
    conn.execute("COMMIT")
