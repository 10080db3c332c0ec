"""`--quiet` drops the progress and the summary's ordinary lines, never a warning or an error.

Cron mails what a job prints (README's cron recipe runs `--quiet`), so each kind of warning
a run can end with is checked through the real command: an input that stopped early (a CSV
with a duplicate header, a truncated Parquet file), events without a timestamp, identifier-
like keys left unused, `--limit` reached, rows set aside, a fatal stop. With `--json` beside
`--quiet` the books are checked too: records read = accepted + set aside + pending.
"""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from books import assert_books_balance
from conftest import cli, cli_json, event, write_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e


def _quiet(sb: Sandbox, cwd: Path, *args: str) -> tuple[int, list[str], dict[str, object]]:
    result, summary = cli_json("send", "--quiet", "--rejected", "rej.ndjson", *args, sb=sb, cwd=cwd)
    assert summary["unaccounted_events"] == 0
    assert_books_balance(summary, cwd / "rej.ndjson")
    assert "Traceback" not in result.stderr
    return result.returncode, result.stderr.splitlines(), summary


def test_a_quiet_run_that_went_well_prints_nothing(sandbox: Sandbox, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in.ndjson", [event("u1", 1), event("u2", 2)])
    code, lines, summary = _quiet(sandbox, tmp_path, "in.ndjson")
    assert (code, lines, summary["events_accepted"]) == (0, [], 2)


def test_a_csv_that_stopped_early_is_still_said(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "dup.csv").write_text("user_id,event_name,user_id\nu1,e,u2\n")
    write_ndjson(tmp_path / "ok.ndjson", [event("u1", 1)])
    code, lines, summary = _quiet(sandbox, tmp_path, "ok.ndjson", "dup.csv")
    assert code == 1 and summary["events_accepted"] == 1
    assert lines == [
        "warning: input stopped early: dup.csv:1: the header names column 'user_id' twice"
    ]


def test_a_truncated_parquet_file_is_still_said(sandbox: Sandbox, tmp_path: Path) -> None:
    table = pa.table({"user_id": [f"u{i}" for i in range(2000)], "event_name": ["e"] * 2000})
    pq.write_table(table, tmp_path / "full.parquet", row_group_size=500)
    data = (tmp_path / "full.parquet").read_bytes()
    (tmp_path / "cut.parquet").write_bytes(data[: len(data) // 2])
    code, lines, summary = _quiet(sandbox, tmp_path, "cut.parquet")
    assert code == 1 and summary["records_read"] == 0
    (line,) = lines
    assert line.startswith("warning: input stopped early: cut.parquet: not a readable Parquet")


def test_every_warning_of_the_summary_is_kept_and_nothing_else(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    records = [
        {"user_id": "u1", "event_name": "no time", "seq": 1},
        {"userId": "x", "email": "x@example.com", "event_name": "e", "seq": 2},
        {"event_name": "nobody"},
        event("u4", 4),
        event("u5", 5),
    ]
    write_ndjson(tmp_path / "in.ndjson", records)
    code, lines, summary = _quiet(sandbox, tmp_path, "--limit", "4", "in.ndjson")
    assert code == 1 and summary["events_accepted"] == 3 and summary["rejected_rows"] == 1
    starts = [
        "revbridge: warning: in the first 4 records: 1 record carries identifier-like keys",
        "revbridge: warning: in the first 4 records: 2 of 3 events have no timestamp",
        "warning: --limit 4 reached after in.ndjson:4; nothing after it was read",
        "warning: 1 record carries identifier-like keys that are not identifiers",
        "warning: 2 events have no timestamp",
        "warning: 1 row set aside: see rej.ndjson",
    ]
    assert len(lines) == len(starts)
    for line, start in zip(lines, starts, strict=True):
        assert line.startswith(start), line
    assert all(line.startswith(("warning: ", "revbridge: warning: ")) for line in lines)
    full = cli(
        "send", "--rejected", "rej2.ndjson", "--limit", "4", "in.ndjson", sb=sandbox, cwd=tmp_path
    )
    warned = [line for line in full.stderr.splitlines() if line.startswith("warning: ")]
    assert warned == lines[2:-1]  # the same words as the full summary's


def test_a_fatal_stop_is_said(sandbox: Sandbox, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    env_key = "rbk_wrong_0123456789"
    result, summary = cli_json(
        "send", "--quiet", "--api-key", env_key, "--rejected", "rej.ndjson", "in.ndjson",
        sb=sandbox, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 3 and summary["unaccounted_events"] == 0
    assert any(
        line.startswith("warning: ") and "401" in line for line in result.stderr.splitlines()
    )
    assert env_key not in result.stderr
