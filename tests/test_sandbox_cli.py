"""`revbridge sandbox` as a user runs it: a real subprocess, a real curl, Ctrl-C, then stats."""

from __future__ import annotations

import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from sandbox_helpers import VENDOR_PARTIAL_REQUEST, VENDOR_REQUEST, auth_headers, post
from typer.testing import CliRunner

from revbridge_cli.sandbox import Sandbox
from revbridge_cli.sandbox.cli import app

REVBRIDGE = [sys.executable, "-m", "revbridge_cli"]


@contextmanager
def running(*args: str) -> Iterator[tuple[subprocess.Popen[str], dict[str, str]]]:
    """Starts the command on a free port and parses the exports it prints."""
    process = subprocess.Popen(
        [*REVBRIDGE, "sandbox", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    exports: dict[str, str] = {}
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if match := re.match(r"\s*export (REVBRIDGE_\w+)=(\S+)", line):
                exports[match[1]] = match[2]
            if "Press Ctrl-C" in line:
                break
        else:
            raise AssertionError(f"sandbox did not start: {process.stderr.read()}")  # type: ignore[union-attr]
        yield process, exports
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def interrupt(process: subprocess.Popen[str]) -> tuple[str, str]:
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    return out, err


@pytest.mark.e2e
def test_runs_answers_curl_and_exits_cleanly_on_ctrl_c(tmp_path: Path) -> None:
    db = tmp_path / "sandbox.db"
    with running("--api-key", "rbk_k", "--customer-id", "cust_c", "--db", str(db)) as (
        process,
        env,
    ):
        assert env == {
            "REVBRIDGE_BASE_URL": env["REVBRIDGE_BASE_URL"],
            "REVBRIDGE_API_KEY": "rbk_k",
            "REVBRIDGE_CUSTOMER_ID": "cust_c",
        }
        url = env["REVBRIDGE_BASE_URL"] + "/ingest/events"
        headers = auth_headers("rbk_k", "cust_c")
        body = orjson.dumps(VENDOR_REQUEST).decode()
        if shutil.which("curl"):
            command = ["curl", "-sS", "-X", "POST", url, "-d", body]
            for name, value in headers.items():
                command += ["-H", f"{name}: {value}"]
            answer = orjson.loads(subprocess.run(command, capture_output=True, check=True).stdout)
        else:
            answer = httpx.post(url, content=body, headers=headers).json()
        assert answer["users_accepted"] == 1
        out, err = interrupt(process)
    assert process.returncode == 0
    assert "Traceback" not in err
    assert "stopped: 1 requests, 1 users and 1 events accepted" in out

    result = CliRunner().invoke(app, ["stats", "--db", str(db)])
    assert result.exit_code == 0, result.output
    assert "events:   1" in result.output
    assert "users:    1 distinct (profiles)" in result.output
    assert "202: 1" in result.output
    assert answer["trace_id"] in result.output


@pytest.mark.e2e
def test_made_up_credentials_work_and_sigterm_is_clean() -> None:
    with running() as (process, env):
        assert env["REVBRIDGE_API_KEY"].startswith("rbk_sandbox_")
        assert env["REVBRIDGE_CUSTOMER_ID"] == "cust_sandbox"
        headers = auth_headers(env["REVBRIDGE_API_KEY"], env["REVBRIDGE_CUSTOMER_ID"])
        with httpx.Client(base_url=env["REVBRIDGE_BASE_URL"]) as client:
            assert post(client, VENDOR_REQUEST, headers=headers).status_code == 202
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=10)
    assert process.returncode == 0
    assert "Traceback" not in err


@pytest.mark.e2e
def test_fault_flags_reach_the_server() -> None:
    with running(
        "--api-key",
        "k",
        "--customer-id",
        "c",
        "--fail-requests",
        "1",
        "--retry-after",
        "3",
        "--verbose",
    ) as (process, env):
        with httpx.Client(base_url=env["REVBRIDGE_BASE_URL"]) as client:
            failed = post(client, VENDOR_REQUEST, headers=auth_headers("k", "c"))
            assert failed.status_code == 503
            assert failed.headers["retry-after"] == "3"
            assert post(client, VENDOR_REQUEST, headers=auth_headers("k", "c")).status_code == 202
        _, err = interrupt(process)
    assert process.returncode == 0
    assert re.search(r"#1 POST /ingest/events 503 .* fault=fail", err)
    assert re.search(r"#2 POST /ingest/events 202 users=1/0 events=1", err)


@pytest.mark.e2e
def test_capacity_flags_reach_the_server() -> None:
    with running(
        "--api-key", "k", "--customer-id", "c", "--capacity", "1", "--capacity-seconds", "60",
        "--latency", "2", "--verbose",
    ) as (process, env):  # fmt: skip
        statuses: list[int] = []

        def one() -> None:
            with httpx.Client(base_url=env["REVBRIDGE_BASE_URL"], timeout=30) as client:
                statuses.append(
                    post(client, VENDOR_REQUEST, headers=auth_headers("k", "c")).status_code
                )

        threads = [threading.Thread(target=one) for _ in range(3)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        _, err = interrupt(process)
    assert 503 in statuses and 202 in statuses
    assert re.search(r"POST /ingest/events 503 .* fault=capacity", err)


@pytest.mark.e2e
def test_non_loopback_host_warns() -> None:
    with running("--host", "0.0.0.0", "--no-store") as (process, _):
        _, err = interrupt(process)
    assert "warning: binding to 0.0.0.0" in err
    assert process.returncode == 0


def test_bad_fail_status_is_a_usage_error() -> None:
    result = CliRunner().invoke(app, ["--fail-status", "404"])
    assert result.exit_code == 2
    result = CliRunner().invoke(app, ["--fail-requests", "x"])
    assert result.exit_code == 2


def refused(*args: str, cwd: Path | None = None) -> str:
    """`revbridge ARGS` for real: exit 2, nothing on stdout, one line on stderr; that line."""
    done = subprocess.run(
        [*REVBRIDGE, *args], capture_output=True, text=True, timeout=60, cwd=cwd, stdin=None
    )
    assert done.returncode == 2, (done.returncode, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("revbridge: error: "), line
    return line.removeprefix("revbridge: error: ")


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--fail-status", "404"], "--fail-status must be one of 429/500/502/503/504, not 404"),
        (["--fail-requests", "3,x"], "--fail-requests: expected request numbers like 3,5"),
        (["--hang-requests", "0"], "--hang-requests: expected request numbers like 3,5"),
        (["--fail-rate", "2"], "--fail-rate must be between 0 and 1, got 2.0"),
        (["--latency", "-1"], "--latency must not be negative"),
        (["--capacity", "0"], "--capacity must be at least 1 request in flight"),
    ],
)
def test_a_bad_fault_value_is_exit_2_in_one_line(args: list[str], message: str) -> None:
    assert refused("sandbox", "--port", "0", *args).startswith(message)


@pytest.mark.e2e
def test_a_port_in_use_is_exit_2_in_one_line() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        line = refused("sandbox", "--port", str(port))
    assert line == f"cannot listen on 127.0.0.1:{port}: Address already in use"


@pytest.mark.e2e
def test_a_db_that_cannot_be_used_is_exit_2_in_one_line(tmp_path: Path) -> None:
    text = tmp_path / "notes.txt"
    text.write_text("not a database\n")
    assert refused("sandbox", "--port", "0", "--db", str(text)) == (
        f"--db {text}: cannot keep the database there: file is not a database"
    )
    missing_dir = tmp_path / "no" / "s.db"
    assert refused("sandbox", "--port", "0", "--db", str(missing_dir)).startswith(
        f"--db {missing_dir}: cannot keep the database there"
    )
    assert refused("sandbox", "stats", "--db", str(tmp_path / "nope.db")) == (
        f"no such database: {tmp_path / 'nope.db'}"
    )
    assert refused("sandbox", "stats", "--db", str(text)) == (
        f"{text} is not a sandbox database (file is not a database)"
    )
    assert refused("sandbox", "stats", "--db", str(tmp_path)).endswith(
        "is a directory, not a sandbox database"
    )


STOPPING = """
import os, signal, sys, threading
from revbridge_cli.sandbox import cli
class Stuck:
    def stop(self): threading.Event().wait()
if sys.argv[1] == "second-signal":
    with cli._stop_signals() as stop:
        os.kill(os.getpid(), signal.SIGINT)
        stop.wait()
        os.kill(os.getpid(), signal.SIGINT)
        threading.Event().wait()
else:
    cli._stop_within(Stuck(), 0.1)
"""


@pytest.mark.e2e
@pytest.mark.parametrize(("how", "code"), [("second-signal", 130), ("stuck-stop", 70)])
def test_a_stop_that_cannot_finish_exits_with_its_code_from_the_table(how: str, code: int) -> None:
    """A second Ctrl-C is the main CLI's 130; a sandbox that cannot close is 70 (a bug)."""
    done = subprocess.run(
        [sys.executable, "-c", STOPPING, how], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr and len(done.stderr.splitlines()) == 1


@pytest.mark.e2e
def test_stats_json(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    with Sandbox(api_key="k", customer_id="c", db=db) as sb, httpx.Client(base_url=sb.url) as c:
        post(c, VENDOR_PARTIAL_REQUEST, headers=auth_headers("k", "c"))
        post(c, b"{", headers=auth_headers("k", "c"))
    result = CliRunner().invoke(app, ["stats", "--db", str(db), "--json"])
    assert result.exit_code == 0, result.output
    report = orjson.loads(result.output)
    assert report["events"] == 1 and report["profiles"] == 1
    assert report["requests_by_status"] == {"202": 1, "400": 1}
    assert report["users_rejected"] == 2
    assert [row["status"] for row in report["last_requests"]] == [202, 400]


def test_stats_of_a_missing_db(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["stats", "--db", str(tmp_path / "nope.db")])
    assert result.exit_code == 2


@pytest.mark.parametrize("args", [["--help"], ["stats", "--help"]])
def test_help_shows_an_example(args: list[str]) -> None:
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0
    assert "Example: revbridge sandbox" in result.output
