"""What a sandbox database received, read back: for the `Sandbox` object, for tests, and
for `revbridge sandbox stats`. Read-only connections of their own, apart from the writer
(`store.py`), which WAL mode lets them run beside.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import orjson


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
    """The current profiles, by `user_key` (their primary identifiers as last written), which
    is unique: every identifier value belongs to one profile only."""
    conn = _connect_readonly(path)
    try:
        rows = conn.execute(
            "SELECT profile_id, user_key, identifiers, identities, user_properties, updated_at"
            " FROM profiles ORDER BY user_key"
        ).fetchall()
    finally:
        conn.close()
    return {
        row["user_key"]: {
            "profile_id": row["profile_id"],
            "identifiers": orjson.loads(row["identifiers"]),
            "identities": orjson.loads(row["identities"]),
            "user_properties": orjson.loads(row["user_properties"]),
            "updated_at": row["updated_at"],
        }
        for row in rows
    }


def read_refused_links(path: Path) -> list[dict[str, Any]]:
    """Links the graph refused (two different user_ids), in arrival order."""
    conn = _connect_readonly(path)
    try:
        rows = conn.execute("SELECT * FROM refused_links ORDER BY id").fetchall()
    finally:
        conn.close()
    return [{**dict(row), "value": orjson.loads(row["value"])} for row in rows]


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
        profiles = conn.execute("SELECT count(*) FROM profiles").fetchone()[0]
        tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        refused = (  # a file written before the identity graph has no such table
            conn.execute("SELECT count(*) FROM refused_links").fetchone()[0]
            if "refused_links" in tables
            else 0
        )
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
        "links_refused": refused,
        "requests": sums[0],
        "requests_by_status": by_status,
        "users_accepted": sums[1],
        "users_rejected": sums[2],
        "events_accepted": sums[3],
        "bytes": sums[4],
        "last_requests": [dict(row) for row in reversed(recent)],
    }
