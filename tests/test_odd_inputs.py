"""Inputs and state files that are not what they seem, through the real CLI and sandbox.

A damaged journal, a FIFO or `<(...)` given with `--state`, a minified API body bigger than
any line may be: each is a clear answer (an error naming the file, or the records streamed),
never a traceback, a hang or a killed writer.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import base_env, cli, cli_json, event, seqs, write_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs a sandbox or the real command


def events(n: int) -> list[dict[str, Any]]:
    return [event(f"u{i}", i) for i in range(n)]


def send_state(sb: Sandbox, tmp: Path, *inputs: Path | str) -> subprocess.CompletedProcess[str]:
    return cli(
        "send", *map(str, inputs), "--state", str(tmp / "run.state"),
        "--rejected", str(tmp / "rejected.ndjson"), sb=sb,
    )  # fmt: skip


# ---- a damaged journal ------------------------------------------------------------------------


def damage_garbage(state: Path) -> None:
    state.write_bytes(os.urandom(8192))


def damage_truncated(state: Path) -> None:
    size = state.stat().st_size
    with open(state, "r+b") as f:
        f.truncate(size // 2)


def damage_identity(state: Path) -> None:
    with sqlite3.connect(state) as db:
        db.execute("update files set identity = '[1, 2'")


def damage_inflight_blob(state: Path) -> None:
    with sqlite3.connect(state) as db:
        db.execute("insert into inflight (batch, lines, sends) values (7, x'00ff10', 1)")


def damage_settled_blob(state: Path) -> None:
    with sqlite3.connect(state) as db:
        db.execute("insert into settled values ('/x', x'0102030405')")


@pytest.mark.parametrize(
    "damage",
    [damage_garbage, damage_truncated, damage_identity, damage_inflight_blob, damage_settled_blob],
)
def test_a_damaged_journal_is_exit_2_naming_the_file(
    sandbox: Sandbox, tmp_path: Path, damage: Any
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(3000))
    first = send_state(sandbox, tmp_path, data)
    assert first.returncode == 0, first.stderr
    state = tmp_path / "run.state"
    for suffix in ("-wal", "-shm"):
        assert not Path(f"{state}{suffix}").exists() or suffix == "-shm"
    damage(state)
    before = len(sandbox.requests())
    write_ndjson(tmp_path / "events.ndjson", events(3100))  # grown: there would be work
    again = send_state(sandbox, tmp_path, data)
    assert again.returncode == 2, again.stderr
    assert "Traceback" not in again.stderr
    (line,) = again.stderr.splitlines()
    assert line.startswith(f"revbridge: error: state file {state} is damaged")
    assert len(sandbox.requests()) == before


# ---- inputs that are streams, with --state -----------------------------------------------------


def test_a_fifo_with_state_is_refused_without_reading_it(sandbox: Sandbox, tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    source = write_ndjson(tmp_path / "source.ndjson", events(2000))
    payload = source.read_bytes()
    script = f"open({str(fifo)!r}, 'wb').write(open({str(source)!r}, 'rb').read())"
    writer = subprocess.Popen([sys.executable, "-c", script])

    result = send_state(sandbox, tmp_path, fifo)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"--state needs files: {fifo} is a pipe" in result.stderr
    assert sandbox.requests() == []
    assert writer.poll() is None  # still waiting for a reader: nobody opened the FIFO

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()))
    reader.start()
    reader.join(30)
    assert writer.wait(30) == 0  # not killed by a closed pipe
    assert got == [payload]  # nothing was taken from it


def test_a_process_substitution_with_state_is_refused(sandbox: Sandbox, tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("no bash for <(...)")
    data = write_ndjson(tmp_path / "events.ndjson", events(10))
    command = (
        f"{sys.executable} -m revbridge_cli send --state {tmp_path}/run.state <(cat {data}); "
        "echo exit=$?"
    )
    done = subprocess.run(
        [bash, "-c", command], env=base_env(sandbox), capture_output=True, text=True, timeout=60
    )
    assert "exit=2" in done.stdout, done.stderr
    assert "Traceback" not in done.stderr
    assert "--state needs files: /dev/fd/" in done.stderr and "is a pipe" in done.stderr
    assert sandbox.requests() == []


# ---- a JSON document bigger than any line ------------------------------------------------------


def big_users_body(n_users: int, pad: int) -> bytes:
    users = [
        {
            "identifiers": {"user_id": f"u{i}"},
            "events": [{"event_name": "purchase", "seq": i, "pad": "x" * pad}],
        }
        for i in range(n_users)
    ]
    return orjson.dumps({"users": users})  # minified: one line


def test_a_minified_users_body_over_10_mb_streams_as_a_document(tmp_path: Path) -> None:
    body = big_users_body(3000, 4000)
    assert len(body) > 10_000_000 and b"\n" not in body
    path = tmp_path / "body.json"
    path.write_bytes(body)
    result, summary = cli_json("validate", str(path), "--rejected", str(tmp_path / "r.ndjson"))
    assert result.returncode == 0, result.stderr
    assert summary["records_read"] == 3000
    assert summary["records_invalid"] == 0
    assert "line too large" not in result.stderr


def test_api_bodies_one_per_line_the_first_over_the_window_are_all_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A first line over the sniff window (1 MiB) but under the line limit used to be NDJSON;
    as a document it must still read every body after it."""
    first = big_users_body(300, 4000)
    assert 1 << 20 < len(first) < 10_000_000
    second = orjson.dumps(
        {"users": [{"identifiers": {"user_id": "z"}, "events": [{"event_name": "e", "seq": 300}]}]}
    )
    path = tmp_path / "bodies.ndjson"
    path.write_bytes(first + b"\n" + second + b"\n")
    result, summary = cli_json(
        "send", str(path), "--rejected", str(tmp_path / "r.ndjson"), sb=sandbox
    )
    assert result.returncode == 0, result.stderr
    assert summary["records_read"] == 301
    assert seqs(sandbox) == list(range(301))
