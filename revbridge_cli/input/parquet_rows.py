"""Parquet files, a record batch at a time, as `RawRecord`s: typed columns, flat memory.

pyarrow streams the row groups (`ParquetFile.iter_batches`), so memory holds one batch of
rows, not the file (mixpanel-import reads a Parquet file whole). Columns keep their types; a
null is absent (the field is left out); a timestamp column becomes ISO 8601 UTC text (naive
timestamps are taken as UTC, as warehouses write them), a date `YYYY-MM-DD`, a decimal a
number, a map an object, and bytes text, since JSON has no other way to carry them.

A record's `line` is its 1-based row number in the file and its `end_offset` the same number
(rows done through it): `--state` resumes a Parquet file by rows, finding the row group from
the file's metadata and the row inside it. pyarrow is imported only when a Parquet file is
read (its import costs about 31 MB of memory and a quarter of a second; docs/performance.md).
"""

from __future__ import annotations

import base64
import decimal
from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import orjson

from revbridge_cli.errors import InputError
from revbridge_cli.input.formats import PARQUET_MAGIC
from revbridge_cli.input.raw import RawRecord
from revbridge_cli.shape.timestamps import epoch_to_iso

BATCH_ROWS = 1024
READ_BUFFER = 64 * 1024
_UNITS = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}
_DAY_ONE = date(1970, 1, 1)


def _plain(value: Any) -> Any:
    """orjson's fallback for what a nested Parquet value may hold and JSON has no type for."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    raise TypeError


def is_parquet(path: str) -> bool:
    """A Parquet file is read by path (from its end): its magic is looked at before the file
    is opened as a stream. False when it cannot be read: the stream's open says why."""
    try:
        with open(path, "rb") as f:
            return f.read(4) == PARQUET_MAGIC
    except OSError:
        return False


class ParquetRows:
    """The rows of one Parquet file from row `start_row` on (0: from the first)."""

    def __init__(self, path: str, source: str, start_row: int = 0) -> None:
        self.path = path
        self.source = source
        self.rows_done = start_row
        self.total_rows = 0
        self.fraction_read = 0.0  # of the file's rows: byte progress, as near as Parquet allows
        self._start = start_row

    def __iter__(self) -> Iterator[RawRecord]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        src = self.source
        # Measured on the benchmark's 1,000,000 rows (34 MB, 65,536-row groups): peak RSS
        # 188 MB with pyarrow's defaults, 93 MB with these, at 1.3 s for the whole file. The
        # system allocator returns what a batch used (mimalloc keeps it); one thread and a
        # small read buffer keep a row group's column chunks from being read whole.
        pa.set_memory_pool(pa.system_memory_pool())
        try:
            pf = pq.ParquetFile(self.path, pre_buffer=False, buffer_size=READ_BUFFER)
        except (pa.ArrowException, OSError) as e:
            raise InputError(src, f"not a readable Parquet file ({e})") from None
        meta = pf.metadata
        self.total_rows = total = meta.num_rows
        if self._start > total:
            msg = f"cannot resume at row {self._start:,}: the file has only {total:,} rows"
            raise InputError(src, msg)
        first_group, skip, before = 0, self._start, 0
        while first_group < meta.num_row_groups:
            rows = meta.row_group(first_group).num_rows
            if skip < rows:
                break
            skip -= rows
            before += rows
            first_group += 1
        groups = list(range(first_group, meta.num_row_groups))
        if not groups:
            return
        n = before
        try:
            batches = pf.iter_batches(batch_size=BATCH_ROWS, row_groups=groups, use_threads=False)
            for batch in batches:
                if skip:
                    taken = min(skip, batch.num_rows)
                    batch = batch.slice(taken)
                    skip -= taken
                    n += taken
                yield from self._rows(batch, n)
                n += batch.num_rows
                self.rows_done = n
                self.fraction_read = n / total if total else 1.0
        except (pa.ArrowException, OSError) as e:
            raise InputError(src, f"unreadable Parquet data after row {n:,} ({e})", n) from None

    def _rows(self, batch: Any, before: int) -> Iterator[RawRecord]:
        names = batch.schema.names
        columns = [_column(batch.column(i)) for i in range(batch.num_columns)]
        src = self.source
        n = before
        for values in zip(*columns, strict=True):
            n += 1
            record = {k: v for k, v in zip(names, values, strict=True) if v is not None}
            yield RawRecord(src, n, n, record)
        if not columns:  # a file with no column at all: its rows are empty records
            for _ in range(batch.num_rows):
                n += 1
                yield RawRecord(src, n, n, {})


def _column(array: Any) -> list[Any]:
    """One column as Python values JSON can carry. Timestamps and dates are read as the
    integers they are stored as (a zero-copy view) and written here: exact, and without
    pyarrow.compute, whose import alone costs about 10 MB."""
    import pyarrow as pa

    kind = array.type
    t = pa.types
    if t.is_timestamp(kind):
        unit = _UNITS[kind.unit]
        stamps = array.view(pa.int64()).to_pylist()
        return [None if v is None else epoch_to_iso(v, unit) for v in stamps]
    if t.is_date32(kind):
        days = array.view(pa.int32()).to_pylist()
        return [None if d is None else (_DAY_ONE + timedelta(days=d)).isoformat() for d in days]
    values = array.to_pylist()
    if t.is_date64(kind) or t.is_time(kind) or t.is_duration(kind):
        return [None if v is None else str(v) for v in values]
    if t.is_decimal(kind):
        return [None if v is None else float(v) for v in values]
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind):
        return [None if v is None else _plain(v) for v in values]
    if t.is_map(kind):
        return [None if v is None else dict(v) for v in values]
    if _nested_needs_fixing(kind):
        dumps, loads = orjson.dumps, orjson.loads
        return [None if v is None else loads(dumps(v, default=_plain)) for v in values]
    return values  # type: ignore[no-any-return]


def _nested_needs_fixing(kind: Any) -> bool:
    """A list or struct holding decimals or bytes, which orjson cannot write as they are (a map
    inside one stays a list of key/value pairs)."""
    import pyarrow as pa

    if pa.types.is_decimal(kind) or pa.types.is_binary(kind) or pa.types.is_large_binary(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_nested_needs_fixing(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _nested_needs_fixing(kind.value_type)
    return False
