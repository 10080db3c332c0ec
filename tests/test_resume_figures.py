"""The figures of a resumed run add up: records done by earlier runs + records read now = the
records in the input, whatever stopped the run before (SIGINT, SIGTERM, kill -9) and for a
cron rerun over a grown file. The input has blank lines, so a line number is not a count.
"""

from __future__ import annotations

import signal
import sqlite3
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import event, seqs
from test_durable import SLOW, finish, run, start, wait_for_requests

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e

N = 300


def with_blank_lines(path: Path, first: int, last: int, mode: str = "wb") -> Path:
    """One event a line, and a blank line after every 25th: lines outnumber records."""
    with open(path, mode) as f:
        for n in range(first, last + 1):
            f.write(orjson.dumps(event(f"u{n}", n)) + b"\n")
            if n % 25 == 0:
                f.write(b"\n")
    return path


def assert_books(summary: dict[str, Any], total: int) -> None:
    assert summary["records_skipped"] + summary["records_read"] == total, summary
    assert summary["unaccounted_events"] == 0
    (entry,) = summary["files"]
    assert entry["records_skipped"] + entry["records_read"] == total, entry


def interrupt(sb: Sandbox, tmp: Path, data: Path, how: str) -> dict[str, Any]:
    """A slow run stopped after six stored requests (a condition, not a sleep)."""
    sb.set_faults(latency=0.1)
    proc = start(sb, tmp, data, extra=(*SLOW, "--grace", "600"))
    wait_for_requests(sb, 6, proc)
    if how == "kill -9":
        proc.kill()
        proc.wait()
        first: dict[str, Any] = {}
    else:
        proc.send_signal(signal.SIGINT if how == "SIGINT" else signal.SIGTERM)
        code, first, err = finish(proc)
        assert code == (130 if how == "SIGINT" else 143), err
        assert first["unaccounted_events"] == 0
    sb.set_faults(latency=0.0)
    return first


@pytest.mark.parametrize("how", ["SIGINT", "SIGTERM", "kill -9"])
def test_after_an_interruption_the_rerun_figures_add_up_to_the_input(
    sandbox: Sandbox, tmp_path: Path, how: str
) -> None:
    data = with_blank_lines(tmp_path / "events.ndjson", 1, N)
    first = interrupt(sandbox, tmp_path, data, how)
    code, second, err = run(sandbox, tmp_path, data, extra=SLOW)
    assert code == 0, err
    assert set(seqs(sandbox)) == set(range(1, N + 1))
    assert second["records_skipped"] > 0
    assert_books(second, N)
    if first:  # an orderly stop: what the first run read and the rerun skipped is the same
        assert first["records_read"] >= second["records_skipped"]
    assert f"records done by earlier runs {second['records_skipped']:,}" in " ".join(err.split())


def test_a_cron_rerun_over_a_grown_file_adds_up(sandbox: Sandbox, tmp_path: Path) -> None:
    data = with_blank_lines(tmp_path / "events.ndjson", 1, N)
    code, first, err = run(sandbox, tmp_path, data)
    assert code == 0, err
    assert_books(first, N)
    with_blank_lines(data, N + 1, N + 40, mode="ab")
    code, second, err = run(sandbox, tmp_path, data)
    assert code == 0, err
    assert (second["records_skipped"], second["records_read"]) == (N, 40)
    assert_books(second, N + 40)
    code, third, err = run(sandbox, tmp_path, data)  # unchanged: skipped without reading
    assert code == 0, err
    assert (third["records_skipped"], third["records_read"]) == (N + 40, 0)
    assert sorted(seqs(sandbox)) == list(range(1, N + 41))


def test_a_journal_of_the_previous_version_counts_its_done_records_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Schema 3 kept no count: the rerun counts the records up to the watermark by reading
    them (nothing is sent), and the journal keeps the count from then on."""
    data = with_blank_lines(tmp_path / "events.ndjson", 1, N)
    interrupt(sandbox, tmp_path, data, "SIGTERM")
    with sqlite3.connect(tmp_path / "run.state") as db:
        db.execute("update files set done_records = null")
        db.execute("update meta set value = '3' where key = 'schema'")
    code, second, err = run(sandbox, tmp_path, data, extra=SLOW)
    assert code == 0, err
    assert_books(second, N)
    assert sorted(seqs(sandbox)) == list(range(1, N + 1))
    with sqlite3.connect(tmp_path / "run.state") as db:
        assert db.execute("select done_records from files").fetchone() == (N,)


def test_after_ctrl_c_on_a_terminal_the_rerun_figures_add_up(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """Ctrl-C typed on the terminal the run shows its live display on (a pseudo-terminal)."""
    import sys

    import pexpect
    from conftest import base_env

    data = with_blank_lines(tmp_path / "events.ndjson", 1, N)
    sandbox.set_faults(latency=0.1)
    child = pexpect.spawn(
        sys.executable,
        ["-m", "revbridge_cli", "send", str(data), "--state", str(tmp_path / "run.state"),
         "--rejected", str(tmp_path / "rejected.ndjson"), *SLOW],
        env=base_env(sandbox, TERM="xterm-256color"), dimensions=(40, 120),
        encoding="utf-8", codec_errors="replace", timeout=60,
    )  # fmt: skip
    while len(sandbox.requests()) < 6:
        assert child.isalive(), child.read()
        child.expect([pexpect.TIMEOUT, pexpect.EOF], timeout=0.01)
    child.sendintr()
    output = child.read()
    child.close()
    assert child.exitstatus == 130, output
    assert "Traceback" not in output
    sandbox.set_faults(latency=0.0)
    code, second, err = run(sandbox, tmp_path, data, extra=SLOW)
    assert code == 0, err
    assert second["records_skipped"] > 0
    assert_books(second, N)
    assert set(seqs(sandbox)) == set(range(1, N + 1))
