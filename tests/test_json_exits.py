"""`--json`: one object on stdout for every exit code, with a schema_version and an exit_code.

Through the real command against the real sandbox (or a dead port, a held lock, a real OS
limit). Each run's books are checked where it read anything: events read = accepted + set
aside + pending.
"""

from __future__ import annotations

import fcntl
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import (
    STOPPING,
    base_env,
    cli,
    event,
    limited_file_size,
    read_ndjson,
    seqs,
    stderr_until,
    wait_for_requests,
    write_ndjson,
)
from test_durable import start

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e
FAST = ("--retry-initial-delay", "0.01", "--retry-max-delay", "0.02")


def one_object(stdout: str) -> dict[str, Any]:
    lines = stdout.splitlines()
    assert len(lines) == 1, stdout
    data: dict[str, Any] = orjson.loads(lines[0])
    assert data["schema_version"] == 1
    return data


def json_run(*args: str, **kwargs: Any) -> tuple[int, dict[str, Any], str]:
    done = cli(*args, "--json", **kwargs)
    return done.returncode, one_object(done.stdout), done.stderr


def assert_books(summary: dict[str, Any], sb: Sandbox | None, rejected: Path) -> None:
    """Records read = accepted + set aside (rows) + pending; every record here is one event."""
    rows = len(read_ndjson(rejected)) if rejected.exists() else 0
    stored = len(seqs(sb)) if sb is not None else 0
    assert summary["unaccounted_events"] == 0
    assert stored + rows + summary["events_pending"] == summary["records_read"], summary


def test_exit_0_counts_per_file_and_says_what_was_sent(sandbox: Sandbox, tmp_path: Path) -> None:
    a = write_ndjson(tmp_path / "a.ndjson", [event("u1", 1), event("u2", 2)])
    b = write_ndjson(tmp_path / "b.ndjson", [event("u3", 3)])
    code, summary, err = json_run("send", str(a), str(b), sb=sandbox)
    assert code == summary["exit_code"] == 0, err
    assert (summary["sent"], summary["dry_run"], summary["requests"], summary["batches"]) == (
        True, False, 1, 1,
    )  # fmt: skip
    assert [(f["path"], f["records_read"], f["events_read"]) for f in summary["files"]] == [
        (str(a), 2, 2),
        (str(b), 1, 1),
    ]
    assert (
        summary["bytes_sent"] == sandbox.requests()[0]["bytes"] and not summary["bytes_would_send"]
    )

    code, dry, err = json_run("send", "--dry-run", str(a), str(b), sb=sandbox)
    assert code == 0, err
    assert (dry["sent"], dry["dry_run"], dry["requests"], dry["batches"]) == (False, True, 0, 1)
    assert (dry["bytes_sent"], dry["bytes_would_send"]) == (0, summary["bytes_sent"])
    assert len(sandbox.requests()) == 1  # the dry run sent nothing


def test_exit_1_and_3_carry_the_whole_summary(sandbox: Sandbox, tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1), event("u2", 2, revenue="x")])
    rejected = tmp_path / "rejected.ndjson"
    code, summary, err = json_run("send", str(data), "--rejected", str(rejected), sb=sandbox)
    assert code == summary["exit_code"] == 1, err
    assert summary["files"][0]["records_invalid"] == 1
    assert_books(summary, sandbox, rejected)

    wrong = tmp_path / "wrong.ndjson"
    env = base_env(sandbox, REVBRIDGE_API_KEY="rbk_wrong_000000")
    code, summary, err = json_run("send", str(data), "--rejected", str(wrong), env=env)
    assert code == summary["exit_code"] == 3 and summary["fatal"]
    assert summary["events_accepted"] == 0
    assert_books(summary, None, wrong)


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("send", "missing.ndjson"), "no such file"),
        (("send", "in.ndjson", "--concurrency", "0"), "--concurrency"),
        (("send", "in.ndjson", "--no-such-flag"), "--no-such-flag"),
        (("validate", "in.ndjson", "--format", "xml"), "--format"),
        (("send", "--dry-run", "missing.ndjson"), "no such file"),
    ],
)
def test_exit_2_prints_the_error_as_the_object(
    sandbox: Sandbox, tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    code, error, err = json_run(*args, sb=sandbox, cwd=tmp_path)
    assert code == error["exit_code"] == 2
    assert needle in error["error"] and needle in err
    assert error["sent"] is False and error["dry_run"] is ("--dry-run" in args)
    assert "Traceback" not in err and sandbox.requests() == []


def test_exit_2_without_credentials(tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    code, error, _ = json_run("send", str(data), env=base_env())
    assert code == error["exit_code"] == 2 and "no API key" in error["error"]


def test_exit_69_a_dead_port(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = write_ndjson(tmp_path / "in.ndjson", [event(f"u{i}", i) for i in range(50)])
    rejected = tmp_path / "rejected.ndjson"
    env = base_env(
        REVBRIDGE_BASE_URL=f"http://127.0.0.1:{port}", REVBRIDGE_API_KEY="rbk_x",
        REVBRIDGE_CUSTOMER_ID="c",
    )  # fmt: skip
    args = ("send", str(data), "--rejected", str(rejected), "--max-retries", "1", *FAST)
    code, summary, _ = json_run(*args, env=env)
    assert code == summary["exit_code"] == 69
    assert summary["requests"] == 2  # the first request and its one retry, each counted
    assert_books(summary, None, rejected)


def test_exit_74_the_rejected_file_cannot_grow(sandbox: Sandbox, tmp_path: Path) -> None:
    data = write_ndjson(
        tmp_path / "in.ndjson", [event(f"u{i}", i, revenue="1") for i in range(5000)]
    )
    done = subprocess.run(
        [sys.executable, "-m", "revbridge_cli", "send", str(data), "--json",
         "--rejected", str(tmp_path / "rejected.ndjson")],
        env=base_env(sandbox), capture_output=True, timeout=120,
        preexec_fn=limited_file_size(64 * 1024),
    )  # fmt: skip
    assert done.returncode == 74
    summary = one_object(done.stdout.decode())
    assert summary["exit_code"] == 74 and summary["events_unrecorded"] == 0


def test_exit_75_a_held_state(sandbox: Sandbox, tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    state = tmp_path / "run.state"
    fd = os.open(str(state) + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        os.write(fd, b"4242")
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # as a live run holds it
        code, error, _ = json_run("send", str(data), "--state", str(state), sb=sandbox)
    finally:
        os.close(fd)
    assert code == error["exit_code"] == 75
    assert "in use by a running revbridge (pid 4242)" in error["error"]
    assert sandbox.requests() == []


def test_exit_143_and_a_second_signals_130_each_print_one_object(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", [event(f"u{i}", i) for i in range(40)])
    sandbox.set_faults(hang_requests=(2,), hang_seconds=600)
    extra = ("--concurrency", "1", "--max-users", "10", "--grace", "0.2")
    proc = start(sandbox, tmp_path, data, extra=extra)
    wait_for_requests(sandbox, 2, proc)
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 143, err
    summary = one_object(out)
    assert summary["exit_code"] == 143 and summary["interrupted"]
    assert summary["events_read"] == summary["events_accepted"] + summary["events_pending"]

    # Only the second signal can end this one: its first request hangs, the grace is long.
    sandbox.set_faults(hang_requests=(len(sandbox.requests()) + 1,), hang_seconds=600)
    extra = ("--concurrency", "1", "--max-users", "10", "--grace", "600")
    proc = start(sandbox, tmp_path, data, extra=extra, state=False)
    wait_for_requests(sandbox, 3, proc)
    proc.send_signal(signal.SIGINT)
    stderr_until(proc, STOPPING)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    quit_now = one_object(out)
    assert quit_now["exit_code"] == 130 and "quit at once" in quit_now["error"]


@pytest.mark.parametrize("command", ["send", "validate", "check"])
def test_help_never_prints_json(command: str) -> None:
    done = cli(command, "--help", "--json")
    assert done.returncode == 0 and not done.stdout.lstrip().startswith("{")
