"""`revbridge state show`: a journal read beside a live run, after it, and from an old schema."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import base_env, cli, event, wait_for_requests, write_ndjson

from revbridge_cli.cli.state_command import inspect, render
from revbridge_cli.sandbox import Sandbox

FAST = ("--retry-initial-delay", "0.01", "--retry-max-delay", "0.05")


def start_send(sb: Sandbox, tmp: Path, data: Path, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "revbridge_cli", "send", str(data), "--json", *FAST, *extra]
    args += ["--state", str(tmp / "run.state"), "--rejected", str(tmp / "rejected.ndjson")]
    return subprocess.Popen(
        args, env=base_env(sb), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def show(tmp: Path) -> dict[str, Any]:
    done = cli("state", "show", "--json", str(tmp / "run.state"))
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = orjson.loads(done.stdout)
    return report


@pytest.mark.e2e
def test_state_show_beside_a_live_run_then_after_it_and_after_the_rerun(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", [event(f"u{n}", n) for n in range(1, 101)])
    sandbox.set_faults(hang_requests=(2,), hang_seconds=600)  # batch 2 stays out
    extra = ("--concurrency", "1", "--max-users", "5", "--grace", "0.5")
    live = start_send(sandbox, tmp_path, data, *extra)
    wait_for_requests(sandbox, 2, live)

    report = show(tmp_path)
    assert report["schema_version"] == 1
    assert report["held_by_pid"] == live.pid
    (file,) = report["files"]
    assert file["path"] == str(data) and file["identity"]["size"] == data.stat().st_size
    assert file["lines_done"] == 5  # batch 1 settled; batch 2 is out
    assert file["bytes_done"] == len(b"".join(data.read_bytes().splitlines(True)[:5]))
    assert not file["done"]
    assert report["batches_in_flight"] == [
        {"batch": 2, "records": 5, "users": 5, "events": 5, "files": {str(data): 5}}
    ]
    assert report["batches_in_doubt"] == []
    assert report["runs"][0]["status"] == "running" and report["runs"][0]["pid"] == live.pid
    text = cli("state", "show", str(tmp_path / "run.state"))
    assert f"in use by a running revbridge (pid {live.pid})" in text.stdout
    assert "batch 2: 5 users, 5 events, 5 records from events.ndjson (5)" in text.stdout
    assert live.poll() is None  # looking did not disturb it

    live.send_signal(signal.SIGTERM)
    out, err = live.communicate(timeout=60)
    first = orjson.loads(out)
    assert live.returncode == 143, err
    assert first["events_read"] == first["events_accepted"] + first["events_pending"]

    report = show(tmp_path)
    assert report["held_by_pid"] is None
    assert report["batches_in_flight"] == []
    assert [b["batch"] for b in report["batches_in_doubt"]] == [2]  # the next run's duplicates
    run = report["runs"][0]
    assert (run["status"], run["exit_code"]) == ("ended", 143)
    assert run["counts"]["events_accepted"] == first["events_accepted"]
    assert run["counts"]["events_pending"] == first["events_pending"]

    sandbox.set_faults(hang_requests=())
    rerun = start_send(sandbox, tmp_path, data)
    out, err = rerun.communicate(timeout=60)
    assert rerun.returncode == 0, err
    report = show(tmp_path)
    (file,) = report["files"]
    assert (file["lines_done"], file["bytes_done"], file["done"]) == (
        100,
        data.stat().st_size,
        True,
    )
    assert file["settled_beyond_watermark"] == file["records_in_doubt"] == 0
    assert report["batches_in_doubt"] == [] and report["records_in_doubt"] == 0
    assert [(r["exit_code"], r["status"]) for r in report["runs"]] == [(0, "ended"), (143, "ended")]
    assert report["runs"][0]["counts"]["records_read"] == 100 - first["events_accepted"]


@pytest.mark.e2e
def test_state_show_refuses_what_is_not_a_state(tmp_path: Path) -> None:
    missing = cli("state", "show", str(tmp_path / "nope.state"))
    assert missing.returncode == 2 and "no such state file" in missing.stderr
    junk = tmp_path / "junk.state"
    junk.write_bytes(b"not sqlite at all" * 100)
    done = cli("state", "show", "--json", str(junk))
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert orjson.loads(done.stdout)["exit_code"] == 2
    assert not (tmp_path / "nope.state").exists()  # looking creates nothing


def test_a_journal_from_before_runs_were_kept_is_shown(tmp_path: Path) -> None:
    """Schema 2 as it was: no runs table, in-flight batches without their counts."""
    path = tmp_path / "old.state"
    db = sqlite3.connect(path)
    db.executescript(
        """
        create table meta (key text primary key, value text not null);
        create table files (path text primary key, identity text not null,
            done_line integer not null, done_offset integer not null, end_offset integer,
            updated_at text not null default 'then');
        create table settled (path text not null, lines blob not null);
        create table inflight (batch integer primary key, lines blob not null);
        create table doubt (path text not null, line integer not null,
            primary key (path, line)) without rowid;
        insert into meta values ('schema', '2');
        insert into files (path, identity, done_line, done_offset) values
            ('/data/a.ndjson', '{"size": 10, "inode": 1, "device": 2}', 3, 90);
        insert into inflight values (4, '[["/data/a.ndjson", 5]]');
        insert into doubt values ('/data/a.ndjson', 7);
        """
    )
    db.commit()
    db.close()
    report = inspect(str(path))
    assert report["runs"] == []
    assert report["batches_in_doubt"] == [
        {"batch": 4, "records": 1, "users": None, "events": None, "files": {"/data/a.ndjson": 1}}
    ]
    assert report["files"][0]["records_in_doubt"] == report["records_in_doubt"] == 1
    assert "batch 4: ? users, ? events, 1 records" in render(report)
    assert "none recorded" in render(report)
