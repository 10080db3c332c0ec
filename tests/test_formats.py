"""CSV, TSV and Parquet inputs, and the files we refuse, through the real CLI and sandbox."""

from __future__ import annotations

import gzip
from pathlib import Path
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import cli, cli_json, read_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs the real command

CSV = (
    "user_id,event_name,timestamp,revenue,zip,note\n"
    "u1,purchase,2026-01-15T14:30:00Z,49.99,02134,\n"
    'u2,signup,2026-01-15T14:31:00Z,,90210,"said ""hi"", then\nleft"\n'
    "u1,refund,2026-01-15T14:32:00Z,-5,02134,x\n"
)


def send(sb: Sandbox, tmp_path: Path, *args: str, **kw: Any) -> tuple[Any, dict[str, Any], list]:
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json(
        "send", *args, "--rejected", str(rejected), sb=sb, cwd=tmp_path, **kw
    )
    assert "Traceback" not in result.stderr, result.stderr
    return result, summary, read_ndjson(rejected) if rejected.exists() else []


def by_name(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {e["event_name"]: e for e in sb.events()}


def test_send_csv_keeps_text_as_text_and_types_revenue(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "export.csv").write_text(CSV)
    result, summary, rows = send(sandbox, tmp_path, "export.csv")
    assert result.returncode == 0, result.stderr
    assert (summary["records_read"], summary["events_accepted"], rows) == (3, 3, [])
    events = by_name(sandbox)
    assert events["purchase"]["revenue"] == 49.99
    assert events["purchase"]["properties"] == {"zip": "02134"}  # the empty note is absent
    assert events["refund"]["revenue"] == -5
    assert events["signup"]["revenue"] is None  # an empty cell: no revenue at all
    assert events["signup"]["properties"]["note"] == 'said "hi", then\nleft'


def test_send_tsv_and_gzipped_csv(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "a.tsv").write_text("user_id\tevent_name\tplan\nu1\tview\tpro, annual\n")
    (tmp_path / "b.csv.gz").write_bytes(gzip.compress(b"user_id,event_name\nu2,click\n"))
    result, _, _ = send(sandbox, tmp_path, "a.tsv", "b.csv.gz")
    assert result.returncode == 0, result.stderr
    events = by_name(sandbox)
    assert events["view"]["properties"] == {"plan": "pro, annual"}
    assert events["click"]["identifiers"] == {"user_id": "u2"}


def test_csv_from_stdin_is_sniffed_from_its_first_line(sandbox: Sandbox, tmp_path: Path) -> None:
    data = b"user_id,event_name\nu1,a\nu2,b\n"
    result, summary, _ = send(sandbox, tmp_path, "-", input=data)
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == 2


def test_a_row_from_stdin_is_named_as_every_message_names_it(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """`<stdin>`, not the `-` of the command line, in the rejected file as in the summary."""
    data = b"user_id,event_name\nu1,a\n,b\n"
    result, summary, rows = send(sandbox, tmp_path, "-", input=data)
    assert result.returncode == 1, result.stderr
    (row,) = rows
    assert row["source"] == row["origin"] == "<stdin>:3"
    assert summary["examples"][0].startswith("<stdin>:3: at least one identifier is required")
    assert summary["events_accepted"] == 1 and summary["unaccounted_events"] == 0


def test_format_forces_csv_for_a_file_named_otherwise(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "export.txt").write_text("user_id;x\n")  # no comma or tab: sniffed as NDJSON
    (tmp_path / "rows.dat").write_text("user_id,event_name\nu1,a\n")
    result, summary, _ = send(sandbox, tmp_path, "--format", "csv", "rows.dat")
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == 1


def test_a_bad_csv_row_is_set_aside_with_its_file_and_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    (tmp_path / "x.csv").write_text(
        "user_id,event_name,revenue\nu1,a,1\nu2,b\nu3,c,abc\n,d,2\nu4,e,3\n"
    )
    result, summary, rows = send(sandbox, tmp_path, "x.csv")
    assert result.returncode == 1
    assert summary["records_read"] == 5 and summary["events_accepted"] == 2
    assert summary["records_read"] == summary["events_accepted"] + summary["rejected_rows"]
    assert [r["source"] for r in rows] == ["x.csv:3", "x.csv:4", "x.csv:5"]
    assert rows[0]["message"] == "x.csv:3: row has 2 fields, the header has 3"
    assert rows[0]["raw"] == '{"user_id":"u2","event_name":"b"}'  # to fix, and send back
    assert rows[1]["message"] == "events[0]: revenue must be a number"
    # the source row as an object (user null): fixed and sent back, it is read as it was
    assert (rows[1]["user"], rows[1]["row"]) == (None, {"user_id": "u3", "event_name": "c",
                                                      "revenue": "abc"})  # fmt: skip
    assert rows[2]["message"].startswith("at least one identifier is required")


def _parquet(path: Path, rows: list[dict[str, Any]], schema: pa.Schema, group: int = 2) -> Path:
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), path, row_group_size=group)
    return path


EVENTS_SCHEMA = pa.schema(
    [
        ("user_id", pa.string()),
        ("event_name", pa.string()),
        ("timestamp", pa.timestamp("us", tz="UTC")),
        ("revenue", pa.float64()),
        ("qty", pa.int64()),
        ("tags", pa.list_(pa.string())),
    ]
)


def _events(n: int) -> list[dict[str, Any]]:
    import datetime as dt

    start = dt.datetime(2026, 1, 15, 14, 30, tzinfo=dt.UTC)
    return [
        {
            "user_id": f"u{i % 3}",
            "event_name": f"e{i}",
            "timestamp": start + dt.timedelta(seconds=i, microseconds=250),
            "revenue": None if i % 2 else 1.5 * i,
            "qty": i,
            "tags": ["a", "b"] if i == 0 else None,
        }
        for i in range(n)
    ]


def test_send_parquet_typed_with_nulls_absent(sandbox: Sandbox, tmp_path: Path) -> None:
    _parquet(tmp_path / "events.parquet", _events(5), EVENTS_SCHEMA)
    result, summary, rows = send(sandbox, tmp_path, "events.parquet")
    assert result.returncode == 0, result.stderr
    assert (summary["records_read"], summary["events_accepted"], rows) == (5, 5, [])
    events = by_name(sandbox)
    assert events["e0"]["timestamp"] == "2026-01-15T14:30:00.000250Z"
    assert events["e0"]["revenue"] == 0.0 and events["e0"]["properties"] == {
        "qty": 0,
        "tags": ["a", "b"],
    }
    assert events["e1"]["revenue"] is None and events["e1"]["properties"] == {"qty": 1}


def test_parquet_is_found_by_its_magic_whatever_its_name(sandbox: Sandbox, tmp_path: Path) -> None:
    _parquet(tmp_path / "export.dat", _events(3), EVENTS_SCHEMA)
    result, summary, _ = send(sandbox, tmp_path, "export.dat")
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == 3


def test_a_directory_includes_csv_tsv_and_parquet(sandbox: Sandbox, tmp_path: Path) -> None:
    d = tmp_path / "exports"
    d.mkdir()
    (d / "a.csv").write_text("user_id,event_name\nu1,a\n")
    (d / "b.tsv").write_text("user_id\tevent_name\nu2\tb\n")
    _parquet(d / "c.parquet", _events(2), EVENTS_SCHEMA)
    (d / "notes.txt").write_text("not an input\n")
    result, summary, _ = send(sandbox, tmp_path, "exports")
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == 4


NOISE = bytes(range(256)) * 4
BINARIES = [
    (
        "events.avro",
        b"Obj\x01\x04\x14avro.codec\x0cdeflate" + bytes(range(256)) * 4,
        "an Avro file",
    ),
    ("events.orc", b"ORC\x00\x00\x00\x11\x08\x03" + NOISE, "an ORC file"),
    ("events.xlsx", b"PK\x03\x04\x14\x00\x06\x00" + NOISE, "an Excel workbook"),
    ("events.zip", b"PK\x03\x04\x14\x00\x00\x00" + NOISE, "a zip archive"),
    ("events.ndjson", bytes(range(256)) * 16, "binary data, not text"),
    ("events.json.gz", gzip.compress(b"PAR1" + bytes(200)), "a gzip-compressed Parquet file"),
]


@pytest.mark.parametrize(("name", "data", "what"), BINARIES, ids=[b[0] for b in BINARIES])
def test_a_binary_we_cannot_read_is_refused_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path, name: str, data: bytes, what: str
) -> None:
    (tmp_path / "good.ndjson").write_text('{"user_id": "u1", "event_name": "a"}\n')
    (tmp_path / name).write_bytes(data)
    result = cli("send", "good.ndjson", name, sb=sandbox, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith(f"revbridge: error: {name}: cannot read {what}")
    assert "Traceback" not in result.stderr
    assert sandbox.requests() == [] and not list(tmp_path.glob("rejected-*"))


def test_parquet_on_stdin_is_refused_with_the_reason(sandbox: Sandbox, tmp_path: Path) -> None:
    _parquet(tmp_path / "e.parquet", _events(2), EVENTS_SCHEMA)
    result, summary, _ = send(sandbox, tmp_path, "-", input=(tmp_path / "e.parquet").read_bytes())
    assert result.returncode == 2 == summary["exit_code"]
    assert summary["fatal"] == (
        "<stdin>: a Parquet file, which is read from its end: pass its path, not a pipe or "
        "stdin; nothing of it was read"
    )
    assert summary["records_read"] == 0 and sandbox.requests() == []


@pytest.mark.parametrize(("name", "data", "what"), BINARIES, ids=[b[0] for b in BINARIES])
def test_a_binary_on_stdin_stops_the_run_with_exit_2_after_the_files_before_it(
    sandbox: Sandbox, tmp_path: Path, name: str, data: bytes, what: str
) -> None:
    """stdin cannot be looked at before the run (that would consume it): its refusal comes
    when it is read, and stops the run there, the files before it delivered and counted."""
    (tmp_path / "good.ndjson").write_text('{"user_id": "u1", "event_name": "a"}\n')
    result, summary, rows = send(sandbox, tmp_path, "good.ndjson", "-", input=data)
    assert result.returncode == 2 == summary["exit_code"], result.stderr
    what = "a zip archive" if name.endswith(".xlsx") else what  # only a name says Excel
    assert summary["fatal"].startswith(f"<stdin>: cannot read {what}")
    assert summary["fatal"].endswith("; nothing of it was read")
    assert summary["records_read"] == summary["events_accepted"] == 1 and rows == []
    assert [e["event_name"] for e in sandbox.events()] == ["a"]
    assert summary["unaccounted_events"] == 0


def test_a_header_without_rows_is_an_empty_file(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "none.csv").write_text("user_id,event_name\n\n")
    _parquet(tmp_path / "none.parquet", [], EVENTS_SCHEMA)
    for name in ("none.csv", "none.parquet"):
        result = cli("send", name, sb=sandbox, cwd=tmp_path)
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"revbridge: error: {name}: empty file: no records to read\n"


def test_the_fix_loop_for_a_csv_row_without_a_mapping(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("user_id,event_name,revenue\nu1,a,1\nu2,b,1.2.3\n")
    _, _, rows = send(sandbox, tmp_path, "x.csv")
    (row,) = rows
    assert row["source"] == "x.csv:3" and row["row"] == {"user_id": "u2", "event_name": "b",
                                                          "revenue": "1.2.3"}  # fmt: skip
    row["row"]["revenue"] = 1.23
    (tmp_path / "fixed.ndjson").write_bytes(orjson.dumps(row) + b"\n")
    result, summary = cli_json("send", "fixed.ndjson", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == 1
    assert sorted(e["revenue"] for e in sandbox.events()) == [1, 1.23]


def test_a_bom_crlf_lines_and_a_quoted_newline(sandbox: Sandbox, tmp_path: Path) -> None:
    data = b'\xef\xbb\xbfuser_id,event_name,revenue\r\nu1,a,1.5\r\n"u2","b ""q""\r\nline",\r\n'
    (tmp_path / "excel.csv").write_bytes(data)
    result, summary, rows = send(sandbox, tmp_path, "excel.csv")
    assert result.returncode == 0, result.stderr
    assert (summary["events_accepted"], rows) == (2, [])
    names = {e["identifiers"]["user_id"]: e["event_name"] for e in sandbox.events()}
    assert names == {"u1": "a", "u2": 'b "q"\r\nline'}  # the header's BOM is not in a name
