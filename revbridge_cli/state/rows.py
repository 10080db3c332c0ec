"""How the journal's rows encode what they hold, and the check that a row decodes as written.

Apart from the journal's SQL so that each stays short; plain functions on bytes and text.
"""

from __future__ import annotations

from array import array
from typing import Any

import orjson

IDENTITY_KEYS = {"device": int, "inode": int, "size": int, "head_sha": str}


def pack_lines(lines: list[int]) -> bytes:
    return array("q", lines).tobytes()


def unpack_lines(blob: bytes) -> list[int]:
    out = array("q")
    out.frombytes(blob)
    return out.tolist()


def encode_refs(refs: list[tuple[str, int]]) -> bytes:
    return orjson.dumps(refs)


def decode_refs(blob: bytes) -> list[tuple[str, int]]:
    refs = orjson.loads(blob)
    if not isinstance(refs, list):
        raise ValueError("a batch's records are not a list")
    out: list[tuple[str, int]] = []
    for ref in refs:
        if not (
            isinstance(ref, list)
            and len(ref) == 2
            and isinstance(ref[0], str)
            and type(ref[1]) is int
        ):
            raise ValueError(f"a batch's record is not [path, line]: {ref!r:.60}")
        out.append((ref[0], ref[1]))
    return out


def check_identity(text: str) -> dict[str, Any]:
    identity = orjson.loads(text)
    if not isinstance(identity, dict):
        raise ValueError("a file identity is not an object")
    for key, kind in IDENTITY_KEYS.items():
        if type(identity.get(key)) is not kind:
            raise ValueError(f"a file identity has no valid {key!r}")
    return identity
