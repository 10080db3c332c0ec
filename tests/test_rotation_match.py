"""Which file is which after a rotation, as plain functions over real files and a real journal
(no server, no child process): the head fingerprint, and `find_rotations`' verdicts."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

from revbridge_cli.input.paths import content_fingerprint, file_identity
from revbridge_cli.state.journal import Journal
from revbridge_cli.state.rotation import HEAD_WINDOW, find_rotations, head_print


def rows(first: int, last: int) -> bytes:
    return b"".join(
        b'{"user_id":"u%d","event_name":"x","n":%d}\n' % (n, n) for n in range(first, last + 1)
    )


def known(journal: Journal, path: Path, done_line: int) -> None:
    """As a run leaves a file it read up to `done_line` (its fingerprints at the watermark)."""
    data = path.read_bytes()
    offset = len(b"".join(data.splitlines(keepends=True)[:done_line]))
    identity = {**file_identity(str(path)), "fp": head_print(str(path))}
    journal.start_file(str(path), identity, 0, 0)
    fingerprint = content_fingerprint(str(path), offset)
    assert fingerprint is not None
    journal.commit([], {str(path): (done_line, offset)}, {}, fingerprints={str(path): fingerprint})


def test_the_head_fingerprint_is_of_the_decompressed_content(tmp_path: Path) -> None:
    plain = tmp_path / "a.ndjson"
    plain.write_bytes(rows(1, 100))
    packed = tmp_path / "a.ndjson.gz"
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    assert head_print(str(plain)) == head_print(str(packed))
    assert head_print(str(plain))["len"] == HEAD_WINDOW  # type: ignore[index]
    short = tmp_path / "b.ndjson"
    short.write_bytes(rows(1, 2))
    assert head_print(str(short))["len"] == len(rows(1, 2))  # type: ignore[index]
    assert head_print(str(tmp_path / "missing")) is None


def test_rotated_new_at_the_old_name_copy_and_unrelated(tmp_path: Path) -> None:
    live = tmp_path / "events.ndjson"
    live.write_bytes(rows(1, 100))
    other = tmp_path / "other.ndjson"
    other.write_bytes(rows(500, 600))
    journal = Journal.open(str(tmp_path / "run.state"))
    try:
        known(journal, live, 80)
        known(journal, other, 101)
        os.rename(live, tmp_path / "events-1.ndjson")
        rotated = tmp_path / "events-1.ndjson.gz"
        rotated.write_bytes(gzip.compress((tmp_path / "events-1.ndjson").read_bytes()))
        (tmp_path / "events-1.ndjson").unlink()
        live.write_bytes(rows(1000, 1100))  # new at the old name
        copy = tmp_path / "other-copy.ndjson"
        copy.write_bytes(other.read_bytes())
        fresh = tmp_path / "fresh.ndjson"
        fresh.write_bytes(rows(2000, 2100))
        paths = [str(p) for p in (rotated, live, other, copy, fresh)]
        found = find_rotations(journal, paths, {})
    finally:
        journal.close()
    assert found.moved == {str(rotated): str(live)}
    assert list(found.uncertain) == [str(copy)]
    assert found.uncertain[str(copy)].copy
    assert found.uncertain[str(copy)].was == str(other)
    assert set(found.uncertain[str(copy)].in_doubt) == set(range(1, 102))


def test_a_rotated_file_whose_rows_differ_after_the_head_is_another_file(tmp_path: Path) -> None:
    live = tmp_path / "events.ndjson"
    live.write_bytes(rows(1, 100))
    journal = Journal.open(str(tmp_path / "run.state"))
    try:
        known(journal, live, 90)
        data = live.read_bytes()
        live.unlink()
        changed = tmp_path / "events-1.ndjson"
        changed.write_bytes(data[:2000] + data[2000:].replace(b'"x"', b'"y"'))
        assert head_print(str(changed)) == head_print_of(data)
        found = find_rotations(journal, [str(changed)], {})
    finally:
        journal.close()
    assert found.moved == {} and found.uncertain == {}


def head_print_of(data: bytes) -> dict[str, object]:
    import hashlib

    head = data[:HEAD_WINDOW]
    return {"len": len(head), "sha": hashlib.sha256(head).hexdigest()}
