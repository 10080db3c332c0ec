"""Which user a record belongs to, as a partition key: per-user order across a cluster.

A user's requests never overtake each other on one machine because one lane sends them. On a
cluster the same holds only if every record of a user reaches the same task: engines partition
on this key, so exactly one task sends each user, in input order within it. The key is the
client's own grouping key (`records.user_key` on the user's primary identifiers), taken from
any shape the client reads (a flat event, a user in the API's shape, a row of a rejected file),
so "one user" means the same thing to the partitioner and to the lanes. Pure.
"""

from __future__ import annotations

from typing import Any

import orjson

from revbridge_cli import contract
from revbridge_cli.shape import parts as records

_REJECTED_ROW_KEYS = frozenset(("userIndex", "message"))


def user_key(record: Any) -> bytes | None:
    """The record's user key, or None for a record that names no user: such a record is set
    aside by whichever task reads it, so where it goes cannot matter."""
    identifiers = _identifiers(record)
    return records.user_key(identifiers) if identifiers is not None else None


def user_key_text(record: Any) -> str | None:
    """`user_key` as text, for an engine's string column (the key is UTF-8 JSON text)."""
    key = user_key(record)
    return key.decode() if key is not None else None


def _identifiers(record: Any, depth: int = 0) -> dict[str, Any] | None:
    """The identifiers the client would group the record's user by (records._users_of)."""
    if not isinstance(record, dict) or depth > 2:
        return None
    if record.keys() >= _REJECTED_ROW_KEYS and ("user" in record or "raw" in record):
        if record.get("user") is not None:
            return _identifiers(record["user"], depth + 1)
        try:
            fixed = orjson.loads(record["raw"]) if isinstance(record.get("raw"), str) else None
        except orjson.JSONDecodeError:
            return None
        return _identifiers(fixed, depth + 1)
    users = record.get("users")
    if isinstance(users, list) and "events" not in record:
        # A whole request body: it goes with its first user (docs/scale-out.md).
        return _identifiers(users[0], depth + 1) if users else None
    ids = record.get("identifiers")
    if "events" in record:
        return ids if isinstance(ids, dict) else None
    identifiers = dict(ids) if isinstance(ids, dict) else {}
    if ids is not None and not isinstance(ids, dict):
        return None
    for name in contract.PRIMARY_IDENTIFIERS:
        if name in record:
            identifiers[name] = record[name]
    return identifiers
