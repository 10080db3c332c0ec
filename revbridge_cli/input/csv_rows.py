"""CSV and TSV with a header row, a row at a time, as `RawRecord`s with byte offsets.

Lines are split and counted here, so the byte offset just past every row is known (what
`--state` resumes from, exactly as for NDJSON). A line without a quote is split on the
delimiter in C; a line with one goes to the standard library's csv module, which takes more
lines from here while a quoted cell holds a newline. Why not pyarrow's CSV reader (measured
in docs/mappings-and-presets.md): it gives no byte offset or line per row, it
infers types from the first block, and it would load pyarrow for every CSV file.

Types: a cell is text. An empty cell is absent (the field is left out); `revenue` and
`event_value` cells that hold a number become numbers; everything else stays a string, so a
zip code `02134` stays `"02134"`. A mapping (`--map`) can type any column.

A record's `line` is the line of the file where its row ends (the header is line 1): the row
number a spreadsheet shows when no cell holds a newline, and, as for NDJSON, the count of
lines read through it, which is what `--state` resumes after.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from itertools import chain
from typing import Any

import orjson

from revbridge_cli.errors import InputError
from revbridge_cli.input.raw import RAW_PREFIX_CHARS, RawRecord
from revbridge_cli.input.streams import BOM, Readable, StreamError

CHUNK = 64 * 1024
NUMERIC_COLUMNS = ("revenue", "event_value")
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def number_or_text(text: str) -> Any:
    """A cell that holds a number as that number (int when it has no fraction), else the text."""
    text = text.strip()
    if _INT.fullmatch(text):
        return int(text)
    if _FLOAT.fullmatch(text):
        return float(text)
    return text


def parse_header(line: bytes, delimiter: str, source: str) -> list[str]:
    """The column names of the header line; a header we cannot trust stops the file."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(source, f"the header is not UTF-8 (byte at {e.start + 1})", 1) from None
    rows = list(csv.reader([text.rstrip("\r\n")], delimiter=delimiter))
    if len(rows) != 1:
        raise InputError(source, "the header row spans several lines (a quoted newline)", 1)
    names = [name.strip() for name in rows[0]]
    seen: set[str] = set()
    for name in names:
        if name and name in seen:
            raise InputError(source, f"the header names column {name!r} twice", 1)
        seen.add(name)
    if not any(names):
        raise InputError(source, "the header row has no column names", 1)
    return names


def read_header(
    source: str, head: bytes, complete: bool, delimiter: str, limit: int
) -> tuple[list[str], int, int] | None:
    """The column names from the first bytes of the file, the offset past the header line and
    the lines up to it; None for a file of blank lines."""
    line, end, lines = split_header(head)
    if end == len(head) and not complete and not head.endswith(b"\n"):
        raise InputError(source, f"the header line is longer than {limit:,} bytes", 1)
    if not line.strip():
        return None
    return parse_header(line.rstrip(b"\r"), delimiter, source), end, lines


def split_header(head: bytes) -> tuple[bytes, int, int]:
    """The header line (the first non-blank line, after a BOM), the byte offset past it, and
    the number of lines up to and including it."""
    offset = 3 if head.startswith(BOM) else 0
    lines = 0
    while True:
        end = head.find(b"\n", offset)
        line = head[offset:] if end < 0 else head[offset:end]
        lines += 1
        if line.strip() or end < 0:
            return line, (len(head) if end < 0 else end + 1), lines
        offset = end + 1


class CsvRows:
    """The rows of one CSV/TSV stream after its header, as records.

    `data` is what was already read from `stream` at byte `offset` (the start of a row), and
    `line` the number of lines before it. After iterating, `offset`/`line` say where the next
    run resumes and `held_back_bytes` the size of an unfinished last line left for it.
    """

    def __init__(
        self,
        source: str,
        stream: Readable,
        data: bytes,
        offset: int,
        line: int,
        header: list[str],
        delimiter: str,
        hold_partial_last_line: bool,
        max_row_bytes: int,
    ) -> None:
        self.source = source
        self.offset = offset
        self.line = line
        self.held_back_bytes = 0
        self._stream = stream
        self._data = data
        self._header = header
        self._delimiter = delimiter
        self._hold = hold_partial_last_line
        self._max = max_row_bytes
        self._bad_utf8: str | None = None
        self._row_start = offset
        self._total_seen = offset  # where the stream ended, once a last row is held back

    def _lines(self) -> Iterator[str]:
        """Physical lines, decoded, with their newline, counting bytes and lines as the csv
        module takes them: it takes one only when it needs it, so after a row the count is
        the row's end."""
        data = self._data
        self._data = b""
        read = self._stream.read
        maxlen = self._max
        tail = b""
        while True:
            if not data:
                try:
                    data = read(CHUNK)
                except StreamError as e:
                    raise InputError(
                        self.source, f"{e} after line {self.line}", self.line
                    ) from None
                if not data:
                    break
            if tail:
                data = tail + data
                tail = b""
            lines = data.split(b"\n")
            tail = lines.pop()
            data = b""
            for raw in lines:
                self.offset += len(raw) + 1
                self.line += 1
                try:
                    text = raw.decode()
                except UnicodeDecodeError as e:
                    text = self._bad(raw, e)
                yield text + "\n"
                if self.offset - self._row_start > maxlen:
                    raise _RowTooLarge(self.offset - self._row_start)
            if len(tail) > maxlen:
                raise _RowTooLarge(len(tail))
        if tail:
            if self._hold:
                self._total_seen = self.offset + len(tail)
                raise _HeldBack
            self.offset += len(tail)
            self.line += 1
            try:
                yield tail.decode()
            except UnicodeDecodeError as e:
                yield self._bad(tail, e)

    def _bad(self, raw: bytes, e: UnicodeDecodeError) -> str:
        if self._bad_utf8 is None:
            self._bad_utf8 = f"invalid UTF-8 (byte 0x{raw[e.start]:02x} at byte {e.start + 1})"
        return raw.decode("utf-8", "replace")

    def __iter__(self) -> Iterator[RawRecord]:
        header = self._header
        width = len(header)
        unnamed = "" in header
        numeric = [c for c in NUMERIC_COLUMNS if c in header]
        src = self.source
        delimiter = self._delimiter
        record_type = RawRecord
        lines = self._lines()
        while True:
            start_line = self.line
            self._row_start = self.offset
            try:
                text = next(lines)
                if '"' in text:  # quoted cells, maybe a newline in one: the csv module's job
                    cells = next(
                        csv.reader(chain((text,), lines), delimiter=delimiter, strict=True)
                    )
                else:  # most rows: a split in C, faster than the csv module
                    cells = text.rstrip("\r\n").split(delimiter)
            except StopIteration:
                return
            except _HeldBack:
                self.held_back_bytes = self._total_seen - self._row_start
                self.offset, self.line = self._row_start, start_line
                return
            except _RowTooLarge as e:
                msg = f"row too large ({e.size:,} bytes and more; an unclosed quote?)"
                raise InputError(src, f"{msg}: nothing after it was read", start_line + 1) from None
            except csv.Error as e:
                msg = f"invalid CSV ({e}): nothing after it was read"
                raise InputError(src, msg, start_line + 1) from None
            if len(cells) != width:
                if len(cells) == 1 and not cells[0].strip():
                    continue  # a blank line, or one of spaces
                message = f"row has {len(cells)} fields, the header has {width}"
                yield self._error(self.line, cells, message)
                continue
            if self._bad_utf8 is not None:
                yield self._error(self.line, cells, self._bad_utf8)
                self._bad_utf8 = None
                continue
            if "" in cells or unnamed:
                record = {k: v for k, v in zip(header, cells, strict=True) if v and k}
            else:
                record = dict(zip(header, cells, strict=True))
            for name in numeric:
                value = record.get(name)
                if value is not None:
                    record[name] = number_or_text(value)
            yield record_type(src, self.line, self.offset, record)

    def _error(self, line: int, cells: list[str], message: str) -> RawRecord:
        """A row that cannot be a record; its `raw` is the row as a JSON object of its cells by
        header name (`column N` past the header), so the fix loop sends it back as JSON."""
        header = self._header
        width = len(header)
        row: dict[str, Any] = {}
        for i, cell in enumerate(cells):
            name = header[i] if i < width and header[i] else f"column {i + 1}"
            if cell != "":
                row[name] = number_or_text(cell) if name in NUMERIC_COLUMNS else cell
        raw = orjson.dumps(row).decode()
        if len(raw) > RAW_PREFIX_CHARS:
            raw = raw[:RAW_PREFIX_CHARS] + "…"
        return RawRecord(self.source, line, self.offset, None, message, raw)


class _HeldBack(Exception):
    """The last line has no newline yet and is left for the next run (--state)."""


class _RowTooLarge(Exception):
    def __init__(self, size: int) -> None:
        self.size = size
