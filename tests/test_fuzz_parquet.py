"""Fuzz: Parquet files with typed columns at their edges (timestamps and dates past year 9999,
NaN and infinities, durations in odd nanoseconds, maps keyed by numbers, nested times), then
with their bytes mutated, through the real reader and shaper (pure: no socket).

A valid file never stops: every row is shaped or set aside with the column and the reason, and
the batch's other rows go on. A damaged one may stop, with one line naming the file.
"""

from __future__ import annotations

import decimal
from pathlib import Path
from typing import Any

import fuzz_helpers as fz
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from revbridge_cli.shape.parts import ShapeOptions

I64 = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.sampled_from([0, 2**62, -(2**62), 253402300800, 1768487400, -62135596801]),
)
I32 = st.integers(min_value=-(2**31), max_value=2**31 - 1)
F64 = st.one_of(st.floats(), st.sampled_from([float("nan"), float("inf"), -float("inf"), 1e308]))
DECIMALS = st.decimals(allow_nan=False, places=9, max_value=10**20, min_value=-(10**20))
PAIRS = st.lists(st.tuples(I64, st.text(max_size=4)), max_size=2)


def _nullable(values: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), values, values, values)


COLUMNS: dict[str, tuple[pa.DataType, st.SearchStrategy[Any]]] = {
    "ts_us": (pa.timestamp("us"), I64),
    "ts_ms_tz": (pa.timestamp("ms", "UTC"), I64),
    "ts_ns": (pa.timestamp("ns"), I64),
    "day": (pa.date32(), I32),
    "revenue": (pa.float64(), F64),
    "ratio": (pa.float32(), st.floats(width=32)),
    "span": (pa.duration("ns"), I64),
    "clock": (pa.time64("ns"), st.integers(min_value=0, max_value=86_400 * 10**9 - 1)),
    "price": (pa.decimal128(38, 9), DECIMALS),
    "blob": (pa.binary(), st.binary(max_size=8)),
    "tags": (pa.map_(pa.int64(), pa.string()), PAIRS),
    "nested": (
        pa.struct([("at", pa.timestamp("us")), ("n", pa.float64())]),
        st.fixed_dictionaries({"at": _nullable(I64), "n": _nullable(F64)}),
    ),
    "times": (pa.list_(pa.date32()), st.lists(_nullable(I32), max_size=2)),
}  # fmt: skip


@st.composite
def tables(draw: st.DrawFn) -> pa.Table:
    n = draw(st.integers(min_value=1, max_value=12))
    names = draw(st.lists(st.sampled_from(sorted(COLUMNS)), min_size=1, max_size=5, unique=True))
    arrays = {
        "user_id": pa.array([draw(st.sampled_from(["u1", "u2", "", None])) for _ in range(n)]),
        "event_name": pa.array([draw(st.sampled_from(["purchase", "", None])) for _ in range(n)]),
    }
    for name in names:
        kind, values = COLUMNS[name]
        raw = [draw(_nullable(values)) for _ in range(n)]
        arrays[name] = _array(kind, raw)
    if draw(st.booleans()):  # the timestamp the shaper reads, typed as one of the others
        arrays["timestamp"] = arrays[draw(st.sampled_from(["user_id", *names]))]
    return pa.table(arrays)


def _array(kind: pa.DataType, raw: list[Any]) -> pa.Array:
    """An array of `kind` from integers where pyarrow would check the range (temporal types are
    built from their storage, as a writer that does not check them would store them)."""
    if pa.types.is_temporal(kind):
        storage = pa.int32() if kind.bit_width == 32 else pa.int64()
        return pa.array(raw, storage).view(kind)
    if pa.types.is_struct(kind):
        at = pa.array([None if r is None else r["at"] for r in raw], pa.int64())
        n = pa.array([None if r is None else r["n"] for r in raw], pa.float64())
        mask = pa.array([r is None for r in raw])
        return pa.StructArray.from_arrays(
            [at.view(pa.timestamp("us")), n], names=["at", "n"], mask=mask
        )
    if pa.types.is_list(kind):
        flat = [d for r in raw if r is not None for d in r]
        offsets, at = [0], 0
        for r in raw:
            at += len(r) if r is not None else 0
            offsets.append(at)
        values = pa.array(flat, pa.int32()).view(pa.date32())
        mask = pa.array([r is None for r in raw])
        return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values, mask=mask)
    if pa.types.is_decimal(kind):
        return pa.array([None if r is None else decimal.Decimal(r) for r in raw], kind)
    return pa.array(raw, kind)


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz_parquet")


@given(table=tables(), group=st.integers(min_value=1, max_value=8), lenient=st.booleans())
def test_fuzz_parquet_values(where: Path, table: pa.Table, group: int, lenient: bool) -> None:
    path = where / "t.parquet"
    pq.write_table(table, path, row_group_size=group)
    options = ShapeOptions(lenient_timestamps=lenient, drop_nulls=True, keep_rows=True)
    books = fz.read_and_shape(path, None, options)
    assert books.stopped is None, books.stopped  # a valid file is read to its end
    assert books.read == table.num_rows


@given(table=tables(), data=st.data())
def test_fuzz_parquet_bytes(where: Path, table: pa.Table, data: st.DataObject) -> None:
    path = where / "m.parquet"
    pq.write_table(table, path, row_group_size=4)
    path.write_bytes(data.draw(fz.mutated(path.read_bytes())))
    fz.read_and_shape(path, data.draw(st.sampled_from([None, "parquet"])))
