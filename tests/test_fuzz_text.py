"""Fuzz: text inputs (NDJSON, JSON arrays, `{"users": [...]}` bodies, CSV, TSV, gzip of each),
valid at first and then mutated, through the real reader and shaper (pure: no socket).

Each asserts what `fuzz_helpers.read_and_shape` checks: nothing raises outside the exception
hierarchy, the books balance, every set-aside has a one-line reason. `HYPOTHESIS_PROFILE=long`
searches much longer (docs/bad-input.md).
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Any

import fuzz_helpers as fz
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from revbridge_cli.shape.parts import ShapeOptions

options = st.builds(
    ShapeOptions,
    require_timestamp=st.booleans(),
    epoch_timestamps=st.booleans(),
    lenient_timestamps=st.booleans(),
    drop_nulls=st.booleans(),
    keep_rows=st.booleans(),
)
records = st.lists(fz.flat_events(), min_size=1, max_size=6)


@pytest.fixture(scope="module")
def where(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _write(where: Path, name: str, data: bytes) -> Path:
    path = where / name
    path.write_bytes(data)
    return path


def _dumps(value: Any) -> bytes:
    try:
        return orjson.dumps(value)
    except TypeError:  # an int past 64 bits: written as JSON would, digits
        return json.dumps(value).encode()


@given(rows=records, shape_options=options, gz=st.booleans(), data=st.data())
def test_fuzz_ndjson(
    where: Path, rows: list[Any], shape_options: ShapeOptions, gz: bool, data: st.DataObject
) -> None:
    text = b"".join(_dumps(r) + b"\n" for r in rows)
    text = data.draw(fz.mutated(text))
    path = _write(where, "f.ndjson.gz" if gz else "f.ndjson", fz.maybe_gzip(text, gz))
    fz.read_and_shape(path, None, shape_options)


@given(rows=records, kind=st.sampled_from(["array", "users", "pretty"]), data=st.data())
def test_fuzz_json_documents(where: Path, rows: list[Any], kind: str, data: st.DataObject) -> None:
    if kind == "users":
        users = [{"identifiers": {"user_id": r["user_id"]}, "events": [r]} for r in rows]
        text = _dumps({"users": users})
    elif kind == "pretty":
        text = json.dumps(rows, indent=2).encode()
    else:
        text = _dumps(rows)
    text = data.draw(fz.mutated(text))
    fmt = data.draw(st.sampled_from([None, "json"]))
    fz.read_and_shape(_write(where, "f.json", text), fmt)


def _table(rows: list[dict[str, Any]], delimiter: str) -> bytes:
    names: list[str] = []
    for r in rows:
        names += [k for k in r if k not in names]
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\n")
    writer.writerow([n.replace("\x00", "") for n in names])
    for r in rows:
        cells = [r.get(n, "") for n in names]
        writer.writerow(
            ["" if c is None else c if isinstance(c, str) else _dumps(c).decode() for c in cells]
        )
    return out.getvalue().replace("\x00", "").encode("utf-8", "surrogatepass")


@given(
    rows=records,
    delimiter=st.sampled_from([",", "\t"]),
    gz=st.booleans(),
    crlf=st.booleans(),
    data=st.data(),
)
@example(
    rows=[{"user_id": "u", "event_name": "e", "timestamp": "2026-01-15T14:30:00Z"}],
    delimiter=",",
    gz=False,
    crlf=False,
    data=None,
)
def test_fuzz_csv_and_tsv(
    where: Path,
    rows: list[dict[str, Any]],
    delimiter: str,
    gz: bool,
    crlf: bool,
    data: st.DataObject | None,
) -> None:
    text = _table(rows, delimiter)
    if crlf:
        text = text.replace(b"\n", b"\r\n")
    if data is not None:
        text = data.draw(fz.mutated(text))
    fmt = "tsv" if delimiter == "\t" else "csv"
    name = f"f.{fmt}.gz" if gz else f"f.{fmt}"
    shape_options = ShapeOptions(lenient_timestamps=True, drop_nulls=True, keep_rows=True)
    path = _write(where, name, fz.maybe_gzip(text, gz))
    books = fz.read_and_shape(path, fmt, shape_options, text=text)
    # A bad row is set aside and reading goes on: only a file refused up front (binary), its
    # header, or a damaged gzip stream (which no reader can read past) stops it.
    stopped = books.stopped
    up_front = stopped is None or "nothing of it was read" in stopped or f".{fmt}:1: " in stopped
    assert up_front or gz, stopped


@given(blob=st.binary(max_size=300), gz=st.booleans(), fmt=st.sampled_from([None, "csv", "ndjson"]))
def test_fuzz_any_bytes(where: Path, blob: bytes, gz: bool, fmt: str | None) -> None:
    """Bytes that were never a valid file, under any name."""
    fz.read_and_shape(_write(where, "f.gz" if gz else "f.txt", fz.maybe_gzip(blob, gz)), fmt)


@given(levels=st.integers(min_value=200, max_value=1100), wrap=st.sampled_from(["line", "doc"]))
def test_fuzz_deep_nesting(where: Path, levels: int, wrap: str) -> None:
    nested = b'{"k":[' * (levels // 2) + b"1" + b"]}" * (levels // 2)
    text = b'{"user_id": "u", "event_name": "e", "x": ' + nested + b"}"
    if wrap == "doc":
        text = b"[" + text + b"]"
    fz.read_and_shape(_write(where, "deep.json", text + b"\n"))
