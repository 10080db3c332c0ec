"""The near-miss warning: identifier-like keys the tool does not use are never silent."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import cli_json, write_ndjson

from revbridge_cli.sandbox import Sandbox
from revbridge_cli.shape.near_miss import Tally


def test_a_segment_export_sent_as_it_is_warns_once_with_a_count(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    records = [
        {"userId": f"u{i}", "email": f"u{i}@example.com", "event_name": "x", "seq": i}
        for i in range(5)
    ]
    records.append({"user_id": "u9", "event_name": "x", "seq": 9})  # nothing to warn about
    records.append({"userId": "", "email": "e@example.com", "event_name": "x"})  # no value
    write_ndjson(tmp_path / "seg.ndjson", records)
    result, summary = cli_json("send", "seg.ndjson", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr  # accepted: that is why it must be loud
    (notice,) = summary["notices"]
    assert notice.startswith("5 records carry identifier-like keys that are not identifiers")
    assert "userId (5)" in notice
    assert "--preset segment or --rename userId=user_id" in notice
    assert result.stderr.count("warning: 5 records carry identifier-like keys") == 1
    stored = [e for e in sandbox.events() if e["properties"].get("userId")]
    assert len(stored) == 5 and all(set(e["identifiers"]) == {"email"} for e in stored)


@pytest.mark.e2e
def test_csv_columns_and_validate_warn_too(tmp_path: Path) -> None:
    (tmp_path / "w.csv").write_text("user-id,distinct_id,email,event_name\na,b,c@x.io,e\n")
    result, summary = cli_json("validate", "w.csv", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (notice,) = summary["notices"]
    assert "distinct_id (1)" in notice and "user-id (1)" in notice
    assert "--preset mixpanel or --preset posthog or --rename distinct_id=user_id" in notice
    assert "--rename user-id=user_id" in notice


def test_no_warning_with_a_mapping(sandbox: Sandbox, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "m.ndjson", [{"userId": "u1", "device_id": "d", "event_name": "x"}])
    args = ("send", "m.ndjson", "--rename", "userId=user_id")
    result, summary = cli_json(*args, sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["notices"] == []


def test_tally_counts_records_and_keys() -> None:
    tally = Tally()
    tally.note({"uid": 1, "device_id": "d"})
    tally.note({"uid": None})
    assert (tally.records, dict(tally.keys)) == (1, {"uid": 1, "device_id": 1})
    assert Tally().warning() is None


def test_the_python_api_warns_too(sandbox: Sandbox) -> None:
    from revbridge_cli import Connection, send_records

    connection = Connection(sandbox.url, api_key=sandbox.api_key, customer_id=sandbox.customer_id)
    records = [{"userId": "u1", "email": "a@example.com", "event_name": "x"}]
    result = send_records(records, connection=connection)
    assert result.ok
    (notice,) = result.summary.notices
    assert notice.startswith("1 record carries identifier-like keys") and "userId (1)" in notice
