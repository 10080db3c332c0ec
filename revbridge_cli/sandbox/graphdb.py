"""The identity graph's durable copy: the `profiles` and `refused_links` tables, and the
`identities` view over `profiles` (a view, not a table: one random B-tree insert less for
every new identifier, and it can never disagree with the profiles).

The graph lives in memory (`identity.py`); these tables are written in the same transaction
as the request that changed it, so whoever opens the file, during a run or after a crash, reads
current profiles: there is no fold still to come. At start the graph is read back from them.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import orjson

from revbridge_cli.sandbox.identity import Changes, IdentityGraph, Profile

SCHEMA = """
CREATE TABLE IF NOT EXISTS profiles (
    profile_id INTEGER PRIMARY KEY,
    user_key TEXT NOT NULL,
    identifiers TEXT NOT NULL,
    identities TEXT NOT NULL,
    user_properties TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    written TEXT NOT NULL
);
CREATE VIEW IF NOT EXISTS identities (kind, value, profile_id) AS
    SELECT kinds.key, json_quote(ids.value), profiles.profile_id
    FROM profiles, json_each(profiles.identities) AS kinds, json_each(kinds.value) AS ids;
CREATE TABLE IF NOT EXISTS refused_links (
    id INTEGER PRIMARY KEY,
    request_trace_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    value TEXT NOT NULL,
    profile_id INTEGER NOT NULL,
    owner_profile_id INTEGER NOT NULL,
    received_at TEXT NOT NULL
);
"""

UPSERT_PROFILE = (
    "INSERT OR REPLACE INTO profiles (profile_id, user_key, identifiers, identities,"
    " user_properties, updated_at, written) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
INSERT_REFUSED = (
    "INSERT INTO refused_links (request_trace_id, kind, value, profile_id, owner_profile_id,"
    " received_at) VALUES (?, ?, ?, ?, ?, ?)"
)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()


def prepare(conn: sqlite3.Connection) -> IdentityGraph:
    """Create the tables, bring a database of the old layout over, and load the graph."""
    columns = {row[1] for row in conn.execute("PRAGMA table_info(profiles)")}
    legacy = bool(columns) and "profile_id" not in columns
    old: list[tuple[str, str, str]] = []
    if legacy:
        old = _legacy_rows(conn)
        conn.execute("DROP TABLE profiles")
        conn.execute("DROP TABLE IF EXISTS profile_updates")
    conn.executescript(SCHEMA)
    graph = load(conn)
    if legacy:
        for identifiers, properties, updated_at in old:
            graph.apply(orjson.loads(identifiers), orjson.loads(properties), updated_at)
        conn.execute("BEGIN")
        write(conn, graph)
        conn.execute("COMMIT")
    return graph


def _legacy_rows(conn: sqlite3.Connection) -> list[tuple[str, str, str]]:
    """Profiles kept per exact identifier tuple, and updates not folded yet, oldest first: the
    graph replays them as user objects, so an old rehearsal's file opens merged."""
    rows = conn.execute(
        "SELECT identifiers, user_properties, updated_at FROM profiles ORDER BY updated_at"
    ).fetchall()
    tables = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
    if "profile_updates" in tables:
        rows += conn.execute(
            "SELECT identifiers, user_properties, updated_at FROM profile_updates ORDER BY id"
        ).fetchall()
    return rows


def load(conn: sqlite3.Connection) -> IdentityGraph:
    graph = IdentityGraph()
    for pid, identifiers, identities, properties, updated_at, written in conn.execute(
        "SELECT profile_id, identifiers, identities, user_properties, updated_at, written"
        " FROM profiles"
    ):
        graph.load(
            Profile(
                pid,
                orjson.loads(identifiers),
                orjson.loads(identities),
                orjson.loads(properties),
                updated_at,
                (stamps := orjson.loads(written))["identifiers"],
                stamps["user_properties"],
            )
        )
    return graph


def write(conn: sqlite3.Connection, graph: IdentityGraph) -> None:
    """What changed since the last write, inside the caller's transaction."""
    changes: Changes = graph.take_changes()
    if changes.removed:
        conn.executemany(
            "DELETE FROM profiles WHERE profile_id = ?", [(pid,) for pid in changes.removed]
        )
    profiles = graph.profiles
    conn.executemany(
        UPSERT_PROFILE,
        [
            (
                pid,
                (p := profiles[pid]).user_key(),
                _dumps(p.identifiers),
                _dumps(p.identities),
                _dumps(p.user_properties),
                p.updated_at,
                _dumps({"identifiers": p.id_written, "user_properties": p.prop_written}),
            )
            for pid in sorted(changes.profiles)
        ],
    )
    if changes.refused:
        conn.executemany(
            INSERT_REFUSED,
            [
                (trace_id, r.kind, _dumps(r.value), r.profile_id, r.owner, at)
                for r, trace_id, at in changes.refused
            ],
        )
