"""Issue 24's hostile input to the readers and the shaper, through the real CLI and sandbox:
a value no reader or shaper can represent sets its record aside with the reason, a bad CSV row
does not end its file, and the good records around them are delivered. Every test checks the
books (`unaccounted_events == 0`, read = accepted + set aside)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import API_KEY, cli_json, read_ndjson, write_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e

HEADER = "user_id,event_name,timestamp\n"


def ok(n: int) -> str:
    return f"u{n},e{n},2026-01-15T14:30:00Z\n"


def send(sb: Sandbox, tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any], list[Any]]:
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json("send", *args, "--rejected", str(rejected), sb=sb, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    assert API_KEY not in result.stdout + result.stderr
    assert summary["unaccounted_events"] == 0, summary
    assert summary["records_read"] == summary["events_accepted"] + summary["rejected_rows"]
    return result, summary, read_ndjson(rejected) if rejected.exists() else []


def names(sb: Sandbox) -> list[str]:
    return sorted(e["event_name"] for e in sb.events())


def test_a_stray_character_after_a_closing_quote_sets_only_its_row_aside(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "x.csv").write_text(HEADER + ok(1) + '"u2"x,e2,t\n' + ok(3))
    result, summary, rows = send(sandbox, tmp_path, "x.csv")
    assert result.returncode == 1, result.stderr
    assert names(sandbox) == ["e1", "e3"]  # the row after it was read and sent
    (row,) = rows
    assert row["source"] == "x.csv:3"
    assert row["message"] == "x.csv:3: invalid CSV (',' expected after '\"')"
    assert row["raw"] == '"u2"x,e2,t'
    assert summary["input_errors"] == []


def test_a_cell_over_the_record_limit_is_set_aside_and_reading_goes_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    big = '"' + "x" * 10_500_000 + '"'  # correctly quoted, over the 10,000,000-byte limit
    (tmp_path / "x.csv").write_text(HEADER + ok(1) + f"u2,{big},t\n" + ok(3))
    result, _summary, rows = send(sandbox, tmp_path, "x.csv")
    assert result.returncode == 1, result.stderr
    assert names(sandbox) == ["e1", "e3"]
    (row,) = rows
    assert row["message"] == (
        "x.csv:3: row too large: 10,500,007 bytes, a record may be at most 10,000,000"
    )
    assert row["raw"].startswith('u2,"xxx') and row["raw"].endswith("…")
    assert len(row["raw"]) == 1001


def test_a_quoted_cell_larger_than_the_csv_modules_default_is_read(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The csv module stops at 131,072 characters a cell; a record may be 10 MB."""
    note = "y" * 200_000
    (tmp_path / "x.csv").write_text("user_id,event_name,note\n" + f'u1,e1,"{note}\nmore"\n')
    result, _summary, rows = send(sandbox, tmp_path, "x.csv")
    assert result.returncode == 0, result.stderr
    assert rows == [] and sandbox.events()[0]["properties"]["note"] == note + "\nmore"


def test_an_unclosed_quote_mid_file_sets_its_line_aside_and_the_lines_after_it_are_read(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "x.csv").write_text(HEADER + ok(1) + 'u2,"e2,t\n' + ok(3) + ok(4))
    result, _summary, rows = send(sandbox, tmp_path, "x.csv")
    assert result.returncode == 1, result.stderr
    assert names(sandbox) == ["e1", "e3", "e4"]
    (row,) = rows
    assert row["message"] == (
        "x.csv:3: unclosed quote: the quoted cell runs to the end of the file; "
        "the 2 lines after it read as rows"
    )
    assert row["raw"] == 'u2,"e2,t'


def test_an_unclosed_quote_in_the_header_refuses_the_file(sandbox: Sandbox, tmp_path: Path) -> None:
    """Today's bug: the continuation line became a user and was sent."""
    (tmp_path / "x.csv").write_text('user_id,"event_name\nu1,x"\n' + "u2,e2\n")
    (tmp_path / "good.ndjson").write_text('{"user_id":"u9","event_name":"e9"}\n')
    result, summary, _rows = send(sandbox, tmp_path, "x.csv", "good.ndjson")
    assert names(sandbox) == ["e9"]  # nothing of x.csv; the next input still goes
    assert summary["input_errors"] == [
        "x.csv:1: the header row has an unclosed quote (or a quoted newline)"
    ]
    assert result.returncode == 1, result.stderr


def _parquet(path: Path, stamps: list[int]) -> Path:
    n = len(stamps)
    table = pa.table(
        {
            "user_id": [f"u{i}" for i in range(n)],
            "event_name": [f"e{i}" for i in range(n)],
            "timestamp": pa.array(stamps, pa.int64()).view(pa.timestamp("us")),
            "day": pa.array([0] * (n - 1) + [2**31 - 1], pa.int32()).view(pa.date32()),
        }
    )
    pq.write_table(table, path)
    return path


def test_a_parquet_timestamp_after_year_9999_sets_its_row_aside_and_the_batch_goes_on(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    stamps = [1_768_487_400_000_000] * 5
    stamps[2] = 2**62  # year 146,140 or so
    _parquet(tmp_path / "t.parquet", stamps)
    result, _summary, rows = send(sandbox, tmp_path, "t.parquet")
    assert result.returncode == 1, result.stderr
    assert names(sandbox) == ["e0", "e1", "e3"]  # the batch's other rows (e4's day is bad)
    assert [r["source"] for r in rows] == ["t.parquet:3", "t.parquet:5"]
    assert rows[0]["message"] == (
        "t.parquet:3: column 'timestamp' (timestamp[us]): out of range: before year 1 or after "
        "year 9999 in UTC"
    )
    assert '"timestamp":4611686018427387904' in rows[0]["raw"]  # as it was stored
    assert rows[1]["message"].startswith("t.parquet:5: column 'day' (date32[day]): out of range")


@pytest.mark.parametrize(
    "stamp", ["0001-01-01 00:00:00+01:00", "9999-12-31 23:59:59-01:00", "1" + "0" * 5000]
)
def test_a_lenient_timestamp_pushed_out_of_the_calendar_is_set_aside(
    sandbox: Sandbox, tmp_path: Path, stamp: str
) -> None:
    records = [
        {"user_id": "u1", "event_name": "a", "timestamp": "2026-01-15 14:30:00+01:00"},
        {"user_id": "u2", "event_name": "b", "timestamp": stamp},
        {"user_id": "u3", "event_name": "c", "timestamp": "0001-01-01 00:00:00"},
    ]
    write_ndjson(tmp_path / "x.ndjson", records)
    result, _summary, rows = send(sandbox, tmp_path, "--timestamps", "lenient", "x.ndjson")
    assert result.returncode == 1, result.stderr
    assert names(sandbox) == ["a", "c"]
    assert [e["timestamp"] for e in sorted(sandbox.events(), key=lambda e: e["event_name"])] == [
        "2026-01-15T13:30:00Z",
        "0001-01-01T00:00:00Z",  # four digits: strftime writes year 1 as "1"
    ]
    (row,) = rows
    assert "is not a time we can read (out of range" in row["message"]
    assert "\n" not in row["message"]
