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
import math
import re
from collections import deque
from collections.abc import Generator, Iterator
from itertools import chain
from typing import Any

import orjson

from revbridge_cli.errors import InputError
from revbridge_cli.input.raw import RAW_PREFIX_CHARS, RawRecord
from revbridge_cli.input.streams import BOM, Readable, StreamError
from revbridge_cli.text import one_line

CHUNK = 64 * 1024
NUMERIC_COLUMNS = ("revenue", "event_value")
_MAX_DIGITS = 300  # past it neither int() (4,300) nor float() (309) takes every number
_INT = re.compile(r"[-+]?\d+")
_FLOAT = re.compile(r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def number_or_text(text: str) -> Any:
    """A cell that holds a number as that number (int when it has no fraction), else the text.
    A number no JSON reader takes back (hundreds of digits, or past a float's range) stays
    text, which the contract then refuses as a revenue with the value in the message; an
    integer past 64 bits is a float, as orjson reads it in NDJSON (and as it can write it)."""
    text = text.strip()
    if len(text) > _MAX_DIGITS:
        return text
    if _INT.fullmatch(text):
        number = int(text)  # past 64 bits a float, as orjson reads such an NDJSON number
        return number if -(2**63) <= number < 2**64 else float(number)
    if _FLOAT.fullmatch(text):
        real = float(text)
        return real if math.isfinite(real) else text
    return text


def parse_header(line: bytes, delimiter: str, source: str) -> list[str]:
    """The column names of the header line; a header we cannot trust stops the file."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise InputError(source, f"the header is not UTF-8 (byte at {e.start + 1})", 1) from None
    try:
        rows = list(csv.reader([text.rstrip("\r\n")], delimiter=delimiter, strict=True))
    except csv.Error as e:
        if str(e) == "unexpected end of data":  # the quote runs past the line: into the rows
            msg = "the header row has an unclosed quote (or a quoted newline)"
        else:
            msg = f"the header row is not valid CSV ({one_line(str(e))})"
        raise InputError(source, msg, 1) from None
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
        # Lines an unclosed quote took, to be read again: (text, offset and line after it,
        # its invalid UTF-8 if any); `_eof` once the line generator has ended.
        self._replay: deque[tuple[str, int, int, str | None]] = deque()
        self._eof = False
        if csv.field_size_limit() < max_row_bytes:  # a cell may be as large as a record
            csv.field_size_limit(max_row_bytes)

    def _lines(self) -> Iterator[str]:
        """Physical lines, decoded, with their newline, counting bytes and lines as the csv
        module takes them: it takes one only when it needs it, so after a row the count is
        the row's end. A line over the record limit is never held: it is skipped to its end
        and comes as a `_Long`. Lines pushed back (`_replay`) come again first."""
        data = self._data
        self._data = b""
        read = self._stream.read
        maxlen = self._max
        replay = self._replay
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
                if replay:
                    yield from self._replayed()
                self.offset += len(raw) + 1
                self.line += 1
                if len(raw) > maxlen:
                    yield _Long(raw[:RAW_PREFIX_CHARS], len(raw))
                    continue
                try:
                    text = raw.decode()
                except UnicodeDecodeError as e:
                    text = self._bad(raw, e)
                yield text + "\n"
            if replay:
                yield from self._replayed()
            if len(tail) > maxlen:
                data = yield from self._skip_long(tail)
                tail = b""
        if replay:
            yield from self._replayed()
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
        while replay:  # pushed back after the last line was read
            yield from self._replayed()
        self._eof = True

    def _skip_long(self, head: bytes) -> Generator[str, None, bytes]:
        """A line over the limit, from `head` to its newline, read and dropped as it comes:
        one `_Long` for it; returns what follows its newline."""
        size = len(head)
        while True:
            try:
                data = self._stream.read(CHUNK)
            except StreamError as e:
                raise InputError(self.source, f"{e} after line {self.line}", self.line) from None
            end = data.find(b"\n")
            if not data and self._hold:  # a long last line may still be being written
                self._total_seen = self.offset + size
                raise _HeldBack
            if end >= 0 or not data:
                size += end if end >= 0 else 0
                self.offset += size + (end >= 0)
                self.line += 1
                yield _Long(head[:RAW_PREFIX_CHARS], size)
                return data[end + 1 :] if end >= 0 else b""
            size += len(data)

    def _replayed(self) -> Iterator[str]:
        replay = self._replay
        while replay:
            text, self.offset, self.line, bad = replay.popleft()
            if bad is not None:
                self._bad_utf8 = bad
            yield text

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
                if '"' in text:  # quoted cells, maybe a newline in one (and a _Long): slow path
                    cells = yield from self._quoted(text, lines)
                    if cells is None:
                        if self._eof and self._replay:
                            lines = self._lines_again()
                        continue
                else:  # most rows: a split in C, faster than the csv module
                    cells = text.rstrip("\r\n").split(delimiter)
            except StopIteration:
                return
            except _HeldBack:
                self.held_back_bytes = self._total_seen - self._row_start
                self.offset, self.line = self._row_start, start_line
                return
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

    def _lines_again(self) -> Iterator[str]:
        """After the end of the file, the lines an unclosed quote had taken, read again."""
        self._eof = False
        yield from self._replayed()
        self._eof = True

    def _quoted(
        self, text: str, lines: Iterator[str]
    ) -> Generator[RawRecord, None, list[str] | None]:
        """A row with a quote, through the csv module: its cells (the generator's return
        value), or None once the row was set aside (yielded) and reading can go on.

        A row the csv module refuses (a stray character after a closing quote) is set aside
        whole, with its lines' text, and reading goes on after it. A quote still open at the
        end of the file or past the record limit is an unclosed quote: its first line is set
        aside and the lines it took are read again as rows (docs/bad-input.md)."""
        first = (self.offset, self.line)
        if type(text) is _Long:
            yield self._long(text)
            return None
        taken: list[tuple[str, int, int, str | None]] = []
        cut: list[_Long | int] = []
        row_start, maxlen = self._row_start, self._max

        first_bad, self._bad_utf8 = self._bad_utf8, None

        def more() -> Iterator[str]:
            for line in lines:
                if type(line) is _Long:
                    cut.append(line)
                    return
                taken.append((line, self.offset, self.line, self._bad_utf8))
                self._bad_utf8 = None  # each line's own, if it is read again
                if self.offset - row_start > maxlen:
                    cut.append(self.offset - row_start)
                    return
                yield line

        try:
            cells = next(csv.reader(chain((text,), more()), delimiter=self._delimiter, strict=True))
        except StopIteration:
            return None
        except csv.Error as e:
            error = one_line(str(e))
        else:
            self._bad_utf8 = first_bad or next((t[3] for t in taken if t[3]), None)
            return cells
        if not cut and error != "unexpected end of data":
            joined = text + "".join(t[0] for t in taken)
            yield self._text_error(f"invalid CSV ({error})", joined)
            self._bad_utf8 = None
            return None
        # An unclosed quote: its first line set aside, the rest read again.
        long = cut[0] if cut and type(cut[0]) is _Long else None
        again = [*taken]
        if long is not None:
            again.append((long, self.offset, self.line, None))
        self._replay.extendleft(reversed(again))
        self.offset, self.line = first
        self._bad_utf8 = None
        where = "the end of the file" if not cut else f"the {self._max:,}-byte record limit"
        message = f"unclosed quote: the quoted cell runs to {where}"
        if again:
            count = "line" if len(again) == 1 else f"{len(again):,} lines"
            message += f"; the {count} after it read as rows"
        yield self._text_error(message, text)
        return None

    def _long(self, text: _Long) -> RawRecord:
        message = f"row too large: {text.size:,} bytes, a record may be at most {self._max:,}"
        return self._text_error(message, text.head.decode("utf-8", "replace"), cut=True)

    def _text_error(self, message: str, text: str, cut: bool = False) -> RawRecord:
        """A row the csv module could not split: its `raw` is its text (the first 1,000
        characters and "…" for a longer one)."""
        text = text.rstrip("\r\n")
        if cut or len(text) > RAW_PREFIX_CHARS:
            text = text[:RAW_PREFIX_CHARS] + "…"
        return RawRecord(self.source, self.line, self.offset, None, message, text)

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


class _Long(str):
    """A line over the record limit, skipped to its end: its first bytes and its size. A str
    holding a quote, so the row loop's hot path sends it down the slow path at no cost."""

    head: bytes
    size: int

    def __new__(cls, head: bytes, size: int) -> _Long:
        self = super().__new__(cls, '"')
        self.head, self.size = head, size
        return self
