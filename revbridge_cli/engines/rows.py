"""A DataFrame row as a record: what an engine's column values mean to the API.

A null in a column is an absent field, as in Parquet: a DataFrame has every column on every
row, so a row without revenue carries `revenue: null`, which the API refuses ("revenue must be
a number"); the row means "no revenue". NaN (pandas' missing float), NaT and pandas' NA are
absent the same way, at any depth (a struct's null field, an event of an `events` array).
Values JSON has no word for become the nearest JSON: numpy scalars their Python value, a
Decimal a float, a timestamp ISO 8601 (an aware one in UTC with `Z`, a naive one as written),
a date `YYYY-MM-DD`. Pure, and run once per row on an executor: the flat case is one loop.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

_ABSENT: Any = object()
_PLAIN = (str, int, bool)
_MISSING_TYPES = frozenset(("NAType", "NaTType"))


def to_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as a record, its absent fields left out; the row itself is not changed."""
    out: dict[str, Any] = {}
    for name, value in row.items():
        kind = type(value)
        if kind is str or kind is int or kind is bool:
            out[name] = value
            continue
        value = _value(value)
        if value is not _ABSENT:
            out[name] = value
    return out


def _value(value: Any) -> Any:
    if value is None:
        return _ABSENT
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        return _ABSENT if math.isnan(value) else value
    if type(value).__name__ in _MISSING_TYPES:  # pandas' NA and NaT (a datetime, to Python)
        return _ABSENT
    if isinstance(value, Mapping):
        return to_record(value)
    if isinstance(value, datetime):
        return _iso(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, list | tuple) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        if not isinstance(items, list):  # a numpy scalar's tolist() is its Python value
            return _value(items)
        return [None if (v := _value(item)) is _ABSENT else v for item in items]
    return value  # anything else: the sender sets it aside if JSON cannot carry it


def _iso(moment: datetime) -> str:
    """A pandas Timestamp is a datetime that may carry nanoseconds: rebuilt as a plain one,
    its isoformat is the API's shape (`2026-01-15T14:30:00`, `.123456` when there is one)."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    plain = datetime(
        moment.year, moment.month, moment.day, moment.hour, moment.minute, moment.second,
        moment.microsecond,
    )  # fmt: skip
    return plain.isoformat() + ("Z" if moment.tzinfo is not None else "")
