"""Parquet values JSON cannot carry as they are, pure: what `Reader` yields for each (issue 24;
docs/bad-input.md). The CLI's view of the same is in test_hostile_readers.py."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from revbridge_cli.errors import InputError
from revbridge_cli.input.reader import Reader


def rows(tmp_path: Path, columns: dict[str, Any]) -> list[tuple[Any, str | None]]:
    n = len(next(iter(columns.values())))
    table = pa.table({"user_id": [f"u{i}" for i in range(n)], **columns})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=2)
    return [(r.value, r.error) for r in Reader(str(tmp_path / "t.parquet"))]


def test_nan_and_infinity_set_their_row_aside_and_the_others_go_on(tmp_path: Path) -> None:
    out = rows(tmp_path, {"x": [1.5, float("nan"), None, -float("inf")]})
    assert out == [
        ({"user_id": "u0", "x": 1.5}, None),
        (None, "column 'x': nan is not a JSON number"),
        ({"user_id": "u2"}, None),
        (None, "column 'x': -inf is not a JSON number"),
    ]


def test_map_keys_become_text_and_odd_nanoseconds_are_read(tmp_path: Path) -> None:
    tags = pa.array([[(1, "a")], None], pa.map_(pa.int64(), pa.string()))
    span = pa.array([5, 1_500], pa.int64()).view(pa.duration("ns"))
    out = rows(tmp_path, {"tags": tags, "span": span})
    assert out == [
        ({"user_id": "u0", "tags": {"1": "a"}, "span": "0:00:00"}, None),
        ({"user_id": "u1", "span": "0:00:00.000001"}, None),
    ]


def test_a_date_past_9999_in_a_list_sets_its_row_aside(tmp_path: Path) -> None:
    days = pa.ListArray.from_arrays(
        pa.array([0, 1, 2], pa.int32()), pa.array([0, 2**31 - 1], pa.int32()).view(pa.date32())
    )
    out = rows(tmp_path, {"days": days})
    assert out[0] == ({"user_id": "u0", "days": ["1970-01-01"]}, None)
    assert out[1][1] == (
        "column 'days' (list<element: date32[day]>): out of range: before year 1 or after year "
        "9999 in UTC"
    )


def test_a_column_named_twice_refuses_the_file(tmp_path: Path) -> None:
    table = pa.Table.from_arrays([pa.array(["u"]), pa.array(["x"])], names=["user_id"] * 2)
    pq.write_table(table, tmp_path / "t.parquet")
    with pytest.raises(InputError, match="the file names column 'user_id' twice"):
        list(Reader(str(tmp_path / "t.parquet")))
