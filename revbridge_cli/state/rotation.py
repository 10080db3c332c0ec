"""Log rotation: recognising a file the journal knows under a name it did not have.

logrotate renames a log (`events.ndjson` -> `events-20250101.ndjson`), often compresses it
(`.gz`, a new inode and other bytes), or copies it and truncates the original
(`copytruncate`), and a new file starts at the old name. Known by path alone, the rotated
file looked new (sent whole again: silent duplicates) and the new file at the old name looked
truncated or replaced (refused: exit 1 on every rotation).

So a file is also known by its content, as Filebeat's and Vector's file sources know it: the
SHA-256 of the first `HEAD_WINDOW` bytes of its decompressed stream (Filebeat's default
length; Vector hashes the first line), kept in the file's identity (`fp`). Before the run
plans its inputs, every input path the journal does not know is matched against the known
files whose content is no longer at their own path:
- the same device and inode, not truncated: a rename, certain;
- the same head, and the sampled fingerprint of the content up to the watermark (the one a
  re-export is checked with) the same: the rotated file, certain; its journal row moves to the
  new name, it is read from the watermark, and the old name is free for a new file;
- the same head but a head shorter than `HEAD_WINDOW` (a file that small cannot be told from
  another that starts alike), or no fingerprint at the watermark to check (a gzip input of a
  run that was killed): it cannot be told. The file is read whole and its records up to the
  old watermark count as possible duplicates, with a warning that says so.
A known file whose content is still at its path is never taken: an input that holds the same
content up to its watermark (by the same two fingerprints) is a copy, read whole as a new
file, and its records up to that watermark count as possible duplicates, with a warning.
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from revbridge_cli.input import reader
from revbridge_cli.input.paths import GZIP_MAGIC, content_fingerprint
from revbridge_cli.input.streams import read_up_to
from revbridge_cli.state.journal import FileState, Journal

HEAD_WINDOW = 1024


def head_print(path: str, length: int = HEAD_WINDOW) -> dict[str, Any] | None:
    """The SHA-256 of the first `length` bytes of the decompressed stream, and how many bytes
    that was (fewer for a shorter stream); None if the file cannot be read."""
    try:
        with open(path, "rb") as raw:
            stream: Any = raw
            if raw.read(2) == GZIP_MAGIC:
                raw.seek(0)
                stream = gzip.GzipFile(fileobj=raw, mode="rb")
            else:
                raw.seek(0)
            head = read_up_to(stream, length)
    except (EOFError, OSError, zlib.error):
        return None
    return {"len": len(head), "sha": hashlib.sha256(head).hexdigest()}


@dataclass(slots=True)
class Uncertain:
    """An input that may be a known file rotated, too alike and too short to tell."""

    was: str
    head_len: int
    in_doubt: dict[int, int] = field(default_factory=dict)  # line -> copies the server may hold
    copy: bool = False  # `was` still holds its content: this is a copy of it


@dataclass(slots=True)
class Rotations:
    moved: dict[str, str] = field(default_factory=dict)  # input path -> the path it was known by
    uncertain: dict[str, Uncertain] = field(default_factory=dict)


def _holds(path: str, known: FileState) -> bool:
    """Whether `path` still holds the content the journal knows it by."""
    fp = known.identity.get("fp")
    if not os.path.exists(path):
        return False
    if not isinstance(fp, dict):  # known before fingerprints: by inode and head, as before
        try:
            verdict, _ = reader.compare_identity(known.identity, path)
        except reader.InputError:
            return False
        return verdict in ("same", "grown")
    now = head_print(path, int(fp.get("len", HEAD_WINDOW)))
    return now is not None and now == fp


Heads = Callable[[str, int], "dict[str, Any] | None"]


def _match(path: str, known: FileState, heads: Heads) -> str | None:
    """ "rotated", "uncertain" or None: whether the input `path` is the file `known`."""
    identity = known.identity
    try:
        st = os.stat(path)
    except OSError:
        return None
    if (st.st_dev, st.st_ino) == (identity["device"], identity["inode"]):
        try:
            verdict, _ = reader.compare_identity(identity, path)
        except reader.InputError:
            return None
        if verdict in ("same", "grown"):
            return "rotated"
    fp = identity.get("fp")
    if not isinstance(fp, dict) or not fp.get("len"):
        return None
    if heads(path, int(fp["len"])) != fp:
        return None
    if fp["len"] < HEAD_WINDOW:
        return "uncertain"
    if known.done_offset == 0:
        return "rotated"
    stored = known.fingerprint
    if stored is None or stored.get("offset") != known.done_offset:
        return "uncertain"
    again = content_fingerprint(path, known.done_offset)
    if again is not None and again.get("sha") == stored.get("sha"):
        return "rotated"
    return None  # the same first bytes, other rows after them: another file


def find_rotations(
    journal: Journal, paths: list[str], doubt: dict[tuple[str, int], int]
) -> Rotations:
    """Match the inputs the journal does not know with the known files that left their path.

    `doubt`: the journal's records in doubt, for what an uncertain match counts. Nothing is
    written here; the caller moves or forgets the rows."""
    out = Rotations()
    known_paths = set(journal.known_paths())
    new = [p for p in dict.fromkeys(paths) if p not in known_paths]
    if not new:
        return out
    heads = functools.lru_cache(maxsize=None)(head_print)  # each input's head read once
    left: list[tuple[str, FileState]] = []
    holding: list[tuple[str, FileState]] = []
    for path in sorted(known_paths):
        known = journal.file_state(path)
        if known is None or (known.done_line == 0 and not known.settled):
            continue
        (holding if _holds(path, known) else left).append((path, known))
    for path in new:
        for i, (was, known) in enumerate(left):
            verdict = _match(path, known, heads)
            if verdict is None:
                continue
            if verdict == "rotated":
                out.moved[path] = was
            else:
                lines = dict.fromkeys(range(1, known.done_line + 1), 1)
                lines.update(dict.fromkeys(known.settled, 1))
                lines.update({line: n for (p, line), n in doubt.items() if p == was})
                fp = known.identity.get("fp") or {}
                out.uncertain[path] = Uncertain(was, int(fp.get("len", 0)), lines)
            del left[i]
            break
        else:
            copied = next((k for k in holding if _copy_of(path, k[1], heads)), None)
            if copied is not None:
                was, known = copied
                lines = dict.fromkeys(range(1, known.done_line + 1), 1)
                out.uncertain[path] = Uncertain(was, HEAD_WINDOW, lines, copy=True)
    return out


def _copy_of(path: str, known: FileState, heads: Heads) -> bool:
    """The same head and the same content up to the watermark as a file still in its place."""
    fp, stored = known.identity.get("fp"), known.fingerprint
    if not isinstance(fp, dict) or fp.get("len") != HEAD_WINDOW or stored is None:
        return False
    if not known.done_offset or stored.get("offset") != known.done_offset:
        return False
    if heads(path, HEAD_WINDOW) != fp:
        return False
    again = content_fingerprint(path, known.done_offset)
    return again is not None and again.get("sha") == stored.get("sha")
