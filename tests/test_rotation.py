"""Log rotation between cron runs (`--state` over a directory a writer appends to), as logrotate
does it: rename, rename and gzip, copytruncate; a new file starts at the old name. Every event
is stored exactly once and the run exits 0; where the tool cannot tell (a file shorter than
the fingerprint window), it says so and counts possible duplicates."""

from __future__ import annotations

import gzip
import os
import shutil
from pathlib import Path

import orjson
import pytest
from conftest import event, seqs
from test_durable import duplicates, run, start, wait_for_requests

from revbridge_cli.sandbox import Sandbox
from revbridge_cli.state.rotation import HEAD_WINDOW

pytestmark = pytest.mark.e2e


def lines(first: int, last: int) -> bytes:
    return b"".join(orjson.dumps(event(f"u{n}", n)) + b"\n" for n in range(first, last + 1))


def append(path: Path, data: bytes) -> None:
    with open(path, "ab") as f:
        f.write(data)


def compress(path: Path) -> Path:
    """As logrotate's compress: `path.gz` written, `path` removed."""
    target = Path(f"{path}.gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    path.unlink()
    return target


def first_run(sb: Sandbox, tmp: Path) -> tuple[Path, Path]:
    logs = tmp / "logs"
    logs.mkdir()
    live = logs / "events.ndjson"
    live.write_bytes(lines(1, 100))
    assert live.stat().st_size > HEAD_WINDOW
    code, summary, err = run(sb, tmp, logs)
    assert code == 0, err
    assert summary["records_read"] == 100
    append(live, lines(101, 120))  # written after the run: not sent yet
    return logs, live


def second_run(sb: Sandbox, tmp: Path, logs: Path, rotated: Path) -> None:
    append(logs / "events.ndjson", lines(201, 230))  # the new file at the old name
    code, summary, err = run(sb, tmp, logs)
    assert code == 0, err
    assert "truncated" not in err and "replaced" not in err
    assert f"{rotated} is {logs / 'events.ndjson'} rotated" in " ".join(err.split())
    assert summary["records_read"] == 20 + 30  # the rotated file's tail, the new file whole
    assert summary["records_skipped"] == 100
    assert summary["possible_duplicate_events"] == 0
    assert summary["unaccounted_events"] == 0
    assert sorted(seqs(sb)) == [*range(1, 121), *range(201, 231)]
    code, summary, err = run(sb, tmp, logs)  # and the next tick has nothing to do
    assert code == 0, err
    assert summary["requests"] == 0
    assert summary["records_skipped"] == 150


def test_rename(sandbox: Sandbox, tmp_path: Path) -> None:
    logs, live = first_run(sandbox, tmp_path)
    rotated = logs / "events-20250101.ndjson"
    os.rename(live, rotated)
    second_run(sandbox, tmp_path, logs, rotated)


def test_rename_and_gzip(sandbox: Sandbox, tmp_path: Path) -> None:
    logs, live = first_run(sandbox, tmp_path)
    renamed = logs / "events-20250101.ndjson"
    os.rename(live, renamed)
    rotated = compress(renamed)
    second_run(sandbox, tmp_path, logs, rotated)


def test_copytruncate(sandbox: Sandbox, tmp_path: Path) -> None:
    logs, live = first_run(sandbox, tmp_path)
    rotated = logs / "events-20250101.ndjson"
    shutil.copyfile(live, rotated)
    inode = live.stat().st_ino
    with open(live, "r+b") as f:
        f.truncate(0)
    second_run(sandbox, tmp_path, logs, rotated)
    assert live.stat().st_ino == inode


def test_copytruncate_then_gzip(sandbox: Sandbox, tmp_path: Path) -> None:
    logs, live = first_run(sandbox, tmp_path)
    copy = logs / "events-20250101.ndjson"
    shutil.copyfile(live, copy)
    with open(live, "r+b") as f:
        f.truncate(0)
    second_run(sandbox, tmp_path, logs, compress(copy))


def test_a_rotated_file_already_done_sends_nothing_of_it(sandbox: Sandbox, tmp_path: Path) -> None:
    """Compressed, it is read from the watermark (its decompressed end is not known without
    decompressing it) and holds nothing new."""
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "events.ndjson"
    live.write_bytes(lines(1, 100))
    code, _, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    os.rename(live, logs / "events-1.ndjson")
    rotated = compress(logs / "events-1.ndjson")
    live.write_bytes(lines(201, 210))
    code, summary, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    assert summary["records_read"] == 10
    assert summary["records_skipped"] == 100
    assert f"{rotated} is {live} rotated: read from line 101" in " ".join(err.split())
    assert sorted(seqs(sandbox)) == [*range(1, 101), *range(201, 211)]


def test_two_rotations_across_three_cron_runs_send_every_event_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    logs, live = first_run(sandbox, tmp_path)
    for day, first in ((1, 201), (2, 301)):
        renamed = logs / f"events-2025010{day}.ndjson"
        os.rename(live, renamed)
        compress(renamed)
        live.write_bytes(lines(first, first + 49))
        code, summary, err = run(sandbox, tmp_path, logs)
        assert code == 0, err
        assert summary["possible_duplicate_events"] == 0
        append(live, lines(first + 50, first + 59))  # after the run, before the next rotation
    code, summary, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    assert summary["records_skipped"] + summary["records_read"] == 120 + 60 + 60
    assert sorted(seqs(sandbox)) == [*range(1, 121), *range(201, 261), *range(301, 361)]


def test_a_small_file_rotated_and_compressed_cannot_be_told_and_says_so(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "events.ndjson"
    live.write_bytes(lines(1, 5))
    assert live.stat().st_size < HEAD_WINDOW
    code, _, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    append(live, lines(6, 7))
    os.rename(live, logs / "events-1.ndjson")
    rotated = compress(logs / "events-1.ndjson")
    live.write_bytes(lines(201, 203))
    code, summary, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    said = " ".join(err.split())
    assert f"{rotated} may be {live} rotated" in said and "possible duplicates" in said
    assert summary["records_read"] == 7 + 3
    stored = sum(duplicates(sandbox).values())
    assert stored == 5  # the first run's five, sent again
    assert summary["possible_duplicate_events"] == stored  # and every one of them counted
    assert set(seqs(sandbox)) == {*range(1, 8), *range(201, 204)}


def test_a_small_file_renamed_is_known_by_its_inode(sandbox: Sandbox, tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "events.ndjson"
    live.write_bytes(lines(1, 5))
    code, _, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    append(live, lines(6, 7))
    os.rename(live, logs / "events-1.ndjson")
    live.write_bytes(lines(201, 203))
    code, summary, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    assert summary["possible_duplicate_events"] == 0
    assert sorted(seqs(sandbox)) == [*range(1, 8), *range(201, 204)]


def test_a_new_file_at_the_old_name_with_the_old_content_nowhere_is_still_replaced(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Where the old content went cannot be seen (rotated out of the inputs, or rewritten in
    place), the new content may be the old rows rewritten: refused, as before."""
    logs, live = first_run(sandbox, tmp_path)
    os.rename(live, tmp_path / "elsewhere.ndjson")
    live.write_bytes(lines(201, 230))
    code, summary, err = run(sandbox, tmp_path, logs)
    assert code == 1
    assert "replaced" in err and "--restart-changed" in err
    assert summary["requests"] == 0


def test_a_copy_of_a_file_still_in_place_is_new_and_its_duplicates_are_counted(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "events.ndjson"
    live.write_bytes(lines(1, 100))
    code, _, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    copy = logs / "events-copy.ndjson"
    shutil.copyfile(live, copy)
    code, summary, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    said = " ".join(err.split())
    assert f"{copy} holds what {live} held up to where it was done (a copy?)" in said
    assert summary["records_read"] == 100
    stored = sum(duplicates(sandbox).values())
    assert stored == 100
    assert summary["possible_duplicate_events"] == stored


def test_what_cannot_be_told_stays_counted_when_the_run_that_found_it_is_killed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The doubt is in the journal from the moment the run finds it, not only in memory."""
    logs = tmp_path / "logs"
    logs.mkdir()
    live = logs / "events.ndjson"
    live.write_bytes(lines(1, 5))
    code, _, err = run(sandbox, tmp_path, logs)
    assert code == 0, err
    os.rename(live, logs / "events-1.ndjson")
    compress(logs / "events-1.ndjson")
    live.write_bytes(lines(201, 203))
    sandbox.set_faults(latency=0.2)
    one = ("--max-users", "1", "--concurrency", "1")
    proc = start(sandbox, tmp_path, logs, extra=one)
    wait_for_requests(sandbox, 1, proc)
    proc.kill()
    proc.wait()
    sandbox.set_faults(latency=0.0)
    code, summary, err = run(sandbox, tmp_path, logs, extra=one)
    assert code == 0, err
    stored = sum(duplicates(sandbox).values())
    assert stored >= 5
    assert summary["possible_duplicate_events"] >= stored
    assert set(seqs(sandbox)) == {*range(1, 6), *range(201, 204)}


def test_a_state_of_the_previous_version_still_recognises_a_rename(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Schema 3 kept no head fingerprint and no count: a rename is still known by its inode,
    and the upgraded journal's figures add up."""
    import sqlite3

    logs, live = first_run(sandbox, tmp_path)
    with sqlite3.connect(tmp_path / "run.state") as db:
        db.execute("update files set identity = json_remove(identity, '$.fp')")
        db.execute("update files set done_records = null")
        db.execute("update meta set value = '3' where key = 'schema'")
    db.close()
    rotated = logs / "events-20250101.ndjson"
    os.rename(live, rotated)
    second_run(sandbox, tmp_path, logs, rotated)
