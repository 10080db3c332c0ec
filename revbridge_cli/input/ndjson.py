"""NDJSON, a line at a time, with byte offsets: the reader's fast path.

The hottest reading code of the tool: 64 KiB chunks split in C, one `orjson.loads` per line,
every check that is not needed for a good line kept out of the loop (blank lines, BOMs and bad
bytes are sorted out only after `orjson.loads` has failed, in `raw`). The reader opens the
stream, sniffs it and seeks to the resume offset; from there on every byte is this module's.

Oversized lines (over `max_line_bytes`) are never parsed nor held whole: they are read in
chunks and only the first RAW_PREFIX_CHARS characters are kept in `raw`, + "…". A lone
surrogate escape ("\\ud800") is invalid JSON here (orjson rejects it). A BOM is skipped at the
start of the stream and at the start of any line (`cat` of files).
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterator

import orjson

from revbridge_cli.input.paths import InputError
from revbridge_cli.input.raw import (
    DEEP_LINE,
    RAW_PREFIX_CHARS,
    RawRecord,
    bad_line,
    make_record,
    parse_one,
    raw_prefix,
)
from revbridge_cli.input.streams import BOM as _BOM
from revbridge_cli.input.streams import Readable, StreamError

CHUNK = 64 * 1024  # measured: faster than 1 MiB (the lines of a chunk stay in cache)


class NdjsonLines:
    """One pass over an NDJSON stream, a `RawRecord` per line.

    `data` is what the reader has already taken from `stream` past `offset` (the sniffed
    head); lines are numbered after `line`. As the pass goes, `offset` and `line` are where a
    later run resumes (past trailing blank lines too), updated a chunk at a time;
    `held_back_bytes` is the size of an unfinished last line left unread because `hold` was
    set (with --state the rest of it may still be being written)."""

    __slots__ = (
        "_data",
        "_hold",
        "_max",
        "_source",
        "_stream",
        "held_back_bytes",
        "line",
        "offset",
    )

    def __init__(
        self,
        source: str,
        stream: Readable,
        data: bytes,
        offset: int,
        line: int,
        hold: bool,
        max_line_bytes: int,
    ) -> None:
        self._source, self._stream, self._data = source, stream, data
        self.offset, self.line = offset, line
        self._hold, self._max = hold, max_line_bytes
        self.held_back_bytes = 0

    def __iter__(self) -> Iterator[RawRecord]:
        loads = orjson.loads
        decode_error = orjson.JSONDecodeError
        record = RawRecord
        deep_line = DEEP_LINE
        src = self._source
        read = self._stream.read
        maxlen = self._max
        data, self._data = self._data, b""
        n = self.line
        off = self.offset
        if off == 0 and data.startswith(_BOM):
            data = data[3:]
            off = 3
        parts: list[bytes] = []  # the unfinished line, in pieces
        size = 0  # its length
        while True:
            if not data:
                try:
                    data = read(CHUNK)
                except StreamError as e:
                    raise InputError(src, f"{e} after line {n}", line=n) from None
                if not data:
                    break
            if parts:
                if b"\n" not in data:
                    parts.append(data)
                    size += len(data)
                    data = b""
                    if size > maxlen:
                        n, off, rest = yield from self._long_line(parts, size, n, off, read)
                        parts, size = [], 0
                        if rest is None:
                            return
                        data = rest
                    continue
                parts.append(data)
                data = b"".join(parts)
                parts, size = [], 0
            lines = data.split(b"\n")
            tail = lines.pop()
            if len(data) > maxlen:
                n, off = yield from self._checked(lines, n, off)
            else:
                for line in lines:
                    n += 1
                    size = len(line)
                    off += size + 1
                    try:
                        value = loads(line)
                    except decode_error as e:
                        bad = bad_line(src, n, off, line, e)
                        if bad is not None:
                            yield bad
                        continue
                    if type(value) is dict and size < deep_line:
                        yield record(src, n, off, value)
                    else:
                        yield make_record(src, n, off, line, value)
            self.offset, self.line = off, n
            data = b""
            if tail:
                parts, size = [tail], len(tail)
                if size > maxlen:
                    n, off, rest = yield from self._long_line(parts, size, n, off, read)
                    parts, size = [], 0
                    if rest is None:
                        return
                    data = rest
        if parts:
            tail = b"".join(parts)
            if self._hold:
                self.held_back_bytes = len(tail)
            else:
                n += 1
                off += len(tail)
                last = parse_one(src, n, off, tail)
                if last is not None:
                    yield last
        self.offset, self.line = off, n

    def _checked(
        self, lines: list[bytes], n: int, off: int
    ) -> Generator[RawRecord, None, tuple[int, int]]:
        """The loop for a chunk that may hold a line over `max_line_bytes` (rare)."""
        for line in lines:
            n += 1
            off += len(line) + 1
            if len(line) > self._max:
                body = line.rstrip(b"\r")
                yield self._too_large(n, off, len(body), body[: RAW_PREFIX_CHARS * 4])
                continue
            rec = parse_one(self._source, n, off, line)
            if rec is not None:
                yield rec
        return n, off

    def _too_large(self, n: int, off: int, size: int, head: bytes) -> RawRecord:
        error = f"line too large: {size:,} bytes, a request may be at most {self._max:,} bytes"
        return RawRecord(self._source, n, off, None, error, raw_prefix(head))

    def _long_line(
        self, parts: list[bytes], size: int, n: int, off: int, read: Callable[[int], bytes]
    ) -> Generator[RawRecord, None, tuple[int, int, bytes | None]]:
        """Skip the rest of an oversized line in chunks, keeping only a prefix for `raw`.

        Returns (n, off, rest of the chunk after the line), with rest None at end of input.
        """
        head = b"".join(parts)[: RAW_PREFIX_CHARS * 4]
        last = parts[-1][-1:]  # the byte before a newline at the start of the next chunk
        while True:
            try:
                data = read(CHUNK)
            except StreamError as e:
                raise InputError(self._source, f"{e} after line {n}", line=n) from None
            if not data:
                if self._hold:
                    self.held_back_bytes = size
                else:
                    n += 1
                    off += size
                    yield self._too_large(n, off, size, head)
                self.offset, self.line = off, n
                return n, off, None
            nl = data.find(b"\n")
            if nl < 0:
                size += len(data)
                last = data[-1:]
                continue
            n += 1
            off += size + nl + 1
            cr = (data[nl - 1 : nl] if nl else last) == b"\r"  # CRLF: the CR is line end too
            yield self._too_large(n, off, size + nl - cr, head)
            return n, off, data[nl + 1 :]
