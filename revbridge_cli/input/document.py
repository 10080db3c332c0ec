"""Streaming a JSON document (`[...]` or `{"users": [...]}`) one record at a time.

A document cannot be resynchronised after a syntax error the way NDJSON can (there is no
line to skip to), so any parse error ends the file with `InputError`, after every record
before it has been yielded. Records are numbered from 1; there are no byte offsets.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import ijson
import orjson

from revbridge_cli.input.paths import InputError
from revbridge_cli.input.streams import Readable, StreamError

MAX_DEPTH = 1024
_BUF = 64 * 1024
# After escapes are dropped and everything but quotes and brackets is deleted, a string is a
# quote, non-quotes, and a quote (or the end of the chunk, for one that continues).
_STRING = re.compile(rb'"[^"]*(?:"|\Z)')
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')
_PAIR = re.compile(rb"\[\]|\{\}")


OVERFLOW = "numeric (floating point) overflow"  # yajl's words for a float no double holds


class NumberOverflow(InputError):
    """ijson stopped at a number no float holds (`1e99999`); the reader reads the file again
    with `exact=True`: numbers as `Decimal`, which holds any, turned into floats per record."""


class TooDeep(Exception):
    """The document nests deeper than `MAX_DEPTH`."""


class DepthGuard:
    """A `read()` wrapper that stops a document nesting deeper than `MAX_DEPTH`.

    Why: ijson's C backend keeps a prefix string per level, so memory grows with the square
    of the depth (30,000 levels take 2 GB) and a hostile or corrupt file could get the
    process killed. orjson stops NDJSON lines at 1024 levels; this gives documents the same
    bound. The scan is C work per 64 KiB chunk (escapes dropped by `replace`, all but quotes
    and brackets by `translate`, then strings and balanced pairs by regexes), which gives an
    upper bound; only when that passes the limit does a byte-by-byte scan decide.
    """

    __slots__ = ("_carry", "_depth", "_in_string", "_stream", "_too_deep")

    def __init__(self, stream: Readable) -> None:
        self._stream = stream
        self._depth = 0
        self._in_string = False
        self._carry = b""  # trailing backslashes, scanned with the next chunk
        self._too_deep = False

    def read(self, n: int = -1, /) -> bytes:
        if self._too_deep:
            raise TooDeep
        data = self._stream.read(n)
        if data:
            state = (self._depth, self._in_string, self._carry)
            try:
                self._scan(data)
            except TooDeep:
                # Hand ijson the part before the limit, so the records that end there are
                # still yielded; the next read raises.
                self._too_deep = True
                cut = _cut_point(data, *state)
                if cut == 0:  # b"" would read as the end of the file
                    raise
                return data[:cut]
        return data

    def _scan(self, data: bytes) -> None:
        state = (self._depth, self._in_string, self._carry)
        text = (b'"' if self._in_string else b"") + self._carry + data
        kept = len(text.rstrip(b"\\"))
        self._carry = text[kept:]
        text = text[:kept]
        if b"\\" in text:  # only \\ and \" matter; left to right, as JSON pairs them
            text = text.replace(b"\\\\", b"").replace(b'\\"', b"")
        text = text.translate(None, _NOT_STRUCTURE)
        self._in_string = text.count(b'"') % 2 == 1
        # `""` is an empty string or two strings meeting (`"[":"]"`): dropping it leaves the
        # strings' contents inside quotes, and it is most of them, cheaply.
        text = text.replace(b'""', b"")
        brackets = _STRING.sub(b"", text) if b'"' in text else text
        opens = brackets.count(b"[") + brackets.count(b"{")
        if self._depth + opens <= MAX_DEPTH:  # cannot pass the limit: the usual case
            self._depth += 2 * opens - len(brackets)
            return
        # Peel innermost pairs: each pass is one level of the nesting closed in this chunk.
        passes = 0
        while True:
            peeled = _PAIR.sub(b"", brackets)
            if len(peeled) == len(brackets):
                break
            brackets = peeled
            passes += 1
            if passes > 64:  # unusually deep: let the byte-by-byte scan decide
                break
        opens = brackets.count(b"[") + brackets.count(b"{")
        if self._depth + opens + passes > MAX_DEPTH and _cut_point(data, *state) < len(data):
            raise TooDeep
        self._depth += 2 * opens - len(brackets)


def _cut_point(data: bytes, depth: int, in_string: bool, carry: bytes) -> int:
    """Where in `data` the depth passes MAX_DEPTH: a byte-by-byte scan, run once per file."""
    escaped = in_string and len(carry) % 2 == 1
    for i, b in enumerate(data):
        if in_string:
            if escaped:
                escaped = False
            elif b == 0x5C:
                escaped = True
            elif b == 0x22:
                in_string = False
        elif b == 0x22:
            in_string = True
        elif b in b"[{":
            depth += 1
            if depth > MAX_DEPTH:
                return i
        elif b in b"]}":
            depth -= 1
    return len(data)


def _first_line(e: BaseException) -> str:
    text = e.args[0] if e.args else str(e)
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return str(text).strip().splitlines()[0] if str(text).strip() else type(e).__name__


def _small(head: bytes) -> Iterator[Any] | None:
    """Parse a document that fits in the sniff window with orjson (fast); None if invalid."""
    try:
        doc = orjson.loads(head)
    except orjson.JSONDecodeError:
        return None
    if isinstance(doc, list):
        return iter(doc)
    users = doc.get("users") if isinstance(doc, dict) else None
    if isinstance(users, list):
        return iter(users)
    return iter([doc])


def _object_events(f: Readable, floats: bool = True) -> Iterator[Any]:
    """Stream the users of `{"users": [...]}`, or yield the whole object if it has none.

    Python-level event handling is slower than `ijson.items`, but it is only used for object
    documents larger than the sniff window, and it reads the users array one user at a time.
    Other top-level keys next to `users` are ignored. Several objects one after another (API
    bodies one per line, the first over the sniff window) are read one after another.
    """
    top = ijson.ObjectBuilder()
    in_users = False
    item: ijson.ObjectBuilder | None = None
    depth = 0
    saw_users = False
    events = ijson.parse(f, use_float=floats, buf_size=_BUF, multiple_values=True)
    for prefix, event, value in events:
        if prefix == "" and event == "end_map" and item is None:
            top.event(event, value)
            if not saw_users:
                yield top.value
            top, saw_users = ijson.ObjectBuilder(), False
            continue
        if item is not None:
            item.event(event, value)
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
            if depth == 0:
                yield item.value
                item = None
            continue
        if in_users and prefix == "users.item":
            if event in ("start_map", "start_array"):
                item = ijson.ObjectBuilder()
                item.event(event, value)
                depth = 1
            else:
                yield value
            continue
        if prefix == "users" and event == "start_array":
            in_users = saw_users = True
        elif prefix == "users" and event == "end_array":
            in_users = False
        top.event(event, value)


def iter_document(
    stream: Readable, head: bytes, complete: bool, source: str, exact: bool = False
) -> Iterator[Any]:
    """Yield each record of a JSON document: an array's items, a body's users, or the object.

    `head` is what the sniffer already read (BOM removed); `complete` says it is the whole
    stream, in which case orjson parses it in one go. Raises `InputError` with the record
    number reached when the document is malformed, truncated, or nests too deep.
    """
    if complete:
        fast = _small(head)
        if fast is not None:
            yield from fast
            return
    n = 0
    f = DepthGuard(_Prefixed(head, stream))
    is_array = head.lstrip()[:1] == b"["
    try:
        if is_array:
            for item in ijson.items(f, "item", use_float=not exact, buf_size=_BUF):
                n += 1
                yield item
        else:
            for record in _object_events(f, not exact):
                n += 1
                yield record
    except TooDeep:
        msg = f"nesting too deep (more than {MAX_DEPTH} levels) after record {n}"
        raise InputError(source, msg, line=n) from None
    except StreamError as e:
        raise InputError(source, f"{e} after record {n}", line=n) from None
    except (ijson.JSONError, ValueError, UnicodeDecodeError) as e:
        msg = f"invalid JSON after record {n}: {_first_line(e)}"
        if OVERFLOW in str(e) and not exact:
            raise NumberOverflow(source, msg, line=n) from None
        raise InputError(source, msg, line=n) from None


class _Prefixed:
    """Serve `head` first, then the rest of `stream`: un-reading the sniffed bytes."""

    __slots__ = ("_head", "_stream")

    def __init__(self, head: bytes, stream: Readable) -> None:
        self._head = head
        self._stream = stream

    def read(self, n: int = -1, /) -> bytes:
        if self._head and n != 0:  # ijson calls read(0) to learn whether it gets bytes
            data, self._head = self._head, b""
            return data
        return self._stream.read(n)
