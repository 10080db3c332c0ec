"""Reading input files: the I/O edge that turns bytes into parsed records with their origin.

(Interface stub; the full implementation replaces this.)
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


class InputError(Exception):
    """An input that cannot be read (missing, unreadable, corrupt), with file and line."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.message = message
        where = f"{source}:{line}" if line is not None else source
        super().__init__(f"{where}: {message}")


@dataclass(slots=True)
class RawRecord:
    """One record of input, parsed or not.

    `line` is the 1-based line number (NDJSON) or 1-based record number (JSON document);
    `end_offset` is the byte offset just past the record in the decompressed stream, so that a
    later run can continue from there. Exactly one of `value` / `error` is meaningful.
    """

    source: str
    line: int
    end_offset: int
    value: Any = None
    error: str | None = None
    raw: str | None = None


def read_records(path: str, fmt: str | None = None) -> Iterator[RawRecord]:
    import orjson

    with open(path, "rb") as f:
        offset = 0
        for n, line in enumerate(f, 1):
            offset += len(line)
            if not line.strip():
                continue
            try:
                yield RawRecord(path, n, offset, orjson.loads(line))
            except orjson.JSONDecodeError as e:
                yield RawRecord(path, n, offset, error=f"invalid JSON: {e}", raw=line.decode(
                    "utf-8", "replace").rstrip("\r\n"))
