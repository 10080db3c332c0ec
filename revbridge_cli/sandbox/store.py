"""Where accepted data goes: a SQLite file written by one thread, or nowhere.

SQLite connections must not be shared across threads and concurrent writers only queue on the
database lock, so every write goes through a single writer thread, with `executemany`. Handlers
wait for their commit before answering 202: that is both what a 202 promises and the
back-pressure that keeps a fast client from outrunning the disk. The writer commits every
request waiting in its queue in one transaction (group commit): a commit's fixed cost and the
profile rows several requests touch are paid once. It also owns the identity graph
(`identity.py`) and writes its changes in the same transaction (`graphdb.py`), so the
`profiles` table is current at every commit. Readers open their own short-lived connections;
WAL mode lets them read while the writer writes.
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
from revbridge_cli.sandbox import graphdb

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
GROUP_MAX = 64  # requests at most in one commit: they wait in the queue for it anyway


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
            properties = dict(event)  # a copy less four keys: cheaper than a comprehension
            del properties["event_name"]
            properties.pop("timestamp", None)
            properties.pop("revenue", None)
            properties.pop("event_value", None)
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
        setup = sqlite3.connect(path, isolation_level=None)
        try:
            setup.execute("PRAGMA journal_mode=WAL")
            setup.executescript(SCHEMA)
            self._graph = graphdb.prepare(setup)
        finally:
            setup.close()
        self._queue: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
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
            stop = False
            while not stop and (job := self._queue.get()) is not None:
                jobs = [job]
                while len(jobs) < GROUP_MAX:
                    try:
                        more = self._queue.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    jobs.append(more)
                try:
                    self._write(conn, jobs)
                except sqlite3.Error as exc:
                    if conn.in_transaction:
                        conn.execute("ROLLBACK")
                    self._graph = graphdb.load(conn)  # the memory must not run ahead of the file
                    print(f"revbridge sandbox: write failed: {exc}", file=sys.stderr)
                finally:
                    for _record, _batch, done in jobs:
                        if done is not None:
                            done.set()
        finally:
            conn.close()

    def _write(self, conn: sqlite3.Connection, jobs: list[_Job]) -> None:
        """Events, request rows and the graph's changes, in one transaction: a 202 means stored,
        and a reader never sees events whose profiles are not there yet."""
        graph = self._graph
        conn.execute("BEGIN")
        rows = []
        for record, batch, _done in jobs:
            if record.status < 0:
                continue  # a flush: its place in the queue is all it needs
            if batch is not None:
                conn.executemany(INSERT_EVENT, batch.events)
                at, trace_id = record.received_at, record.trace_id or ""
                for key, identifiers, properties in batch.profiles:
                    graph.apply(identifiers, properties, at, trace_id, key)
            rows.append(record.row())
        conn.executemany(INSERT_REQUEST, rows)
        graphdb.write(conn, graph)
        conn.execute("COMMIT")
