"""`--state` for CSV (byte offsets) and Parquet (rows): killed, stopped, grown, done.

As in test_durable.py, every event is countable: here its `event_value` is a unique number
(CSV cells are text; `event_value` is one of the columns read as a number), and the sandbox
database is the ground truth.
"""

from __future__ import annotations

import gzip
import signal
from collections import Counter
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from conftest import wait_for_requests
from test_durable import DUPLICATE_BOUND, SLOW, finish, run, start

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs the real command

N = 240
HEADER = b"user_id,event_name,timestamp,event_value,note\n"


def csv_line(n: int) -> bytes:
    note = '"a, quoted\nnote"' if n % 10 == 0 else "plain"  # some rows span two lines
    return f"u{n},purchase,2026-01-15T14:30:00Z,{n},{note}\n".encode()


def write_csv(path: Path, first: int, last: int, gz: bool = False) -> Path:
    data = HEADER + b"".join(csv_line(n) for n in range(first, last + 1))
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def write_parquet(path: Path, first: int, last: int, group: int = 16) -> Path:
    numbers = list(range(first, last + 1))
    table = pa.table(
        {
            "user_id": [f"u{n}" for n in numbers],
            "event_name": ["purchase"] * len(numbers),
            "timestamp": ["2026-01-15T14:30:00Z"] * len(numbers),
            "event_value": numbers,
        }
    )
    pq.write_table(table, path, row_group_size=group)
    return path


def values(sb: Sandbox) -> list[int]:
    return sorted(int(e["event_value"]) for e in sb.events())


def dups(sb: Sandbox) -> int:
    return sum(c - 1 for c in Counter(values(sb)).values())


INPUTS = {
    "csv": lambda p: write_csv(p / "events.csv", 1, N),
    "csv.gz": lambda p: write_csv(p / "events.csv.gz", 1, N, gz=True),
    "parquet": lambda p: write_parquet(p / "events.parquet", 1, N),
}


@pytest.mark.parametrize("kind", list(INPUTS))
def test_kill_9_then_rerun_loses_nothing(sandbox: Sandbox, tmp_path: Path, kind: str) -> None:
    data = INPUTS[kind](tmp_path)
    sandbox.set_faults(latency=0.1)
    proc = start(sandbox, tmp_path, data, extra=SLOW)
    wait_for_requests(sandbox, 7, proc)
    proc.kill()
    assert proc.wait(5) == -signal.SIGKILL
    stored_at_kill = len(values(sandbox))
    assert 0 < stored_at_kill < N

    sandbox.set_faults(latency=0.0)
    code, summary, err = run(sandbox, tmp_path, data, extra=SLOW)
    assert code == 0, err
    assert set(values(sandbox)) == set(range(1, N + 1))
    assert dups(sandbox) <= min(DUPLICATE_BOUND, summary["possible_duplicate_events"])
    assert summary["records_read"] >= N - stored_at_kill
    assert summary["records_read"] + summary["records_skipped"] <= N


@pytest.mark.parametrize("kind", ["csv", "parquet"])
def test_stopped_run_resumes_exactly_where_it_stopped(
    sandbox: Sandbox, tmp_path: Path, kind: str
) -> None:
    data = INPUTS[kind](tmp_path)
    one_lane = ("--concurrency", "1", "--max-users", "8")
    sandbox.set_faults(latency=0.1)
    proc = start(sandbox, tmp_path, data, extra=one_lane)
    wait_for_requests(sandbox, 5, proc)
    proc.terminate()  # orderly: nothing in doubt, the watermark (offset or row) is all there is
    code, _, _ = finish(proc)
    assert code == 143
    assert 0 < len(values(sandbox)) < N

    sandbox.set_faults(latency=0.0)
    code, summary, err = run(sandbox, tmp_path, data, extra=one_lane)
    assert code == 0, err
    assert values(sandbox) == list(range(1, N + 1))  # exactly once
    assert summary["possible_duplicate_events"] == 0
    assert summary["records_read"] + summary["records_skipped"] <= N

    code, again, err = run(sandbox, tmp_path, data, extra=one_lane)
    assert code == 0, err
    assert again["requests"] == 0 and "nothing new since the last run" in err


def test_a_growing_csv_is_read_from_its_last_offset_with_its_header(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    log = tmp_path / "events.csv"
    log.write_bytes(HEADER + b"".join(csv_line(n) for n in range(1, 6)) + csv_line(6)[:9])
    code, s1, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    assert s1["records_read"] == 5 and values(sandbox) == [1, 2, 3, 4, 5]
    assert "the last line has no newline yet" in err

    with open(log, "ab") as f:  # the unfinished row, then rows 7-10 (10 spans two lines)
        f.write(csv_line(6)[9:] + b"".join(csv_line(n) for n in range(7, 11)))
    code, s2, err = run(sandbox, tmp_path, log)
    assert code == 0, err
    assert s2["records_read"] == 5
    assert values(sandbox) == list(range(1, 11))
    notes = {int(e["event_value"]): e["properties"]["note"] for e in sandbox.events()}
    assert notes[10] == "a, quoted\nnote" and notes[7] == "plain"


def test_a_rewritten_parquet_file_is_reported_as_replaced(sandbox: Sandbox, tmp_path: Path) -> None:
    data = write_parquet(tmp_path / "e.parquet", 1, 20)
    code, _, err = run(sandbox, tmp_path, data)
    assert code == 0, err
    write_parquet(data, 1, 40)  # an export job wrote the file again, larger
    code, summary, err = run(sandbox, tmp_path, data)
    assert code == 1
    assert "was replaced since the last run" in err and summary["records_read"] == 0
    code, summary, err = run(sandbox, tmp_path, data, extra=("--restart-changed",))
    assert code == 0, err
    assert summary["records_read"] == 40
