"""Reading input files: the I/O edge that turns bytes into parsed records with their origin.

One `Reader` per input (a file path, or `-` for stdin). It sniffs gzip by magic bytes and
the format by content (`formats`), then yields a `RawRecord` per NDJSON line, JSON-document
item, CSV/TSV row (`csv_rows`) or Parquet row (`parquet_rows`); a file that is not text at all
is refused with what it looks like before a record is read.
Bad input never raises out of the loop as a traceback: a bad line becomes a record with
`error` set, and what cannot be continued past (a corrupt gzip, a broken JSON document)
raises `InputError` with file and line after every good record before it was yielded.

NDJSON is the fast path, a module of its own (`ndjson`): this one opens, sniffs and seeks,
and hands the stream over positioned at the resume offset.

Decisions worth knowing (the tests pin them):
- An error record's `raw` is the line decoded with errors="replace", without its line end;
  for a line over `max_line_bytes` it is only the first 1,000 characters + "…".
- A lone surrogate escape ("\\ud800") is invalid JSON in NDJSON (orjson rejects it); in a
  large JSON document ijson's C backend turns it into "?" silently.
- Nesting: a record must be writable by orjson (254 levels), not only readable (1024), or
  the packer could not serialize it; deeper records are "nesting too deep" error records.
- Integers beyond 64 bits: orjson reads them as floats; ijson's C backend stops the document.
- A BOM is skipped at the start of the stream and at the start of any line (`cat` of files).
"""

from __future__ import annotations

import math
import os
import stat
import sys
from collections.abc import Iterator
from decimal import Decimal
from typing import Any, BinaryIO

import orjson

from revbridge_cli.contract import MAX_BODY_BYTES
from revbridge_cli.errors import RefusedInput
from revbridge_cli.input import formats
from revbridge_cli.input.csv_rows import CsvRows, read_header
from revbridge_cli.input.document import NumberOverflow, iter_document
from revbridge_cli.input.ndjson import CHUNK, NdjsonLines
from revbridge_cli.input.parquet_rows import ParquetRows, is_parquet
from revbridge_cli.input.paths import (
    GZIP_MAGIC,
    STDIN,
    InputError,
    check_input,
    compare_identity,
    display_name,
    expand_inputs,
    file_identity,
    is_empty,
    os_error,
    same_file,
)
from revbridge_cli.input.raw import (
    RAW_PREFIX_CHARS,
    TOO_DEEP,
    RawRecord,
    type_name,
)
from revbridge_cli.input.streams import BOM as _BOM
from revbridge_cli.input.streams import WS as _WS
from revbridge_cli.input.streams import (
    Broken,
    CountingFile,
    Gunzip,
    Readable,
    ReadGate,
    StreamError,
)

__all__ = [
    "DEFAULT_MAX_LINE_BYTES",
    "InputError",
    "RawRecord",
    "Reader",
    "check_input",
    "compare_identity",
    "expand_inputs",
    "file_identity",
    "is_empty",
    "same_file",
]

DEFAULT_MAX_LINE_BYTES = MAX_BODY_BYTES
PARQUET_ON_A_PIPE = "a Parquet file, which is read from its end: pass its path, not a pipe or stdin"
NOTHING_READ = "nothing of it was read"
SNIFF_LIMIT = 1 << 20


def _regular_size(path: str) -> int | None:
    try:
        st = os.stat(path) if path != STDIN else None
    except OSError:
        return None  # reported by the open, with the right message
    return st.st_size if st is not None and stat.S_ISREG(st.st_mode) else None


class Reader:
    """Read one input (path or `-`) as records, with byte progress and resume support.

    Iterate it once. `bytes_read`/`total_bytes` are bytes of the underlying file (compressed
    for gzip; `total_bytes` is None for stdin and pipes), for a progress bar. After the loop,
    `end_offset`/`lines` are where the next incremental run resumes (past trailing blank
    lines too) and `held_back_bytes` is the size of an unfinished last line that was not
    read because `hold_partial_last_line` was set.

    Resuming: NDJSON continues at `start_offset` of the decompressed stream (seek for plain
    files, decompress-and-discard for gzip and stdin), numbering lines after `start_line`.
    A JSON document is read from its start again and its first `start_line` records are
    skipped; `start_offset` is ignored for it.

    Oversized NDJSON lines (over `max_line_bytes`) are never parsed nor held whole (`ndjson`).
    """

    def __init__(
        self,
        path: str,
        fmt: str | None = None,
        start_offset: int = 0,
        start_line: int = 0,
        hold_partial_last_line: bool = False,
        max_line_bytes: int = DEFAULT_MAX_LINE_BYTES,
        gate: ReadGate | None = None,
    ) -> None:
        if fmt is not None and fmt not in formats.FORMATS:
            raise ValueError(f"fmt must be None or one of {formats.FORMATS}, not {fmt!r}")
        self.path = path
        self.source = display_name(path)
        self.format = fmt
        self.compressed = False
        self.total_bytes: int | None = _regular_size(path)  # known before iterating
        self.held_back_bytes = 0
        self.end_offset = start_offset
        self.lines = start_line
        self._start_offset = start_offset
        self._start_line = start_line
        self._hold = hold_partial_last_line
        self._max = max_line_bytes
        self._file: BinaryIO | None = None
        self._counter: CountingFile | None = None
        self._gate = gate
        self._parquet: ParquetRows | None = None

    @property
    def bytes_read(self) -> int:
        """Bytes taken from the underlying file so far (compressed bytes for gzip; for Parquet,
        the share of the file's rows read)."""
        if self._parquet is not None:
            return int((self.total_bytes or 0) * self._parquet.fraction_read)
        return self._counter.bytes_read if self._counter else 0

    def __iter__(self) -> Iterator[RawRecord]:
        try:
            is_file = self.path != STDIN and _regular_size(self.path) is not None
            if self.format == "parquet" or (
                self.format is None and is_file and is_parquet(self.path)
            ):
                yield from self._parquet_rows()
                return
            stream, head, complete = self._open()
            if self.format == "json":
                yield from self._document(stream, head, complete)
            elif self.format in ("csv", "tsv"):
                yield from self._csv(stream, head, complete)
            else:  # here, not in a method: a second `yield from` a record costs on the hot path
                lines = NdjsonLines(
                    self.source,
                    stream,
                    head,
                    self._start_offset,
                    self._start_line,
                    self._hold,
                    self._max,
                )
                try:
                    yield from lines
                finally:
                    self.end_offset, self.lines = lines.offset, lines.line
                    self.held_back_bytes = lines.held_back_bytes
        finally:
            self.close()

    def _parquet_rows(self) -> Iterator[RawRecord]:
        if self.path == STDIN or _regular_size(self.path) is None:
            raise RefusedInput(self.source, f"{PARQUET_ON_A_PIPE}; {NOTHING_READ}")
        self.format = "parquet"
        rows = self._parquet = ParquetRows(self.path, self.source, self._start_line)
        try:
            yield from rows
        finally:
            self.lines = self.end_offset = rows.rows_done

    def _csv(self, stream: Readable, head: bytes, complete: bool) -> Iterator[RawRecord]:
        """CSV/TSV: the header from the file's start, then the rows from `start_offset`."""
        delimiter = "\t" if self.format == "tsv" else ","
        header = read_header(self.source, head, complete, delimiter, SNIFF_LIMIT)
        if header is None:
            return  # nothing but blank lines: no header, no rows
        names, header_end, header_lines = header
        if self._start_offset > header_end:
            try:
                data = self._seek(stream, head)
            except StreamError as e:
                raise InputError(self.source, f"{e} before the resume offset") from None
            offset, lines = self._start_offset, self._start_line
        else:
            data, offset, lines = head[header_end:], header_end, header_lines
        rows = CsvRows(
            self.source, stream, data, offset, lines, names, delimiter, self._hold, self._max
        )
        yield from rows
        self.end_offset, self.lines = rows.offset, rows.line
        self.held_back_bytes = rows.held_back_bytes

    def close(self) -> None:
        if self._file is not None and self.path != STDIN:
            self._file.close()
        self._file = None

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _open(self) -> tuple[Readable, bytes, bool]:
        """Open, detect gzip and format, position at `start_offset`; return the first bytes."""
        src = self.source
        if self.path == STDIN:
            f: BinaryIO = sys.stdin.buffer
        else:
            try:
                f = open(self.path, "rb", buffering=0)  # noqa: SIM115 (closed in close())
            except OSError as e:
                raise os_error(src, e, "open") from None
            st = os.fstat(f.fileno())
            if stat.S_ISREG(st.st_mode):
                self.total_bytes = st.st_size
        self._file = f
        self._counter = counter = CountingFile(f, self._gate)
        try:
            magic = counter.peek(2)
        except StreamError as e:
            raise InputError(src, str(e)) from None
        stream: Readable = counter
        if magic == GZIP_MAGIC:
            self.compressed = True
            stream = Gunzip(counter)
        elif self.path.endswith(".gz") and magic:
            raise InputError(src, "not a gzip file (named .gz but no gzip magic 1f 8b)")
        head, complete, broken = self._sniff(stream)
        refusal = formats.unreadable(head[: formats.PROBE_BYTES], self.path, self.compressed)
        if refusal is None and head.startswith(formats.PARQUET_MAGIC):
            refusal = (
                f"a Parquet file, which cannot be read as {self.format}: drop --format"
                if self.format and self.total_bytes is not None
                else PARQUET_ON_A_PIPE
            )
        if refusal is not None:
            raise RefusedInput(src, f"{refusal}; {NOTHING_READ}")
        if broken is not None:  # hand over what was read; the error comes when it is used up
            stream, complete = Broken(broken), False
        try:
            if self.format in ("ndjson", None):
                head = self._seek(stream, head)
        except StreamError as e:
            raise InputError(src, f"{e} before the resume offset") from None
        return stream, head, complete

    def _sniff(self, stream: Readable) -> tuple[bytes, bool, StreamError | None]:
        """Read up to the first line with content (at most SNIFF_LIMIT) and pick the format.

        `[` starts a document; `{` starts NDJSON if its line is a complete value, and a
        document if the value runs past the line (pretty-printed). No newline within the
        limit means one gigantic line: a minified document when it opens `{"users":` (an API
        body of any size, streamed), else NDJSON, so its size is reported like any long line.
        """
        buf = b""
        complete = False
        broken = None
        while len(buf) < SNIFF_LIMIT:
            rest = buf.lstrip(_WS + _BOM)
            if rest and b"\n" in rest:
                break
            try:
                data = stream.read(CHUNK)
            except StreamError as e:
                broken = e
                break
            if not data:
                complete = True
                break
            buf += data
        if self.format is None:
            self.format = formats.text_format(buf, self.path)
        return buf, complete, broken

    def _seek(self, stream: Readable, head: bytes) -> bytes:
        """Skip to `start_offset`, seeking when the file allows it; return what is left of head."""
        skip = self._start_offset
        if skip <= len(head):
            return head[skip:]
        counter = self._counter
        assert counter is not None and self._file is not None
        if not self.compressed and self.total_bytes is not None:
            if skip > self.total_bytes:
                msg = f"cannot resume at byte {skip:,}: the file has only {self.total_bytes:,}"
                raise InputError(self.source, msg)
            self._file.seek(skip)
            counter.bytes_read = skip
            return b""
        skip -= len(head)
        while skip:
            data = stream.read(min(skip, CHUNK))
            if not data:
                msg = f"cannot resume at byte {self._start_offset:,}: the stream is shorter"
                raise InputError(self.source, msg)
            skip -= len(data)
        return b""

    def _document(self, stream: Readable, head: bytes, complete: bool) -> Iterator[RawRecord]:
        """A document's records. ijson stops the whole document at a number no float holds
        (`1e99999`), which would lose every record after it: a file (not stdin) is then read
        again with its numbers as `Decimal` (which holds any), the records already given
        skipped, each record's numbers turned into floats, and the one holding a number no
        float holds set aside alone. Slower, and only for that file."""
        src = self.source
        skip, exact = self._start_line, False
        while True:
            n = 0
            body = head[3:] if head.startswith(_BOM) else head
            try:
                for value in iter_document(stream, body, complete, src, exact):
                    n += 1
                    self.lines = n
                    if n <= skip:
                        continue
                    yield self._document_record(n, value, exact)
                return
            except NumberOverflow:
                if self.path == STDIN:
                    raise
                skip, exact = max(skip, n), True
                self.close()
                stream, head, complete = self._open()

    def _document_record(self, n: int, value: Any, exact: bool) -> RawRecord:
        src = self.source
        # No line length to rule out deep nesting here: serialize to check (and for raw).
        try:
            raw = orjson.dumps(value, default=str)  # str: an exact pass's Decimal, in a raw
        except TypeError:  # orjson.JSONEncodeError: nested deeper than it writes
            return RawRecord(src, n, 0, None, TOO_DEEP, "…")
        if exact:
            try:
                value = _floats(value)
            except OverflowError:
                return RawRecord(src, n, 0, None, OUT_OF_RANGE, raw.decode()[:RAW_PREFIX_CHARS])
        if type(value) is dict:
            return RawRecord(src, n, 0, value)
        text = raw.decode()
        if len(text) > RAW_PREFIX_CHARS:
            text = text[:RAW_PREFIX_CHARS] + "…"
        error = f"not a JSON object (got {type_name(value)})"
        return RawRecord(src, n, 0, None, error, text)


OUT_OF_RANGE = "a number out of range: no float holds it (JSON numbers stop near 1.8e308)"


def _floats(value: Any) -> Any:
    """An exact pass's record with its `Decimal`s as floats, as the fast pass reads them;
    OverflowError for one no float holds."""
    if isinstance(value, Decimal):
        number = float(value)
        if not math.isfinite(number):
            raise OverflowError(str(value))
        return number
    if type(value) is dict:
        return {k: _floats(v) for k, v in value.items()}
    if type(value) is list:
        return [_floats(v) for v in value]
    return value
