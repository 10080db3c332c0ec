"""Failure paths keep the books: stops that stop, slow start, supervised lanes.

Through the real command in a child process against a real sandbox (or a dead port, or a
real OS limit), except the one narrow test of the lanes' supervision, which needs a part to
fail in a way no real server can make it. After every scenario the books balance: every event
read is accepted (in the sandbox's database), in the rejected file, or pending in the journal,
and the summary's own identity (`unaccounted_events`) is 0.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import (
    base_env,
    cli_json,
    event,
    limited_file_size,
    read_ndjson,
    seqs,
    wait_for_requests,
    write_ndjson,
)
from test_durable import duplicates, finish, run, start

from revbridge_cli.config.retry import RetryPolicy
from revbridge_cli.delivery.lanes import Lanes
from revbridge_cli.delivery.sender import AdaptiveLimit, Outcome, Sender
from revbridge_cli.pack.batch import Batch
from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e


def rejected_seqs(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [e["seq"] for row in read_ndjson(path) if row["user"] for e in row["user"]["events"]]


def assert_books(summary: dict[str, Any], sb: Sandbox, rejected: Path, read: list[int]) -> None:
    """Every seq read is stored, or in the rejected file, or (with --state) pending."""
    assert summary["unaccounted_events"] == 0, summary
    stored, kept = seqs(sb), rejected_seqs(rejected)
    assert summary["events_accepted"] == len(stored)
    assert len(stored) + len(kept) + summary["events_pending"] == summary["events_read"]
    assert set(stored) | set(kept) <= set(read)


def users(n: int, first: int = 0) -> list[dict[str, Any]]:
    return [event(f"u{i}", i) for i in range(first, first + n)]


# ---- slow start: a wrong key or a dead server costs one request --------------------------------


def test_a_wrong_key_costs_one_request_and_one_requests_worth_of_records(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "in.ndjson", users(20_000))
    rejected = tmp_path / "rejected.ndjson"
    env = base_env(sandbox, REVBRIDGE_API_KEY="rbk_wrong")
    result, summary = cli_json("send", str(data), "--rejected", str(rejected), env=env)
    assert result.returncode == 3, result.stderr
    assert "authentication refused" in result.stderr
    assert len(sandbox.requests()) == 1
    rows = read_ndjson(rejected)
    assert 0 < len(rows) <= 1000  # one request's worth (--max-users), not the read-ahead
    assert summary["records_read"] == len(rows)
    assert_books(summary, sandbox, rejected, list(range(20_000)))


def test_a_dead_server_stops_the_run_once_the_first_request_used_its_retries(
    tmp_path: Path,
) -> None:
    with socket.socket() as s:  # a port with nothing listening
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = write_ndjson(tmp_path / "in.ndjson", users(20_000))
    rejected = tmp_path / "rejected.ndjson"
    env = base_env(
        REVBRIDGE_BASE_URL=f"http://127.0.0.1:{port}",
        REVBRIDGE_API_KEY="rbk_x",
        REVBRIDGE_CUSTOMER_ID="c",
    )
    result, summary = cli_json(
        "send", str(data), "--rejected", str(rejected), "--max-retries", "2",
        "--retry-initial-delay", "0.01", "--retry-max-delay", "0.02", env=env,
    )  # fmt: skip
    assert result.returncode == 69, result.stderr
    assert "the server could not be reached" in result.stderr
    rows = read_ndjson(rejected)
    assert 0 < len(rows) <= 1000
    assert {row["kind"] for row in rows} == {"undelivered"}
    assert summary["unaccounted_events"] == 0
    assert summary["events_read"] == summary["events_undelivered"] == len(rejected_seqs(rejected))


def test_a_small_input_goes_in_one_request_whatever_the_lanes(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "in.ndjson", users(40))
    result, summary = cli_json("send", str(data), "--concurrency", "8", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert len(sandbox.requests()) == 1
    assert sorted(seqs(sandbox)) == list(range(40))
    assert summary["unaccounted_events"] == 0


# ---- stops that stop ------------------------------------------------------------------------


def _blocked_in_read(pid: int) -> bool:
    """The child's main thread sleeps in a pipe read (not in the event loop's epoll)."""
    try:
        wchan = Path(f"/proc/{pid}/task/{pid}/wchan").read_text()
    except OSError:
        return False
    return "pipe" in wchan


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_stop_signal_ends_a_run_blocked_on_a_quiet_pipe(
    sandbox: Sandbox, tmp_path: Path, signum: int, code: int
) -> None:
    """`zcat big.gz | revbridge send -` with a writer gone quiet: the read blocks the thread,
    and the signal must still end the run, with its summary and every record accounted for."""
    rejected = tmp_path / "rejected.ndjson"
    proc = subprocess.Popen(
        [sys.executable, "-m", "revbridge_cli", "send", "-", "--json", "--rejected", str(rejected)],
        env=base_env(sandbox),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None
    proc.stdin.write(b"".join(orjson.dumps(e) + b"\n" for e in users(1500)))
    proc.stdin.flush()  # and the writer stays, quiet
    wait_for_requests(sandbox, 1, proc)
    deadline = time.monotonic() + 30
    while not _blocked_in_read(proc.pid):
        assert time.monotonic() < deadline, "the run never waited on its input"
        time.sleep(0.01)
    proc.send_signal(signum)
    out, err = proc.communicate(timeout=60)  # a hang fails here, whatever the machine's load
    assert proc.returncode == code, err
    assert b"Traceback" not in err
    summary = orjson.loads(out)
    # Lines the reader had buffered but not handed over are "not read", and the notice says
    # where reading stopped: every record up to there is accepted or in the rejected file.
    read = summary["records_read"]
    assert 1000 < read <= 1500
    assert f"reading stopped after <stdin>:{read}:" in " ".join(summary["notices"])
    assert_books(summary, sandbox, rejected, list(range(read)))
    assert summary["events_accepted"] >= 1000  # the first request went through


def test_sighup_stops_like_sigterm_and_the_rerun_sends_the_rest_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", users(240))
    sandbox.set_faults(latency=0.1)
    extra = ("--concurrency", "2", "--max-users", "8")
    proc = start(sandbox, tmp_path, data, extra=extra)
    wait_for_requests(sandbox, 3, proc)
    proc.send_signal(signal.SIGHUP)
    code, first, err = finish(proc)
    assert code == 129, err
    assert first["interrupted"].startswith("hung up (SIGHUP)")
    assert_books(first, sandbox, tmp_path / "rejected.ndjson", list(range(240)))

    sandbox.set_faults(latency=0.0)
    code, _, err = run(sandbox, tmp_path, data, extra=extra)
    assert code == 0, err
    assert sorted(set(seqs(sandbox))) == list(range(240))
    assert not duplicates(sandbox)


# ---- --state: a record is settled only when every piece of it is --------------------------------


def test_a_record_split_over_many_requests_is_not_settled_before_its_last_piece(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """One user line of 300 events, a 4 KB request limit: its pieces go in many requests.
    Killed while a later piece hangs, the rerun must still send every piece not yet stored."""
    user = {
        "identifiers": {"user_id": "big"},
        "events": [{"event_name": "e", "seq": n, "pad": "x" * 150} for n in range(300)],
    }
    data = write_ndjson(tmp_path / "events.ndjson", [user])
    sandbox.set_faults(hang_requests=(4,), hang_seconds=30)
    extra = ("--concurrency", "1", "--max-bytes", "4096")
    proc = start(sandbox, tmp_path, data, extra=extra)
    wait_for_requests(sandbox, 4, proc)
    proc.kill()
    proc.wait(30)

    sandbox.set_faults(hang_requests=())
    code, second, err = run(sandbox, tmp_path, data, extra=extra)
    assert code == 0, err
    assert sorted(set(seqs(sandbox))) == list(range(300))
    assert second["possible_duplicate_events"] >= sum(duplicates(sandbox).values())


# ---- outputs that fail mid-run ------------------------------------------------------------------


def test_a_rejected_file_that_cannot_grow_stops_the_run_with_exit_74(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """A real OS limit (RLIMIT_FSIZE, as a full disk would) on the rejected file: the run
    stops cleanly, prints its summary, and says how many events it could not write."""
    records = [event(f"u{i}", i, revenue="9.99") for i in range(5000)]  # all invalid
    data = write_ndjson(tmp_path / "in.ndjson", records)
    rejected = tmp_path / "rejected.ndjson"
    done = subprocess.run(
        [sys.executable, "-m", "revbridge_cli", "send", str(data), "--json",
         "--rejected", str(rejected)],
        env=base_env(sandbox), capture_output=True, timeout=120,
        preexec_fn=limited_file_size(64 * 1024),
    )  # fmt: skip
    assert done.returncode == 74, done.stderr
    err = done.stderr.decode()
    assert "Traceback" not in err
    assert str(rejected) in err
    summary = orjson.loads(done.stdout)
    assert summary["records_read"] < 5000  # it stopped reading
    text = rejected.read_bytes()
    assert text.endswith(b"\n") or not text  # no half-written row
    assert len(text.splitlines()) == summary["rejected_rows"] == summary["records_invalid"]
    assert summary["unaccounted_events"] == 0


# ---- supervision, narrowly: a part that fails is heard at once --------------------------------


def _batch(seq: int, lane: int = 0) -> Batch:
    user = orjson.dumps({"identifiers": {"user_id": f"u{seq}"}, "events": [{"event_name": "e"}]})
    return Batch.of(seq, lane, [(user, 1, (0, seq, 0))])


def test_a_lane_whose_settlement_fails_stops_and_gives_every_batch_up() -> None:
    """A worker whose verdict handling raises (a bug, or an output that failed) must report it
    at once and abandon what it held; `close` then returns and no batch is unaccounted."""

    async def scenario() -> tuple[list[BaseException], list[int], list[int]]:
        transport = httpx.MockTransport(lambda r: httpx.Response(202, json={"errors": []}))
        async with httpx.AsyncClient(transport=transport) as client:
            sender = Sender(client, "http://127.0.0.1:1", {}, RetryPolicy(), AdaptiveLimit(1))
            failures: list[BaseException] = []
            settled: list[int] = []
            abandoned: list[int] = []

            def settle(batch: Batch, outcomes: list[Outcome]) -> None:
                settled.append(batch.seq)
                raise RuntimeError("disk on fire")

            lanes = Lanes(
                sender,
                1,
                before_send=lambda b: None,
                settle=settle,
                abandon=lambda b, why: abandoned.append(b.seq),
                on_failure=lambda exc: (failures.append(exc), lanes.stop(str(exc))),
            )
            for seq in range(1, 6):
                await lanes.put(_batch(seq))
            await lanes.close(grace_seconds=1)
            return failures, settled, abandoned

    failures, settled, abandoned = asyncio.run(scenario())
    assert [str(f) for f in failures] == ["disk on fire"]
    assert settled == [1]
    assert sorted(abandoned) == [2, 3, 4, 5]
