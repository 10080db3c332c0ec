"""`--event-id-property NAME`: a stable id on every event, for deduplication downstream.

The API has no idempotency key, so a resent request (an in-doubt retry, a rerun after a crash,
a Spark task that an engine runs twice) can store an event twice. With this option each event
carries `NAME`: a hash of its user's identity key and of its own content, the same for the
same event whatever sends it, however often, from whichever machine, so the receiving side
can drop repeats. The property itself is left out of the hash, so a rejected row sent back
(already stamped) keeps its id. Two genuinely identical events of one user (same name, same
timestamp, same properties) share an id too: for deduplication they are the same event.
Pure: no I/O, and the caller's dicts are never changed.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from typing import Any

import orjson

from revbridge_cli.shape.parts import UserPart


def event_id(user_key: bytes, event: dict[str, Any], name: str) -> str:
    """32 hex digits (BLAKE2b, 128 bits): collisions are out of reach at any data size."""
    content = {k: v for k, v in event.items() if k != name}
    text = orjson.dumps(content, option=orjson.OPT_SORT_KEYS)
    return hashlib.blake2b(user_key + b"\x00" + text, digest_size=16).hexdigest()


def stamp(part: UserPart, name: str) -> UserPart:
    """The part with every event carrying its id under `name` (new dicts, new part)."""
    key = part.key
    return replace(part, events=[{**e, name: event_id(key, e, name)} for e in part.events])
