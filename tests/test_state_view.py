"""state/view.py as plain functions over journals built through state/journal.py: what a
journal says, read without writing a byte, and what is refused rather than misread."""

from __future__ import annotations

import hashlib
import os
import sqlite3
from pathlib import Path

import pytest

from revbridge_cli.cli.state_command import render
from revbridge_cli.errors import StateError
from revbridge_cli.state import runlog
from revbridge_cli.state.journal import SCHEMA_VERSION, Journal
from revbridge_cli.state.view import inspect

IDENTITY = {"device": 1, "inode": 2, "size": 300, "mtime_ns": 3, "head_len": 300, "head_sha": "x"}


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _journal(tmp_path: Path) -> tuple[Journal, str]:
    """Batch 1 settled (lines 1-5, 4 records: one line was blank), line 9 settled beyond the
    watermark, batch 2 out with lines 6-8."""
    path = str(tmp_path / "run.state")
    j = Journal.open(path)
    runlog.begin(j.db)
    j.start_file("/data/a.ndjson", IDENTITY, 0, 0)
    j.begin_batch(1, [("/data/a.ndjson", n) for n in (1, 2, 4, 5)], users=2, events=4)
    j.begin_batch(2, [("/data/a.ndjson", n) for n in (6, 7, 8)], users=3, events=3)
    j.commit(
        [1], {"/data/a.ndjson": (5, 120)}, {"/data/a.ndjson": [9]}, records={"/data/a.ndjson": 4}
    )
    return j, path


def test_a_held_journal_shows_its_holder_files_and_batches_out(tmp_path: Path) -> None:
    j, path = _journal(tmp_path)
    try:
        report = inspect(path)
    finally:
        j.close()
    assert report["held_by_pid"] == os.getpid()
    assert report["journal_schema"] == SCHEMA_VERSION
    (file,) = report["files"]
    assert (file["lines_done"], file["bytes_done"], file["done_records"]) == (5, 120, 4)
    assert file["settled_beyond_watermark"] == 1 and not file["done"]
    assert file["identity"]["head_sha256"] == "x" and file["size_now"] is None
    assert report["batches_in_flight"] == [
        {"batch": 2, "records": 3, "users": 3, "events": 3, "files": {"/data/a.ndjson": 3}}
    ]
    assert report["batches_in_doubt"] == []
    assert report["runs"][0]["status"] == "running"
    assert "done: 5 lines (4 records), 120 bytes" in render(report)


def test_a_journal_whose_run_died_shows_its_batches_in_doubt(tmp_path: Path) -> None:
    j, path = _journal(tmp_path)
    j.close()  # no end noted: as after kill -9
    report = inspect(path)
    assert report["held_by_pid"] is None
    assert report["batches_in_flight"] == []
    assert [b["batch"] for b in report["batches_in_doubt"]] == [2]
    assert report["runs"][0]["status"] == "no end recorded (killed or crashed)"


def test_looking_writes_nothing_and_takes_no_lock(tmp_path: Path) -> None:
    j, path = _journal(tmp_path)
    j.close()
    os.remove(path + ".lock")
    before = _digest(Path(path))
    inspect(path)
    assert _digest(Path(path)) == before
    assert not os.path.exists(path + ".lock")
    Journal.open(path).close()  # and a run can take it at once


def test_a_journal_without_done_records_shows_none(tmp_path: Path) -> None:
    j, path = _journal(tmp_path)
    j.db.execute("update files set done_records = null")
    j.close()
    report = inspect(path)
    assert report["files"][0]["done_records"] is None
    assert "done: 5 lines, 120 bytes" in render(report)


def test_what_is_not_a_journal_is_refused_and_left_as_it_is(tmp_path: Path) -> None:
    with pytest.raises(StateError, match="no such state file"):
        inspect(str(tmp_path / "nope.state"))
    assert not (tmp_path / "nope.state").exists()
    with pytest.raises(StateError, match="not a regular file"):
        inspect(str(tmp_path))
    other = tmp_path / "app.db"
    db = sqlite3.connect(other)
    db.execute("create table users (id integer)")
    db.commit()
    db.close()
    before = _digest(other)
    with pytest.raises(StateError, match="another program's SQLite database"):
        inspect(str(other))
    assert _digest(other) == before
    empty = tmp_path / "empty.state"
    empty.write_bytes(b"")
    with pytest.raises(StateError, match="no journal tables"):
        inspect(str(empty))


def test_a_newer_journal_is_refused_not_misread(tmp_path: Path) -> None:
    j, path = _journal(tmp_path)
    j.db.execute("update meta set value = '99' where key = 'schema'")
    j.close()
    with pytest.raises(StateError, match="newer revbridge"):
        inspect(path)


def test_a_row_that_does_not_decode_is_a_state_error(tmp_path: Path) -> None:
    j, path = _journal(tmp_path)
    j.db.execute('update inflight set lines = \'{"not": "refs"}\'')
    j.close()
    with pytest.raises(StateError, match="cannot read it as a state file"):
        inspect(path)
