"""What a sandbox database received, read back: for the `Sandbox` object, for tests, and
for `revbridge sandbox stats`. Read-only connections of their own, apart from the writer
(`store.py`), which WAL mode lets them run beside.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson

from revbridge_cli.sandbox.store import apply_updates


def _connect_readonly(path: Path) -> sqlite3.Connection:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    conn.row_factory = sqlite3.Row
    return conn


def read_events(path: Path) -> list[dict[str, Any]]:
    conn = _connect_readonly(path)
    try:
        rows = conn.execute("SELECT * FROM events ORDER BY id").fetchall()
    finally:
        conn.close()
    return [
        {
            "id": row["id"],
            "trace_id": row["request_trace_id"],
            "user_key": row["user_key"],
            "identifiers": orjson.loads(row["identifiers"]),
            "event_name": row["event_name"],
            "timestamp": row["timestamp"],
            "revenue": row["revenue"],
            "event_value": row["event_value"],
            "properties": orjson.loads(row["properties"]),
            "received_at": row["received_at"],
        }
        for row in rows
    ]


def read_profiles(path: Path) -> dict[str, dict[str, Any]]:
    """The merged profiles, counting updates not folded yet (a sandbox killed mid-run)."""
    conn = _connect_readonly(path)
    try:
        merged: dict[str, list[Any]] = {}
        apply_updates(
            merged,
            conn.execute(
                "SELECT user_key, identifiers, user_properties, updated_at FROM profiles"
            ).fetchall(),
        )
        pending = conn.execute(
            "SELECT user_key, identifiers, user_properties, updated_at FROM profile_updates"
            " ORDER BY id"
        ).fetchall()
    finally:
        conn.close()
    apply_updates(merged, pending)
    return {
        key: {"identifiers": ids, "user_properties": props, "updated_at": at}
        for key, (ids, props, at) in sorted(merged.items())
    }


def read_requests(path: Path) -> list[dict[str, Any]]:
    conn = _connect_readonly(path)
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM requests ORDER BY id")]
    finally:
        conn.close()


def db_stats(path: Path, last: int = 5) -> dict[str, Any]:
    """What `revbridge sandbox stats` prints: counts from the tables, not from memory."""
    conn = _connect_readonly(path)
    try:
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        profiles = conn.execute(
            "SELECT count(*) FROM"
            " (SELECT user_key FROM profiles UNION SELECT user_key FROM profile_updates)"
        ).fetchone()[0]
        by_status = dict(
            conn.execute("SELECT status, count(*) FROM requests GROUP BY status ORDER BY status")
        )
        sums = conn.execute(
            "SELECT count(*), coalesce(sum(users_accepted), 0), coalesce(sum(users_rejected), 0),"
            " coalesce(sum(events_accepted), 0), coalesce(sum(bytes), 0) FROM requests"
        ).fetchone()
        recent = conn.execute(
            "SELECT trace_id, status, received_at, fault FROM requests ORDER BY id DESC LIMIT ?",
            (last,),
        ).fetchall()
    finally:
        conn.close()
    return {
        "events": events,
        "profiles": profiles,
        "requests": sums[0],
        "requests_by_status": by_status,
        "users_accepted": sums[1],
        "users_rejected": sums[2],
        "events_accepted": sums[3],
        "bytes": sums[4],
        "last_requests": [dict(row) for row in reversed(recent)],
    }
