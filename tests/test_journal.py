"""The state file as plain functions: the lock, what a commit leaves, doubt, compaction."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import orjson
import pytest

from revbridge_cli.state.journal import Journal, LockedError

IDENTITY = {"device": 1, "inode": 2, "size": 300, "mtime_ns": 3, "head_len": 300, "head_sha": "x"}


@pytest.fixture
def path(tmp_path: Path) -> str:
    return str(tmp_path / "run.state")


def test_a_second_open_is_refused_while_the_first_holds_the_lock(path: str) -> None:
    first = Journal.open(path)
    try:
        with pytest.raises(LockedError, match="in use by a running revbridge"):
            Journal.open(path)
    finally:
        first.close()
    Journal.open(path).close()  # released on close


def test_commit_and_file_state_round_trip(path: str) -> None:
    j = Journal.open(path)
    assert j.file_state("/data/a") is None
    j.start_file("/data/a", IDENTITY, 0, 0)
    j.begin_batch(1, [("/data/a", 1), ("/data/a", 2)])
    j.commit([1], {"/data/a": (2, 20)}, {"/data/a": [5, 7]})
    j.close()

    j = Journal.open(path)
    state = j.file_state("/data/a")
    assert state is not None
    assert (state.identity, state.done_line, state.done_offset) == (IDENTITY, 2, 20)
    assert state.settled == {5, 7}
    assert state.end_offset is None
    assert j.in_doubt() == set()  # the batch got its verdict
    j.end_file("/data/a", 300)
    assert j.file_state("/data/a").end_offset == 300  # type: ignore[union-attr]
    j.close()


def test_batches_left_in_flight_stay_in_doubt_until_settled(path: str) -> None:
    j = Journal.open(path)
    j.start_file("/data/a", IDENTITY, 0, 0)
    j.begin_batch(1, [("/data/a", 1), ("/data/a", 2)])
    j.begin_batch(2, [("/data/a", 3)])
    j.commit([2], {}, {"/data/a": [3]})
    j.close()  # as if killed: batch 1 never got its verdict

    j = Journal.open(path)
    assert j.in_doubt() == {("/data/a", 1), ("/data/a", 2)}
    j.adopt_in_doubt()
    j.begin_batch(1, [("/data/a", 9)])  # a new run reuses batch number 1
    assert j.in_doubt() == {("/data/a", 1), ("/data/a", 2), ("/data/a", 9)}
    j.commit([1], {}, {"/data/a": [9]})
    j.close()

    j = Journal.open(path)  # a run that did not read /data/a forgets nothing
    j.adopt_in_doubt()
    assert j.in_doubt() == {("/data/a", 1), ("/data/a", 2)}
    j.commit([], {"/data/a": (1, 10)}, {"/data/a": [2]})
    assert j.in_doubt() == set()
    j.close()


def test_restarting_a_file_forgets_its_settled_and_doubtful_records(path: str) -> None:
    j = Journal.open(path)
    j.start_file("/data/a", IDENTITY, 0, 0)
    j.begin_batch(1, [("/data/a", 4)])
    j.commit([], {"/data/a": (2, 20)}, {"/data/a": [6]})
    j.adopt_in_doubt()
    j.start_file("/data/a", {**IDENTITY, "inode": 99}, 0, 0)
    state = j.file_state("/data/a")
    assert state is not None and state.settled == set() and state.done_line == 0
    assert j.in_doubt() == set()
    j.close()


def test_compact_drops_settled_rows_the_watermark_passed(path: str) -> None:
    j = Journal.open(path)
    j.start_file("/data/a", IDENTITY, 0, 0)
    j.commit([], {}, {"/data/a": [3, 4]})
    j.commit([], {}, {"/data/a": [8]})
    j.commit([], {"/data/a": (5, 50)}, {})
    j.compact()
    rows = j.db.execute("select count(*) from settled").fetchone()[0]
    assert rows == 1
    assert j.file_state("/data/a").settled == {8}  # type: ignore[union-attr]
    j.close()


def test_a_schema_1_state_is_upgraded(path: str) -> None:
    db = sqlite3.connect(path)
    db.executescript(
        "create table files (path text primary key, identity text not null,"
        " done_line integer not null, done_offset integer not null, updated_at text);"
    )
    db.execute(
        "insert into files values ('/data/a', ?, 3, 30, null)", (orjson.dumps(IDENTITY).decode(),)
    )
    db.commit()
    db.close()
    j = Journal.open(path)
    state = j.file_state("/data/a")
    assert state is not None and (state.done_line, state.end_offset) == (3, None)
    j.close()


@pytest.mark.e2e  # mounts a tmpfs (a child process)
def test_a_full_disk_is_an_output_error_naming_the_file_and_the_journal_stays_whole(
    tmp_path: Path,
) -> None:
    """ENOSPC under the journal (a real 128 KiB tmpfs): the failing commit raises OutputError
    with one line naming the file; every commit before it is intact when the file is read
    again elsewhere."""
    import os
    import subprocess

    from revbridge_cli.errors import OutputError

    full = tmp_path / "full"
    full.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=128k", "tmpfs", str(full)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr!r}")
    try:
        path = str(full / "run.state")
        j = Journal.open(path)
        j.start_file("/data/a", IDENTITY, 0, 0)
        committed = 0
        with pytest.raises(OutputError) as caught:
            for n in range(1, 100_000):
                j.begin_batch(n, [("/data/a", n)])
                j.commit([n], {"/data/a": (n, n * 10)}, {"/data/a": list(range(n, n + 50))})
                committed = n
        assert str(caught.value) == (
            f"cannot write the state file {path}: database or disk is full"
        )
        j.close()
        copy = tmp_path / "copy.state"
        for suffix in ("", "-wal"):
            if os.path.exists(path + suffix):
                Path(f"{copy}{suffix}").write_bytes(Path(path + suffix).read_bytes())
    finally:
        subprocess.run(["umount", str(full)], check=False)
    assert committed > 0
    j = Journal.open(str(copy))
    state = j.file_state("/data/a")
    assert state is not None and state.done_line == committed  # the failed commit left nothing
    j.close()


def test_the_journal_refuses_a_directory_without_creating_a_lock(tmp_path: Path) -> None:
    from revbridge_cli.errors import StateError

    with pytest.raises(StateError, match="is a directory, not a file"):
        Journal.open(str(tmp_path))
    assert not Path(f"{tmp_path}.lock").exists()
