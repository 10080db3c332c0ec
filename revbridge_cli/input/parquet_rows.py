"""Parquet files, a record batch at a time, as `RawRecord`s: typed columns, flat memory.

pyarrow streams the row groups (`ParquetFile.iter_batches`), so memory holds one batch of
rows, not the file (mixpanel-import reads a Parquet file whole). Columns keep their types; a
null is absent (the field is left out); a timestamp column becomes ISO 8601 UTC text (naive
timestamps are taken as UTC, as warehouses write them), a date `YYYY-MM-DD`, a decimal a
number, a map an object, and bytes text, since JSON has no other way to carry them.

A value JSON cannot carry (a timestamp or date past year 9999, NaN or Infinity in a float
column, a duration finer than microseconds) sets its row aside with the column and the reason,
and the other rows of the batch go on: a column converts whole (the fast path), and only a
column whose conversion fails is converted again a value at a time, so one bad value costs
its batch a slower column, never its rows. A NaN inside a list or struct becomes null, as
orjson writes it.

A record's `line` is its 1-based row number in the file and its `end_offset` the same number
(rows done through it): `--state` resumes a Parquet file by rows, finding the row group from
the file's metadata and the row inside it. pyarrow is imported only when a Parquet file is
read (its import costs about 31 MB of memory and a quarter of a second; docs/performance.md).
"""

from __future__ import annotations

import base64
import decimal
import math
from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import orjson

from revbridge_cli.errors import InputError
from revbridge_cli.input.formats import PARQUET_MAGIC
from revbridge_cli.input.raw import RAW_PREFIX_CHARS, RawRecord
from revbridge_cli.shape.timestamps import epoch_to_iso
from revbridge_cli.text import one_line

BATCH_ROWS = 1024
READ_BUFFER = 64 * 1024
_UNITS = {"s": "s", "ms": "ms", "us": "us", "ns": "ns"}
_DAY_ONE = date(1970, 1, 1)
_MIDNIGHT = datetime(1970, 1, 1)
_TO_MICROS = {"s": (1_000_000, 1), "ms": (1000, 1), "us": (1, 1), "ns": (1, 1000)}


def _plain(value: Any) -> Any:
    """orjson's fallback for what a nested Parquet value may hold and JSON has no type for."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, bytes):
        try:
            return value.decode("utf-8")
        except UnicodeDecodeError:
            return base64.b64encode(value).decode("ascii")
    if isinstance(value, timedelta):
        return str(value)
    if type(value).__name__ == "MonthDayNano":  # pyarrow's interval, a named tuple
        return str(value)
    raise TypeError


def _key(key: Any) -> str:
    """A map's key as a JSON object's key, which is text."""
    if isinstance(key, str):
        return key
    plain = _plain(key) if isinstance(key, bytes) else key
    return plain if isinstance(plain, str) else str(plain)


class Unfit:
    """A value its column holds that JSON cannot carry, and why: its row is set aside."""

    __slots__ = ("reason", "shown")

    def __init__(self, reason: str, shown: Any) -> None:
        self.reason = reason
        self.shown = shown  # what the rejected row's `raw` shows in its place (JSON-able)


def _one_line(text: str) -> str:
    """A library's message on one printable line: pyarrow's may hold newlines, and the bytes
    of a damaged footer it quotes."""
    return one_line(text)


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
            raise InputError(src, f"not a readable Parquet file ({_one_line(str(e))})") from None
        meta = pf.metadata
        names = pf.schema_arrow.names
        twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
        if twice is not None:  # a record has one value per name: one would be lost unseen
            raise InputError(src, f"the file names column {twice!r} twice")
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
            raise InputError(
                src, f"unreadable Parquet data after row {n:,} ({_one_line(str(e))})", n or None
            ) from None

    def _rows(self, batch: Any, before: int) -> Iterator[RawRecord]:
        names = batch.schema.names
        columns = []
        unfit = False
        for i in range(batch.num_columns):
            array = batch.column(i)
            try:
                values = _column(array)
            except (ArithmeticError, ValueError, TypeError, LookupError):
                values, unfit = _by_value(array, names[i]), True
            else:
                # A sum in C is finite when every value is (a finite overflow only costs the
                # slow path, which finds nothing to set aside).
                if _floating(array.type) and not math.isfinite(sum(filter(None, values))):
                    values, unfit = _by_value(array, names[i]), True
            columns.append(values)
        src = self.source
        n = before
        if unfit:
            yield from self._rows_with_unfit(names, columns, n)
            return
        for row in zip(*columns, strict=True):
            n += 1
            record = {k: v for k, v in zip(names, row, strict=True) if v is not None}
            yield RawRecord(src, n, n, record)
        if not columns:  # a file with no column at all: its rows are empty records
            for _ in range(batch.num_rows):
                n += 1
                yield RawRecord(src, n, n, {})

    def _rows_with_unfit(
        self, names: list[str], columns: list[list[Any]], n: int
    ) -> Iterator[RawRecord]:
        """A batch with a value JSON cannot carry: that row set aside, the others as usual."""
        src = self.source
        for values in zip(*columns, strict=True):
            n += 1
            record = {k: v for k, v in zip(names, values, strict=True) if v is not None}
            reasons = [v.reason for v in record.values() if type(v) is Unfit]
            if not reasons:
                yield RawRecord(src, n, n, record)
                continue
            shown = {k: v.shown if type(v) is Unfit else v for k, v in record.items()}
            raw = orjson.dumps(shown, default=str).decode()
            if len(raw) > RAW_PREFIX_CHARS:
                raw = raw[:RAW_PREFIX_CHARS] + "…"
            yield RawRecord(src, n, n, None, "; ".join(reasons), raw)


def _floating(kind: Any) -> bool:
    import pyarrow as pa

    return pa.types.is_floating(kind)  # type: ignore[no-any-return]


def _by_value(array: Any, name: str) -> list[Any]:
    """The slow path of a column whose conversion failed (or that holds NaN): a value at a
    time, each that cannot be converted an `Unfit` naming the column and why."""
    out: list[Any] = []
    for i in range(len(array)):
        one = array.slice(i, 1)
        try:
            value = _column(one)[0]
        except (ArithmeticError, ValueError, TypeError, LookupError) as e:
            out.append(Unfit(f"column {name!r} ({one.type}): {_why(e, one.type)}", _stored(one)))
            continue
        if isinstance(value, float) and not math.isfinite(value):
            out.append(Unfit(f"column {name!r}: {value} is not a JSON number", str(value)))
            continue
        out.append(value)
    return out


def _why(e: BaseException, kind: Any) -> str:
    import pyarrow as pa

    text = _one_line(str(e))
    if isinstance(e, OverflowError) or "out of range" in text or "magnitude" in text:
        if pa.types.is_duration(kind) or pa.types.is_time(kind):
            return "out of range: longer than 999,999,999 days"
        return "out of range: before year 1 or after year 9999 in UTC"
    return text or type(e).__name__


def _stored(one: Any) -> Any:
    """What a value that cannot be converted was stored as, for the rejected row: the number
    a temporal value is kept as, else its text if pyarrow can give one."""
    import pyarrow as pa

    t = pa.types
    kind = one.type
    try:
        if t.is_date32(kind) or t.is_time32(kind):
            return one.view(pa.int32()).to_pylist()[0]
        if t.is_temporal(kind):
            return one.view(pa.int64()).to_pylist()[0]
        return str(one.to_pylist()[0])
    except (ArithmeticError, ValueError, TypeError, pa.ArrowException):
        return None


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
    if t.is_duration(kind) or t.is_time(kind):  # from the integers: pyarrow refuses odd ns
        mul, div = _TO_MICROS[kind.unit]
        ticks = array.view(pa.int64() if kind.bit_width == 64 else pa.int32()).to_pylist()
        span = [None if v is None else timedelta(microseconds=v * mul // div) for v in ticks]
        if t.is_duration(kind):
            return [None if v is None else str(v) for v in span]
        return [None if v is None else (_MIDNIGHT + v).time().isoformat() for v in span]
    values = array.to_pylist()
    if t.is_date64(kind) or t.is_interval(kind):
        return [None if v is None else str(v) for v in values]
    if t.is_decimal(kind):
        return [None if v is None else float(v) for v in values]
    if t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind):
        return [None if v is None else _plain(v) for v in values]
    if t.is_map(kind):
        return [None if v is None else _map(v) for v in values]
    if _nested_needs_fixing(kind):
        dumps, loads, keys = orjson.dumps, orjson.loads, orjson.OPT_NON_STR_KEYS
        return [None if v is None else loads(dumps(v, default=_plain, option=keys)) for v in values]
    return values  # type: ignore[no-any-return]


def _map(pairs: list[tuple[Any, Any]]) -> dict[str, Any]:
    out = {_key(k): v for k, v in pairs}
    if any(not isinstance(v, str | int | float | bool | type(None)) for v in out.values()):
        text = orjson.dumps(out, default=_plain, option=orjson.OPT_NON_STR_KEYS)
        return orjson.loads(text)  # type: ignore[no-any-return]
    return out


def _nested_needs_fixing(kind: Any) -> bool:
    """A list or struct holding what orjson cannot write as it is (decimals, bytes, durations,
    intervals; a map inside one stays a list of key/value pairs), or a time or date, which is
    converted here so that one past year 9999 sets its row aside now, not in the packer."""
    import pyarrow as pa

    t = pa.types
    if t.is_decimal(kind) or t.is_binary(kind) or t.is_large_binary(kind) or t.is_map(kind):
        return True
    if t.is_temporal(kind) or t.is_interval(kind) or t.is_fixed_size_binary(kind):
        return True
    if pa.types.is_struct(kind):
        return any(_nested_needs_fixing(kind.field(i).type) for i in range(kind.num_fields))
    if pa.types.is_list(kind) or pa.types.is_large_list(kind) or pa.types.is_fixed_size_list(kind):
        return _nested_needs_fixing(kind.value_type)
    return False
