"""Durable runs (`--state`), through the real command in a child process against a real sandbox.

Every event carries a unique `seq`; the sandbox database is the ground truth, so "nothing lost"
means every seq is stored and "duplicates" means a seq stored more than once. The runs that
get killed are made slow with sandbox latency (the sandbox stores a request before it sleeps,
so a stored request is one the importer is still waiting on), and the kill comes once a given
number of requests is stored.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import (
    STOPPING,
    base_env,
    event,
    read_ndjson,
    seqs,
    stderr_until,
    wait_for_requests,
    write_ndjson,
)

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs a sandbox or the real command

FAST = ("--retry-initial-delay", "0.01", "--retry-max-delay", "0.05")


def events(first: int, last: int) -> list[dict[str, Any]]:
    """One event per user, so a batch of `--max-users U` holds exactly U events at most."""
    return [event(f"u{n}", n) for n in range(first, last + 1)]


def start(
    sb: Sandbox, tmp: Path, *inputs: str | Path, extra: tuple[str, ...] = (), state: bool = True
) -> Any:
    args = [
        sys.executable,
        "-m",
        "revbridge_cli",
        "send",
        *map(str, inputs),
        *(("--state", str(tmp / "run.state")) if state else ()),
        "--rejected",
        str(tmp / "rejected.ndjson"),
        "--json",
        *FAST,
        *extra,
    ]
    return subprocess.Popen(
        args,
        env=base_env(sb),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(proc: Any, timeout: float = 30) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate(timeout=timeout)
    summary = orjson.loads(out) if out.strip() else {}
    return proc.returncode, summary, err


def run(
    sb: Sandbox, tmp: Path, *inputs: str | Path, extra: tuple[str, ...] = (), state: bool = True
) -> Any:
    return finish(start(sb, tmp, *inputs, extra=extra, state=state))


def duplicates(sb: Sandbox) -> Counter[int]:
    return Counter({s: c - 1 for s, c in Counter(seqs(sb)).items() if c > 1})


def assert_exactly_once(sb: Sandbox, first: int, last: int) -> None:
    stored = seqs(sb)
    assert stored == list(range(first, last + 1)), (
        f"missing {sorted(set(range(first, last + 1)) - set(stored))}, "
        f"duplicated {dict(duplicates(sb))}"
    )


# ---- killed, interrupted, terminated: rerun and nothing is lost ---------------------------

N = 240
CONCURRENCY = 3
MAX_USERS = 8
# A worker holds one batch at a time between "in flight" in the journal and its commit, so at
# most CONCURRENCY batches of at most MAX_USERS one-event users can be stored and not settled.
DUPLICATE_BOUND = CONCURRENCY * MAX_USERS
SLOW = ("--concurrency", str(CONCURRENCY), "--max-users", str(MAX_USERS))
# Both lanes of the reader (feed.py): a flat event takes the fast lane unless an option sends
# every record through the general path; an in-doubt record's resend must count the same.
LANES = pytest.mark.parametrize(
    "lane", [(), ("--timestamps", "lenient")], ids=["fast-lane", "general-path"]
)


@pytest.mark.parametrize("after_requests", [1, 7, 20])
def test_kill_9_then_rerun_loses_nothing_and_reports_possible_duplicates(
    sandbox: Sandbox, tmp_path: Path, after_requests: int
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, N))
    sandbox.set_faults(latency=0.1)
    proc = start(sandbox, tmp_path, data, extra=SLOW)
    wait_for_requests(sandbox, after_requests, proc)
    proc.kill()
    assert proc.wait(5) == -signal.SIGKILL
    stored_at_kill = len(seqs(sandbox))
    assert 0 < stored_at_kill < N

    sandbox.set_faults(latency=0.0)
    code, summary, err = run(sandbox, tmp_path, data, extra=SLOW)
    assert code == 0, err
    assert set(seqs(sandbox)) == set(range(1, N + 1))
    dups = sum(duplicates(sandbox).values())
    assert dups <= DUPLICATE_BOUND
    assert summary["possible_duplicate_events"] >= dups
    assert summary["possible_duplicate_events"] <= DUPLICATE_BOUND
    # What the rerun read is what the first run had not settled: at least the unstored part.
    assert summary["records_read"] >= N - stored_at_kill
    assert summary["records_read"] + summary["records_skipped"] <= N


def test_stopped_gzip_input_resumes_inside_the_compressed_file(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    # The watermark is an offset in the decompressed stream, much larger than the file.
    data = write_ndjson(tmp_path / "events.ndjson.gz", events(1, N), gz=True)
    assert data.stat().st_size < 3_000 < N * 90
    one_lane = ("--concurrency", "1", "--max-users", "8")
    sandbox.set_faults(latency=0.1)
    proc = start(sandbox, tmp_path, data, extra=one_lane)
    wait_for_requests(sandbox, 5, proc)
    proc.terminate()  # an orderly stop: nothing in doubt, the watermark is all there is
    assert proc.wait(10) == 143
    assert 0 < len(seqs(sandbox)) < N

    sandbox.set_faults(latency=0.0)
    code, summary, err = run(sandbox, tmp_path, data, extra=one_lane)
    assert code == 0, err
    assert_exactly_once(sandbox, 1, N)
    assert summary["possible_duplicate_events"] == 0


@pytest.mark.parametrize(("signum", "exit_code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_stops_cleanly_and_the_rerun_continues(
    sandbox: Sandbox, tmp_path: Path, signum: int, exit_code: int
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, N))
    sandbox.set_faults(latency=0.1)
    # A grace far longer than `finish` waits: a stop that sat it out instead of ending once the
    # requests in flight answer (in 0.1 s) would fail here, whatever the machine's load.
    proc = start(sandbox, tmp_path, data, extra=(*SLOW, "--grace", "600"))
    wait_for_requests(sandbox, 6, proc)
    proc.send_signal(signum)
    code, first, err = finish(proc)
    assert code == exit_code
    assert "Traceback" not in err
    assert "records read" in err  # the summary is printed
    assert "run the same command again" in err
    assert first["exit_code"] == exit_code
    assert first["interrupted"]
    assert 0 < first["events_accepted"] < N
    # An orderly stop lets the requests in flight finish: what was accepted is recorded.
    assert first["events_accepted"] == len(seqs(sandbox))

    sandbox.set_faults(latency=0.0)
    code, second, err = run(sandbox, tmp_path, data, extra=SLOW)
    assert code == 0, err
    assert_exactly_once(sandbox, 1, N)
    assert second["possible_duplicate_events"] == 0
    assert second["records_skipped"] + second["records_read"] <= N
    assert first["events_accepted"] + second["events_accepted"] == N


def interleaved(users: int, rounds: int) -> list[dict[str, Any]]:
    """Users spread through the file, 100-byte pads: more than a 1 MB grouping buffer holds."""
    return [
        event(f"u{u}", n * users + u, pad="x" * 100) for n in range(rounds) for u in range(users)
    ]


HELD = ("--concurrency", "2", "--max-users", "50", "--buffer-mb", "1")


def interrupted(sb: Sandbox, tmp: Path, data: Path, state: bool) -> dict[str, Any]:
    """A run over `data` at 100 ms a request, Ctrl-C'd after its fourth request."""
    sb.set_faults(latency=0.1)
    proc = start(sb, tmp, data, extra=HELD, state=state)
    wait_for_requests(sb, 4, proc)
    proc.send_signal(signal.SIGINT)
    code, summary, err = finish(proc)
    assert code == 130, err
    sb.set_faults(latency=0.0)
    return summary


def test_a_stop_leaves_what_the_grouping_buffer_held_for_the_rerun(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """At the stop, users the buffer held back were never sent: the journal leaves their
    records unsettled (though later records of the file are done), and the rerun sends each
    exactly once."""
    data = write_ndjson(tmp_path / "events.ndjson", interleaved(2000, 3))
    first = interrupted(sandbox, tmp_path, data, state=True)
    assert first["events_pending"] > 0
    assert 0 < first["events_accepted"] == len(seqs(sandbox))

    code, second, err = run(sandbox, tmp_path, data, extra=HELD)
    assert code == 0, err
    assert_exactly_once(sandbox, 0, 5999)
    assert second["possible_duplicate_events"] == 0


def test_ctrl_c_without_state_keeps_what_was_not_sent_in_the_rejected_file(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Without --state the promise is: every record up to where reading stopped was accepted
    or is in the rejected file (the buffer's users as `undelivered`), and sending that file
    delivers the rest exactly once."""
    data = write_ndjson(tmp_path / "events.ndjson", interleaved(2000, 3))
    first = interrupted(sandbox, tmp_path, data, state=False)
    (stopped,) = [n for n in first["notices"] if n.startswith("reading stopped after")]
    last_line = int(stopped.split(":")[1])  # "reading stopped after FILE:LINE: ..."
    rows = read_ndjson(tmp_path / "rejected.ndjson")
    assert rows and {row["kind"] for row in rows} == {"undelivered"}
    accepted = seqs(sandbox)
    kept = sorted(e["seq"] for row in rows for e in row["user"]["events"])
    assert sorted(accepted + kept) == list(range(last_line))  # seq n is on line n + 1

    code, _, err = run(sandbox, tmp_path, tmp_path / "rejected.ndjson", state=False)
    assert code == 0, err
    assert_exactly_once(sandbox, 0, last_line - 1)


@LANES
def test_signal_during_a_hung_request_waits_the_grace_then_counts_it_in_doubt(
    sandbox: Sandbox, tmp_path: Path, lane: tuple[str, ...]
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 40))
    sandbox.set_faults(hang_requests=(2,), hang_seconds=600)  # answers only after the test
    extra = ("--concurrency", "1", "--max-users", "10", "--grace", "0.5", *lane)
    proc = start(sandbox, tmp_path, data, extra=extra)
    wait_for_requests(sandbox, 2, proc)
    sent_at = time.monotonic()
    proc.send_signal(signal.SIGINT)
    code, first, err = finish(proc)
    assert code == 130
    assert "Traceback" not in err
    assert time.monotonic() - sent_at >= 0.5  # the grace was given
    # ... and then the hung request was given up, not waited for: in doubt, not accepted.
    assert first["events_accepted"] == 10
    assert first["events_pending"] >= 10

    sandbox.set_faults(hang_requests=())
    code, second, err = run(sandbox, tmp_path, data, extra=("--concurrency", "1", *lane))
    assert code == 0, err
    assert set(seqs(sandbox)) == set(range(1, 41))
    assert sum(duplicates(sandbox).values()) == 10  # batch 2 was stored, and is sent again
    assert second["possible_duplicate_events"] == 10
    assert second["unaccounted_events"] == 0


@LANES
def test_second_ctrl_c_quits_at_once(
    sandbox: Sandbox, tmp_path: Path, lane: tuple[str, ...]
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 40))
    # Neither the hung request nor the grace ends before `finish` gives up waiting: only the
    # second Ctrl-C can end this run in time, whatever the machine's load.
    sandbox.set_faults(hang_requests=(1,), hang_seconds=600)
    extra = ("--concurrency", "1", "--max-users", "10", "--grace", "600", *lane)
    proc = start(sandbox, tmp_path, data, extra=extra)
    wait_for_requests(sandbox, 1, proc)
    proc.send_signal(signal.SIGINT)
    head = stderr_until(proc, STOPPING)
    proc.send_signal(signal.SIGINT)
    code, _, err = finish(proc)
    assert code == 130
    assert "Traceback" not in head + err

    sandbox.set_faults(hang_requests=())
    code, second, err = run(sandbox, tmp_path, data, extra=lane)
    assert code == 0, err
    assert set(seqs(sandbox)) == set(range(1, 41))
    assert second["possible_duplicate_events"] >= sum(duplicates(sandbox).values()) == 10
    assert second["unaccounted_events"] == 0


@LANES
def test_in_doubt_records_stay_in_doubt_across_a_run_that_does_not_read_them(
    sandbox: Sandbox, tmp_path: Path, lane: tuple[str, ...]
) -> None:
    """The same state serves two commands; the one that does not read a file must not forget
    that some of its records were in flight when an earlier run was killed."""
    a = write_ndjson(tmp_path / "a.ndjson", events(1, 40))
    b = write_ndjson(tmp_path / "b.ndjson", events(101, 110))
    sandbox.set_faults(hang_requests=(2,), hang_seconds=30)
    extra = ("--concurrency", "1", "--max-users", "10", *lane)
    proc = start(sandbox, tmp_path, a, extra=extra)
    wait_for_requests(sandbox, 2, proc)
    proc.kill()
    proc.wait(5)

    sandbox.set_faults(hang_requests=())
    code, _, err = run(sandbox, tmp_path, b, extra=lane)
    assert code == 0, err
    code, summary, err = run(sandbox, tmp_path, a, extra=lane)
    assert code == 0, err
    assert set(seqs(sandbox)) == set(range(1, 41)) | set(range(101, 111))
    assert sum(duplicates(sandbox).values()) == 10
    assert summary["possible_duplicate_events"] == 10
    assert summary["unaccounted_events"] == 0


# ---- cron: growing files, new files, changed files, done files -----------------------------


def append(path: Path, text: bytes) -> None:
    with open(path, "ab") as f:
        f.write(text)


def line(n: int) -> bytes:
    return orjson.dumps(event(f"u{n}", n)) + b"\n"


def test_growing_file_sends_each_line_once_and_waits_for_an_unfinished_last_line(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    log = tmp_path / "events.ndjson"
    log.write_bytes(b"".join(line(n) for n in range(1, 6)) + line(6)[:20])
    code, s1, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    assert s1["records_read"] == 5
    assert_exactly_once(sandbox, 1, 5)
    assert "the last line has no newline yet" in err

    append(log, line(6)[20:] + line(7) + line(8) + line(9)[:-1])  # 9 lacks its newline
    code, s2, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    assert_exactly_once(sandbox, 1, 8)
    assert s2["records_read"] == 3

    append(log, b"\n")
    code, s3, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    assert_exactly_once(sandbox, 1, 9)
    assert s3["records_read"] == 1

    code, s4, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    assert s4["requests"] == 0
    assert_exactly_once(sandbox, 1, 9)


def test_small_file_rewritten_in_place_and_grown_is_not_read_from_the_old_offset(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    log = tmp_path / "events.ndjson"
    write_ndjson(log, events(1, 3))
    code, _, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    # Same inode, new content, longer than before: the head says it is another file.
    with open(log, "r+b") as f:
        f.write(b"".join(line(n) for n in range(201, 210)))
    code, _, err = run(sandbox, tmp_path, log)
    assert code == 1
    assert "replaced" in err
    assert_exactly_once(sandbox, 1, 3)


def test_new_file_in_a_directory_is_picked_up_by_the_next_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    write_ndjson(inbox / "2026-01-01.ndjson", events(1, 20))
    code, _, err = run(sandbox, tmp_path, inbox)
    assert code == 0, err
    write_ndjson(inbox / "2026-01-02.ndjson", events(21, 30))
    code, summary, err = run(sandbox, tmp_path, inbox)
    assert code == 0, err
    assert summary["records_read"] == 10
    assert_exactly_once(sandbox, 1, 30)

    write_ndjson(inbox / "2026-01-03.ndjson", events(31, 35))
    code, summary, err = run(sandbox, tmp_path, str(inbox / "*.ndjson"))  # a glob, same files
    assert code == 0, err
    assert summary["records_read"] == 5
    assert_exactly_once(sandbox, 1, 35)


def test_truncated_file_is_reported_and_read_again_only_with_restart_changed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    log = write_ndjson(tmp_path / "events.ndjson", events(1, 60))
    code, _, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    inode = log.stat().st_ino
    with open(log, "r+b") as f:  # same file, cut, then new data written at its start
        f.truncate(0)
        f.write(b"".join(line(n) for n in range(301, 306)))
    assert log.stat().st_ino == inode

    code, summary, err = run(sandbox, tmp_path, log)
    assert code == 1
    assert "truncated" in err and "--restart-changed" in err
    assert summary["requests"] == 0
    assert_exactly_once(sandbox, 1, 60)
    code, _, err = run(sandbox, tmp_path, log)  # still reported, not silently forgotten
    assert code == 1 and "truncated" in err

    code, summary, err = run(sandbox, tmp_path, log, extra=("--restart-changed",))
    assert code == 0, err
    assert sorted(seqs(sandbox)) == [*range(1, 61), *range(301, 306)]
    code, summary, err = run(sandbox, tmp_path, log)
    assert code == 0 and summary["requests"] == 0


def test_replaced_file_is_reported_and_read_again_only_with_restart_changed(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    log = write_ndjson(tmp_path / "events.ndjson", events(1, 10))
    code, _, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    new = write_ndjson(tmp_path / "new.tmp", events(401, 420))
    os.replace(new, log)  # a rotation: another file now has the name

    code, summary, err = run(sandbox, tmp_path, log)
    assert code == 1
    assert "replaced" in err and "--restart-changed" in err
    assert summary["requests"] == 0
    assert_exactly_once(sandbox, 1, 10)

    code, summary, err = run(sandbox, tmp_path, log, extra=("--restart-changed",))
    assert code == 0, err
    assert summary["records_read"] == 20
    assert sorted(seqs(sandbox)) == [*range(1, 11), *range(401, 421)]


def test_a_file_already_done_costs_no_request(sandbox: Sandbox, tmp_path: Path) -> None:
    log = write_ndjson(tmp_path / "events.ndjson.gz", events(1, 500), gz=True)
    code, _, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    before = len(sandbox.requests())
    code, summary, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    assert summary["requests"] == 0
    assert summary["records_read"] == 0
    assert len(sandbox.requests()) == before
    assert "nothing new since the last run" in err
    assert_exactly_once(sandbox, 1, 500)


# ---- one run per state -----------------------------------------------------------------------


def test_a_second_run_on_a_held_state_refuses_and_a_dead_holder_does_not_block(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 100))
    sandbox.set_faults(hang_requests=(2,), hang_seconds=600)  # the holder never finishes
    slow = start(sandbox, tmp_path, data, extra=("--concurrency", "1", "--max-users", "5"))
    wait_for_requests(sandbox, 2, slow)

    code, summary, err = run(sandbox, tmp_path, data)
    assert slow.poll() is None  # refused while the state was held, not after waiting for it
    assert code == 75
    assert "in use by a running revbridge" in err and str(slow.pid) in err
    assert summary["exit_code"] == 75 and "in use" in summary["error"]  # --json: one object
    assert "Traceback" not in err

    slow.kill()
    slow.wait()
    sandbox.set_faults(hang_requests=())
    code, summary, err = run(sandbox, tmp_path, data)
    assert code == 0, err
    assert set(seqs(sandbox)) == set(range(1, 101))
    assert summary["possible_duplicate_events"] >= sum(duplicates(sandbox).values())
    assert sum(duplicates(sandbox).values()) <= 5


# ---- requests without an answer, and requests that failed for good -------------------------


@LANES
def test_hung_request_is_resent_and_counted_as_possible_duplicates(
    sandbox: Sandbox, tmp_path: Path, lane: tuple[str, ...]
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 20))
    sandbox.set_faults(hang_requests=(1,), hang_seconds=5)
    code, summary, err = run(
        sandbox,
        tmp_path,
        data,
        extra=("--concurrency", "1", "--max-users", "5", "--timeout", "0.3", *lane),
    )
    assert code == 0, err
    assert set(seqs(sandbox)) == set(range(1, 21))
    dups = duplicates(sandbox)
    assert sum(dups.values()) == 5  # the hung request was stored, then sent again
    assert summary["possible_duplicate_events"] == 5
    assert summary["retries"] == 1
    assert summary["unaccounted_events"] == 0


def test_hung_request_without_state_is_counted_the_same(sandbox: Sandbox, tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 20))
    sandbox.set_faults(hang_requests=(1,), hang_seconds=5)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "revbridge_cli",
            "send",
            str(data),
            "--json",
            *FAST,
            "--concurrency",
            "1",
            "--max-users",
            "5",
            "--timeout",
            "0.3",
        ],
        env=base_env(sandbox),
        capture_output=True,
        text=True,
        timeout=30,
        cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    assert orjson.loads(proc.stdout)["possible_duplicate_events"] == 5
    assert sum(duplicates(sandbox).values()) == 5


@pytest.mark.parametrize("status", [503, 500])
def test_undelivered_rows_go_to_the_rejected_file_and_are_not_resent(
    sandbox: Sandbox, tmp_path: Path, status: int
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 20))
    sandbox.set_faults(fail_requests=(2,), fail_status=status)
    code, summary, err = run(
        sandbox,
        tmp_path,
        data,
        extra=("--concurrency", "1", "--max-users", "5", "--max-retries", "0"),
    )
    assert code == 1
    assert summary["events_undelivered"] == 5
    rows = read_ndjson(tmp_path / "rejected.ndjson")
    assert [r["kind"] for r in rows] == ["undelivered"] * 5
    lost = sorted(r["user"]["events"][0]["seq"] for r in rows)
    assert sorted(seqs(sandbox)) == sorted(set(range(1, 21)) - set(lost))

    code, summary, err = run(sandbox, tmp_path, data)
    assert code == 0, err
    assert summary["requests"] == 0
    assert len(read_ndjson(tmp_path / "rejected.ndjson")) == 5
    assert sorted(seqs(sandbox)) == sorted(set(range(1, 21)) - set(lost))


def test_without_state_a_rerun_sends_everything_again(sandbox: Sandbox, tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 10))
    for _ in range(2):
        proc = subprocess.run(
            [sys.executable, "-m", "revbridge_cli", "send", str(data), "--json"],
            env=base_env(sandbox),
            capture_output=True,
            text=True,
            timeout=30,
            cwd=tmp_path,
        )
        assert proc.returncode == 0, proc.stderr
    assert seqs(sandbox) == sorted(list(range(1, 11)) * 2)
    assert not list(tmp_path.glob("*.state*"))


def test_state_refuses_standard_input(sandbox: Sandbox, tmp_path: Path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "revbridge_cli", "send", "-", "--state", str(tmp_path / "s")],
        env=base_env(sandbox),
        input=orjson.dumps(event("u1", 1)).decode() + "\n",
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert proc.returncode == 2
    assert "standard input cannot be resumed" in proc.stderr


def test_after_an_authentication_failure_the_rerun_sends_what_was_not_accepted(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", events(1, 20))
    sandbox.set_faults(revoke_after=1)
    one_lane = ("--concurrency", "1", "--max-users", "5")
    code, first, err = run(sandbox, tmp_path, data, extra=one_lane)
    assert code == 3
    assert first["events_accepted"] == 5
    assert first["events_pending"] == 15  # left for the next run, not in the rejected file
    assert not (tmp_path / "rejected.ndjson").exists()

    sandbox.set_faults(revoke_after=None)
    code, _, err = run(sandbox, tmp_path, data, extra=one_lane)
    assert code == 0, err
    assert_exactly_once(sandbox, 1, 20)


# ---- re-exports: a new file with the old rows first has only grown -----------------------------


@pytest.mark.parametrize("gz", [False, True])
def test_a_re_export_with_the_old_rows_first_sends_only_the_new_rows(
    sandbox: Sandbox, tmp_path: Path, gz: bool
) -> None:
    log = tmp_path / ("export.ndjson.gz" if gz else "export.ndjson")
    write_ndjson(log, events(1, 300), gz=gz)
    code, _, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    inode = log.stat().st_ino
    tmp = write_ndjson(tmp_path / "export.tmp", events(1, 450), gz=gz)  # the job's next export
    os.replace(tmp, log)
    assert log.stat().st_ino != inode

    code, summary, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    assert "replaced" not in err
    assert summary["records_read"] == 150
    assert_exactly_once(sandbox, 1, 450)


def test_a_re_export_with_changed_earlier_rows_is_still_replaced(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    log = write_ndjson(tmp_path / "export.ndjson", events(1, 300))
    code, _, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    rows = events(1, 450)
    rows[149]["seq"] = 9150  # one earlier row rewritten, same length
    os.replace(write_ndjson(tmp_path / "export.tmp", rows), log)

    code, summary, err = run(sandbox, tmp_path, log)
    assert code == 1
    assert "was replaced since the last run" in err
    assert summary["requests"] == 0
    assert_exactly_once(sandbox, 1, 300)


# ---- honest duplicate counts -------------------------------------------------------------------


@LANES
def test_a_chain_of_kill_9s_never_reports_fewer_duplicates_than_were_stored(
    sandbox: Sandbox, tmp_path: Path, lane: tuple[str, ...]
) -> None:
    """Ten kill -9s in a row on one state, at random points of runs against a server with
    latency and hung requests (stored, then no answer: resent after --timeout), then a clean
    run: its `possible_duplicate_events` is at least the events the server holds twice."""
    rng = random.Random(14)
    n = 3000
    data = write_ndjson(tmp_path / "events.ndjson", events(1, n))
    extra = ("--concurrency", "3", "--max-users", "25", "--timeout", "0.4", *lane)
    sandbox.set_faults(latency=0.05, hang_rate=0.15, hang_seconds=1.0, seed=14)
    kills = 0
    reported = 0
    for _ in range(10):
        before = len(sandbox.requests())
        proc = start(sandbox, tmp_path, data, extra=extra)
        try:
            wait_for_requests(sandbox, before + rng.randint(1, 10), proc)
        except AssertionError:  # the run finished first: count what it reported
            code, summary, err = finish(proc)
            assert code == 0, err
            reported += summary["possible_duplicate_events"]
            break
        time.sleep(rng.random() * 0.3)
        proc.kill()
        proc.wait(5)
        kills += 1
    sandbox.set_faults(latency=0.0, hang_rate=0.0)
    code, summary, err = run(sandbox, tmp_path, data, extra=extra)
    assert code == 0, err
    reported += summary["possible_duplicate_events"]
    assert set(seqs(sandbox)) == set(range(1, n + 1))
    stored_twice = sum(duplicates(sandbox).values())
    print(f"kills {kills}, duplicate events stored {stored_twice}, reported {reported}")
    assert kills >= 5
    assert reported >= stored_twice
    assert summary["unaccounted_events"] == 0


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM", "401"])
def test_an_orderly_stop_during_a_503_storm_leaves_nothing_in_doubt(
    sandbox: Sandbox, tmp_path: Path, stop: str
) -> None:
    """Every request was answered (503), so none is in doubt: the rerun reports 0 possible
    duplicates, and the server holds every event once."""
    n = 200
    data = write_ndjson(tmp_path / "events.ndjson", events(1, n))
    sandbox.set_faults(fail_rate=1.0, fail_status=503)
    slow_retries = ("--retry-initial-delay", "0.5", "--retry-max-delay", "1")
    extra = ("--concurrency", "3", "--max-users", "10", *slow_retries)
    proc = start(sandbox, tmp_path, data, extra=extra)
    wait_for_requests(sandbox, 6, proc)
    if stop == "401":
        sandbox.set_faults(revoke_after=len(sandbox.requests()))
    else:
        proc.send_signal(getattr(signal, stop))
    code, first, err = finish(proc, timeout=60)
    assert code == {"SIGINT": 130, "SIGTERM": 143, "401": 3}[stop], err
    assert "Traceback" not in err
    # the books: nothing accepted, nothing set aside, everything read is left for the rerun
    assert first["events_accepted"] == 0 and first["rejected_rows"] == 0
    assert first["records_read"] == first["events_pending"]

    sandbox.set_faults(fail_rate=0.0, revoke_after=None)
    code, second, err = run(sandbox, tmp_path, data)
    assert code == 0, err
    assert second["possible_duplicate_events"] == 0
    assert_exactly_once(sandbox, 1, n)
