"""Warnings before the first request, and `--strict`: what the first records predict is said
while the sandbox has seen no request, and with --strict nothing is sent at all."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import base_env, cli_json, write_ndjson

from revbridge_cli.cli.options import load_mapping
from revbridge_cli.report.lookahead import Lookahead, time_like
from revbridge_cli.sandbox import Sandbox
from revbridge_cli.shape.near_miss import Tally


def _untimed(n: int, users: int = 10) -> list[dict[str, Any]]:
    """Events keyed by `uid` (an identifier the tool does not read) with their time in
    `occurred_at`: both are misattributions the first record already shows."""
    return [
        {
            "uid": f"u{i % users}",
            "email": f"u{i % users}@example.com",
            "event_name": "viewed",
            "occurred_at": "2026-01-15T14:30:00Z",
            "seq": i,
        }
        for i in range(n)
    ]


@pytest.mark.e2e
def test_the_warnings_come_while_the_server_has_seen_no_request(sandbox: Sandbox) -> None:
    """Deterministic ordering: the input is a pipe kept open, and its 3,000 records of 10
    users fill neither a request's users nor its bytes, so nothing can be sent until the pipe
    closes; the sample (1,000 records) is full long before. The warning line must be on stderr
    while the sandbox counts 0 requests, and the run then sends everything once the pipe ends."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "revbridge_cli", "send", "-", "--json", "--quiet"],
        env=base_env(sandbox),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdin is not None and proc.stderr is not None and proc.stdout is not None
    proc.stdin.write(b"".join(orjson.dumps(r) + b"\n" for r in _untimed(3000)))
    proc.stdin.flush()
    lines = [proc.stderr.readline().decode(), proc.stderr.readline().decode()]
    assert sandbox.stats()["requests"] == 0  # the lines came first, with --quiet too
    head = "revbridge: warning: in the first 1,000 records: "
    assert all(line.startswith(head) for line in lines)
    assert "--rename uid=user_id" in lines[0]
    assert "1,000 of 1,000 events have no timestamp" in lines[1]
    assert "--rename occurred_at=timestamp" in lines[1]
    out, err = proc.communicate()  # closes the pipe: the rest is read and sent
    summary = orjson.loads(out)
    assert proc.returncode == 0, err
    assert summary["events_accepted"] == 3000 and summary["unaccounted_events"] == 0
    assert len(summary["warnings_before_send"]) == 2
    assert sandbox.stats()["requests"] >= 1


@pytest.mark.e2e
def test_a_terminal_sees_the_warnings_above_the_live_display(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    import pexpect

    write_ndjson(tmp_path / "e.ndjson", _untimed(50))
    child = pexpect.spawn(
        sys.executable,
        ["-m", "revbridge_cli", "send", "e.ndjson"],
        env=base_env(sandbox),
        cwd=str(tmp_path),
        encoding="utf-8",
        timeout=None,
        dimensions=(24, 400),  # one warning, one line
    )
    child.expect(pexpect.EOF)
    child.close()
    seen = " ".join(child.before.split())  # a line the terminal wrapped is one line again
    assert child.exitstatus == 0, seen
    assert "revbridge: warning: in the first 50 records:" in seen
    assert "--rename occurred_at=timestamp" in seen and "Traceback" not in seen
    assert sandbox.api_key not in seen


def test_strict_sends_nothing_and_exits_2(sandbox: Sandbox, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "e.ndjson", _untimed(2500, users=2500))
    result, summary = cli_json("send", "e.ndjson", "--strict", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert sandbox.stats()["requests"] == 0
    assert summary["requests"] == 0 and summary["events_accepted"] == 0
    assert summary["unaccounted_events"] == 0  # what was read went to the rejected file
    assert summary["events_read"] == summary["events_undelivered"] > 0
    assert summary["records_read"] < 2500  # reading stopped at the sample
    assert len(summary["warnings_before_send"]) == 2
    assert "--strict: 2 warnings before the first request; nothing was sent" in result.stderr
    assert result.stderr.count("revbridge: warning: in the first") == 2


def test_fast_lane_records_are_in_the_sample_too(sandbox: Sandbox, tmp_path: Path) -> None:
    """Valid flat events take the fast lane: the look-ahead notes them there (no other
    warning: they carry no identifier-like key), and --strict stops on their missing time."""
    records = [{"user_id": f"u{i}", "event_name": "x", "created_at": "2026-01-15"}
               for i in range(1200)]  # fmt: skip
    write_ndjson(tmp_path / "flat.ndjson", records)
    result, summary = cli_json("send", "flat.ndjson", "--strict", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    (warning,) = summary["warnings_before_send"]
    assert warning.startswith("in the first 1,000 records: 1,000 of 1,000 events have no")
    assert "--rename created_at=timestamp" in warning
    assert sandbox.stats()["requests"] == 0 and summary["unaccounted_events"] == 0


def test_strict_from_a_profile_key(sandbox: Sandbox, tmp_path: Path) -> None:
    (tmp_path / "c.toml").write_text("[profiles.cron]\nstrict = true\n")
    write_ndjson(tmp_path / "e.ndjson", _untimed(5))
    args = ("send", "e.ndjson", "--config", "c.toml", "--profile", "cron")
    result, summary = cli_json(*args, sb=sandbox, cwd=tmp_path)
    assert result.returncode == 2, result.stderr
    assert sandbox.stats()["requests"] == 0 and summary["unaccounted_events"] == 0


def test_strict_with_nothing_to_warn_about_sends(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [{"user_id": "u1", "event_name": "x", "timestamp": "2026-01-15T14:30:00Z"}] * 3
    write_ndjson(tmp_path / "ok.ndjson", records)
    result, summary = cli_json("send", "ok.ndjson", "--strict", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == 3 and summary["warnings_before_send"] == []


def test_the_final_summary_keeps_the_whole_runs_tallies(sandbox: Sandbox, tmp_path: Path) -> None:
    write_ndjson(tmp_path / "e.ndjson", _untimed(1500, users=1500))
    result, summary = cli_json("send", "e.ndjson", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["events_without_timestamp"] == 1500  # the whole run, not the sample
    assert "1,500 records carry identifier-like keys" in summary["notices"][0]
    assert "in the first 1,000 records" in summary["warnings_before_send"][0]
    assert summary["unaccounted_events"] == 0


def test_a_preset_on_data_that_is_not_that_vendors(sandbox: Sandbox, tmp_path: Path) -> None:
    """Flat events in the API's own names under --preset segment: the API's names pass
    through (so they are sent), and the look-ahead says the data is not Segment's."""
    records = [{"user_id": f"u{i}", "event_name": "x", "timestamp": "2026-01-15T14:30:00Z"}
               for i in range(4)]  # fmt: skip
    write_ndjson(tmp_path / "flat.ndjson", records)
    args = ("send", "flat.ndjson", "--preset", "segment")
    result, summary = cli_json(*args, sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    (warning,) = summary["warnings_before_send"]
    assert "4 have none of the fields a segment export identifies users by" in warning
    assert "userId" in warning and "user_id, event_name, timestamp" in warning
    assert summary["events_accepted"] == 4 and summary["unaccounted_events"] == 0
    strict = cli_json(*args, "--strict", sb=sandbox, cwd=tmp_path)[0]
    assert strict.returncode == 2 and sandbox.stats()["requests"] == 1  # the first run's


def test_the_api_takes_strict(sandbox: Sandbox) -> None:
    from revbridge_cli import send_records

    conn = {"base_url": sandbox.url, "api_key": sandbox.api_key, "customer_id": sandbox.customer_id}
    result = send_records(_untimed(3), strict=True, **conn)
    assert result.exit_code == 2 and sandbox.stats()["requests"] == 0
    assert len(result.summary.warnings_before_send) == 2
    assert result.summary.unaccounted_events == 0


# ---- the pure part --------------------------------------------------------------------------


def test_time_like_column_names() -> None:
    assert all(map(time_like, ("occurred_at", "createdAt", "event_time", "ts", "Time")))
    assert not any(map(time_like, ("timestamp", "user_id", "seq", "status")))


def test_the_sample_is_bounded_and_says_its_size() -> None:
    look = Lookahead(limit=3)
    assert not look.note({"event_name": "x", "created_at": "2026-01-01"}, 1, 1)
    assert not look.note(None, 0, 0)  # an unreadable line is a record of the sample too
    assert look.note({"event_name": "x"}, 0, 1)
    tally = Tally()
    tally.note({"uid": "a"})
    near, untimed = look.warnings(tally)
    assert near.startswith("in the first 3 records: 1 record carries identifier-like keys")
    assert "1 of 2 events have no timestamp" in untimed
    assert "--rename created_at=timestamp" in untimed


def test_no_time_column_suggests_require_timestamp() -> None:
    look = Lookahead()
    look.note({"event_name": "x"}, 1, 1)
    (untimed,) = look.warnings(None)
    assert untimed.endswith("(--require-timestamp sets such events aside)")


def test_a_preset_fits_its_own_vendors_records() -> None:
    look = Lookahead(load_mapping(None, "segment", None, None))
    look.note({"userId": "u1", "event": "x", "timestamp": "2026-01-01T00:00:00Z"}, 0, 1)
    look.note({"anonymousId": "a1", "type": "page", "timestamp": "2026-01-01T00:00:00Z"}, 0, 1)
    assert look.warnings(None) == []


def test_unmapped_drop_passes_the_apis_own_names_through(tmp_path: Path) -> None:
    """Issue 20: `unmapped = "drop"` dropped an `event_name` column, so every row was set
    aside as "event_name is required". The API's own names pass through; a named rule wins."""
    (tmp_path / "m.toml").write_text(
        '[options]\nunmapped = "drop"\n[fields]\n"identifiers.user_id" = "uid"\n'
    )
    mapping = load_mapping(str(tmp_path / "m.toml"), None, None, None)
    assert mapping is not None
    row = {"uid": "u1", "event_name": "paid", "revenue": 5, "email": "a@x.io", "extra": 1}
    user = mapping.apply(row)
    assert user["identifiers"] == {"user_id": "u1", "email": "a@x.io"}
    assert user["events"] == [{"event_name": "paid", "revenue": 5}]  # `extra` is dropped
    renamed = load_mapping(str(tmp_path / "m.toml"), None, ["kind=event_name"], None)
    assert renamed is not None
    assert renamed.apply({**row, "kind": "named"})["events"][0]["event_name"] == "named"
