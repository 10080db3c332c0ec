"""A `--state` that is not a revbridge state is refused (exit 2, one line naming the file and
what to do) before anything is sent, and left byte for byte as it was; an empty file, and a
journal of this or the previous schema, are used."""

from __future__ import annotations

import hashlib
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import base_env, seqs, write_ndjson
from test_durable import events, run

from revbridge_cli.sandbox import Sandbox
from revbridge_cli.state.journal import SCHEMA_VERSION

pytestmark = pytest.mark.e2e


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def send(sb: Sandbox, tmp: Path, state: Path, data: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "revbridge_cli", "send", str(data), "--state", str(state),
         "--rejected", str(tmp / "rejected.ndjson")],
        env=base_env(sb), capture_output=True, text=True,
    )  # fmt: skip


def refused(sb: Sandbox, tmp: Path, state: Path) -> str:
    data = write_ndjson(tmp / "events.ndjson", events(1, 20))
    result = send(sb, tmp, state, data)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    (line,) = result.stderr.splitlines()
    assert line.startswith(f"revbridge: error: state file {state} ")
    assert sb.requests() == []
    return line


def test_another_programs_sqlite_database_is_refused_and_left_untouched(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    app = tmp_path / "app.db"
    with sqlite3.connect(app) as db:
        db.execute("create table users (id integer primary key, name text)")
        db.execute("insert into users (name) values ('ada')")
    db.close()
    before = digest(app)
    line = refused(sandbox, tmp_path, app)
    assert "another program's SQLite database" in line and "users" in line
    assert "--state" in line
    assert digest(app) == before
    with sqlite3.connect(app) as db:
        names = {n for (n,) in db.execute("select name from sqlite_master")}
    db.close()
    assert names == {"users"}


def test_a_file_that_is_not_sqlite_is_refused_and_left_untouched(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    notes = tmp_path / "notes.txt"
    notes.write_text("my shopping list\n")
    before = digest(notes)
    line = refused(sandbox, tmp_path, notes)
    assert "not an SQLite database" in line
    assert digest(notes) == before


def test_a_directory_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    """The outputs' check finds it first (config/outputs.py); the journal refuses it too."""
    folder = tmp_path / "states"
    folder.mkdir()
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 20))
    result = send(sandbox, tmp_path, folder, data)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert line == f"revbridge: error: --state {folder}: is a directory: name a file"
    assert sandbox.requests() == []
    assert list(folder.iterdir()) == []
    assert not Path(f"{folder}.lock").exists()


def test_a_state_of_a_newer_schema_is_refused_and_left_untouched(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 20))
    state = tmp_path / "run.state"
    result = send(sandbox, tmp_path, state, data)
    assert result.returncode == 0, result.stderr
    newer = int(SCHEMA_VERSION) + 1
    with sqlite3.connect(state) as db:
        db.execute("update meta set value = ? where key = 'schema'", (str(newer),))
    db.close()
    before = digest(state)
    requests = len(sandbox.requests())
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 40))  # grown: there is work
    result = send(sandbox, tmp_path, state, data)
    assert result.returncode == 2, result.stderr
    (line,) = result.stderr.splitlines()
    assert f"newer revbridge (state schema {newer}" in line
    assert len(sandbox.requests()) == requests
    assert digest(state) == before


@pytest.mark.parametrize("kind", ["empty file", "empty SQLite database"])
def test_an_empty_file_becomes_the_state(sandbox: Sandbox, tmp_path: Path, kind: str) -> None:
    state = tmp_path / "run.state"
    if kind == "empty file":
        state.write_bytes(b"")
    else:
        sqlite3.connect(state).close()
        with sqlite3.connect(state) as db:
            db.execute("pragma user_version = 0")
        db.close()
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 20))
    code, summary, err = run(sandbox, tmp_path, data)
    assert code == 0, err
    assert summary["unaccounted_events"] == 0
    code, summary, err = run(sandbox, tmp_path, data)
    assert code == 0 and summary["requests"] == 0, err
    assert seqs(sandbox) == list(range(1, 21))
