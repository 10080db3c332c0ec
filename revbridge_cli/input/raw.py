"""One NDJSON line (or document item) to a `RawRecord`: the record type and the slow path.

The NDJSON loop (`ndjson`) only calls into here when `orjson.loads` failed or the value needs a
second look, so everything here can afford to be careful rather than fast.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from revbridge_cli.input.streams import BOM as _BOM
from revbridge_cli.input.streams import WS as _WS

RAW_PREFIX_CHARS = 1000  # how much of an oversized line is kept in `raw`
MAX_SEND_DEPTH = 254  # the deepest orjson.dumps writes
TOO_DEEP = f"nesting too deep (more than {MAX_SEND_DEPTH} levels)"
DEEP_LINE = 2 * (MAX_SEND_DEPTH + 1)  # a shorter line cannot nest deeper than that
_TYPE_NAMES = {list: "array", str: "string", int: "number", float: "number", bool: "boolean"}


@dataclass(slots=True)
class RawRecord:
    """One record of input, parsed or not.

    `line` is the 1-based line number (NDJSON) or 1-based record number (JSON document);
    `end_offset` is the byte offset just past the record's newline in the decompressed
    stream, so that a later run can continue from there (0 for JSON-document records, which
    resume by record number instead). Either `value` (a dict) is set, or `error` and `raw`.
    """

    source: str
    line: int
    end_offset: int
    value: Any = None
    error: str | None = None
    raw: str | None = None


def type_name(value: Any) -> str:
    return "null" if value is None else _TYPE_NAMES.get(type(value), type(value).__name__)


def _raw(line: bytes) -> str:
    return line.decode("utf-8", "replace")


def raw_prefix(head: bytes) -> str:
    return head.decode("utf-8", "replace")[:RAW_PREFIX_CHARS] + "…"


def _describe(line: bytes, e: orjson.JSONDecodeError) -> str:
    """A short reason for a line orjson rejected, worded for the person who has to fix it."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as u:
        return f"invalid UTF-8 (byte 0x{line[u.start]:02x} at byte {u.start + 1})"
    if "depth limit" in e.msg:
        return TOO_DEEP
    if text.startswith(("NaN", "Infinity"), e.pos):
        signed = e.pos > 0 and text[e.pos - 1] == "-"  # orjson points past the sign
        return f"NaN/Infinity is not JSON (at column {e.colno - signed})"
    return f"invalid JSON ({e.msg} at column {e.colno})"


def describe_json_error(text: str, e: orjson.JSONDecodeError) -> str:
    """The one wording of a JSON syntax error, for an input line and for a rejected row's
    fixed `raw` alike, so a row keeps its reason from one fix round to the next."""
    return _describe(text.encode("utf-8", "surrogatepass"), e)


def bad_line(
    src: str, n: int, off: int, line: bytes, e: orjson.JSONDecodeError
) -> RawRecord | None:
    """The slow path after `orjson.loads` failed: blank (None), a BOM, or a real error."""
    if line.endswith(b"\r"):
        line = line[:-1]
    if not line.strip(_WS):
        return None
    if line.startswith(_BOM):  # mid-stream BOM, e.g. from `cat a.ndjson b.ndjson`
        line = line[3:]
        try:
            value = orjson.loads(line)
        except orjson.JSONDecodeError as e2:
            e = e2
        else:
            return make_record(src, n, off, line, value)
    return RawRecord(src, n, off, None, _describe(line, e), _raw(line))


def sendable_depth(value: Any) -> bool:
    """True if orjson can write `value` back: it parses 1024 levels but writes only 254.

    Without this, a record nested 255..1024 deep would parse here and blow up as a TypeError
    in the packer's `orjson.dumps`. Call only when the nesting may be deep (it serializes).
    """
    try:
        orjson.dumps(value)
    except TypeError:  # orjson.JSONEncodeError: "Recursion limit reached"
        return False
    return True


def _shallow(line: bytes) -> bool:
    """Too few brackets to nest past MAX_SEND_DEPTH (so no need to serialize to check)."""
    return len(line) < DEEP_LINE or line.count(b"[") + line.count(b"{") <= MAX_SEND_DEPTH


def make_record(src: str, n: int, off: int, line: bytes, value: Any) -> RawRecord:
    """A parsed line: the record, or why it cannot be one (not an object, nested too deep)."""
    line = line.rstrip(b"\r")
    if type(value) is not dict:
        error = f"not a JSON object (got {type_name(value)})"
    elif _shallow(line) or sendable_depth(value):
        return RawRecord(src, n, off, value)
    else:
        error = TOO_DEEP
    return RawRecord(src, n, off, None, error, _raw(line))


def parse_one(src: str, n: int, off: int, line: bytes) -> RawRecord | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as e:
        return bad_line(src, n, off, line, e)
    return make_record(src, n, off, line, value)
