"""`--since` / `--until` and `--limit`: a time window of an export, or its first N records.

Through the real command against the real sandbox, with `--state` reruns: records outside the
window are counted and settled (never set aside), and a limited run leaves the rest for the
next one, each record sent exactly once. Books: records read = accepted + set aside + outside
the window + pending.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import cli, cli_json, event, seqs, write_ndjson

from revbridge_cli.errors import UsageError
from revbridge_cli.sandbox import Sandbox
from revbridge_cli.shape.parts import UserPart
from revbridge_cli.shape.window import Window


def dated(n: int, day: int, **extra: Any) -> dict[str, Any]:
    return event(f"u{n}", n, timestamp=f"2026-01-{day:02d}T12:00:00Z", **extra)


def send(sb: Sandbox, tmp: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    state = ("--state", str(tmp / "run.state"), "--rejected", str(tmp / "rejected.ndjson"))
    done, summary = cli_json("send", *args, *state, sb=sb)
    return done.returncode, summary, done.stderr


def test_a_window_sends_its_events_and_settles_the_others(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [dated(n, n) for n in range(1, 29)]
    untimed = {k: v for k, v in event("untimed", 100).items() if k != "timestamp"}
    records.append(untimed)  # no timestamp: in no window
    records.append(dated(101, 5, revenue="x"))  # invalid: set aside, window or not
    data = write_ndjson(tmp_path / "jan.ndjson", records)
    window = ("--since", "2026-01-10", "--until", "2026-01-20T00:00:00+00:00")
    code, summary, err = send(sandbox, tmp_path, str(data), *window)
    assert code == 1, err  # the invalid record
    assert seqs(sandbox) == list(range(10, 20))
    assert summary["events_outside_window"] == summary["records_outside_window"] == 19
    assert summary["untimed_outside_window"] == 1
    assert summary["records_invalid"] == summary["rejected_rows"] == 1
    assert (
        summary["records_read"]
        == 30
        == (
            summary["events_accepted"]
            + summary["rejected_rows"]
            + summary["records_outside_window"]
        )
    )
    assert summary["unaccounted_events"] == 0
    assert "1 events have no timestamp, so no place in --since/--until" in err
    rows = [orjson.loads(line) for line in (tmp_path / "rejected.ndjson").read_bytes().splitlines()]
    assert [row["user"]["events"][0]["seq"] for row in rows] == [101]  # outside is not rejected

    # Settled, all of it: the same state sees nothing new, whatever the window.
    code, again, err = send(sandbox, tmp_path, str(data), "--since", "2026-01-01")
    assert code == 0, err
    assert again["records_read"] == 0 and "nothing new since the last run" in err
    assert seqs(sandbox) == list(range(10, 20))


def test_a_window_splits_a_users_events(sandbox: Sandbox, tmp_path: Path) -> None:
    user = {
        "identifiers": {"user_id": "multi"},
        "events": [
            {"event_name": "a", "timestamp": "2026-01-05T00:00:00Z", "seq": 1},
            {"event_name": "b", "timestamp": "2026-01-15T01:00:00+02:00", "seq": 2},  # 14th
            {"event_name": "b", "timestamp": "2026-01-16T01:00:00+02:00", "seq": 4},  # 15th
            {"event_name": "c", "timestamp": "2026-01-15T23:30:00", "seq": 3},  # UTC
        ],
    }
    data = write_ndjson(tmp_path / "users.ndjson", [user])
    done, summary = cli_json("send", str(data), "--since", "2026-01-15", sb=sandbox)
    assert done.returncode == 0, done.stderr
    assert seqs(sandbox) == [3, 4]
    assert (summary["events_read"], summary["events_outside_window"]) == (4, 2)
    assert summary["records_outside_window"] == 0 and summary["unaccounted_events"] == 0


def test_limit_sends_the_first_n_and_state_reruns_send_the_rest_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", [event(f"u{n}", n) for n in range(1, 26)])
    for accepted_so_far in (10, 20, 25):
        code, summary, err = send(sandbox, tmp_path, str(data), "--limit", "10")
        assert code == 0, err
        assert seqs(sandbox) == list(range(1, accepted_so_far + 1))  # exactly once
        assert summary["records_read"] == summary["events_accepted"]
        if accepted_so_far < 25:
            assert f"--limit 10 reached after {data}:{accepted_so_far}" in err
    report = orjson.loads(cli("state", "show", "--json", str(tmp_path / "run.state")).stdout)
    assert report["files"][0]["lines_done"] == 25 and report["files"][0]["done"]
    code, summary, err = send(sandbox, tmp_path, str(data), "--limit", "10")
    assert code == 0 and summary["records_read"] == 0 and "nothing new" in err


def test_limit_without_state_reads_n_records_over_several_files(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    a = write_ndjson(tmp_path / "a.ndjson", [event(f"u{n}", n) for n in range(1, 4)])
    b = write_ndjson(tmp_path / "b.ndjson", [event(f"u{n}", n) for n in range(4, 9)])
    c = write_ndjson(tmp_path / "c.ndjson", [event("u9", 9)])
    done, summary = cli_json("send", str(a), str(b), str(c), "--limit", "5", sb=sandbox)
    assert done.returncode == 0, done.stderr
    assert seqs(sandbox) == [1, 2, 3, 4, 5]
    assert [f["records_read"] for f in summary["files"]] == [3, 2]  # c was not opened
    assert "--limit 5 reached after" in done.stderr and "b.ndjson:2" in done.stderr


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (("--since", "last tuesday"), "--since: expected an ISO 8601 date"),
        (("--until", "2026-13-01"), "--until: expected an ISO 8601 date"),
        (("--since", "2026-02-01", "--until", "2026-01-01"), "is not before --until"),
        (("--limit", "0"), "--limit"),
    ],
)
def test_bad_window_or_limit_is_a_usage_error(
    tmp_path: Path, args: tuple[str, ...], needle: str
) -> None:
    data = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    done = cli("send", "--dry-run", str(data), *args)
    assert done.returncode == 2 and needle in done.stderr and "Traceback" not in done.stderr


def test_the_window_is_half_open_and_reads_offsets() -> None:
    window = Window.of("2026-01-10", "2026-01-11T00:00:00+01:00")
    assert window is not None
    assert window.since == datetime(2026, 1, 10, tzinfo=UTC)
    assert window.contains("2026-01-10T00:00:00Z")  # since: inclusive
    assert not window.contains("2026-01-10T23:00:00Z")  # until (23:00Z): exclusive
    assert window.contains("2026-01-10T23:59:59+01:00")
    assert not window.contains("2026-01-09T23:59:59.999Z")
    assert not window.contains(None)
    assert Window.of(None, None) is None
    with pytest.raises(UsageError):
        Window.of("2026-01-02", "2026-01-02")


def test_select_keeps_the_part_when_every_event_fits() -> None:
    window = Window.of("2026-01-01", None)
    assert window is not None
    events = [{"event_name": "a", "timestamp": "2026-01-02T00:00:00Z"}, {"event_name": "b"}]
    part = UserPart(b"k", {"user_id": "u"}, None, events, (0, 1, 10), untimed=1)
    kept, outside, untimed = window.select(part)
    assert kept is not None and kept.events == events[:1] and kept.untimed == 0
    assert (outside, untimed) == (1, 1)
    assert part.events == events  # the part it was given is left as it was
    whole = UserPart(b"k", {"user_id": "u"}, None, events[:1], (0, 1, 10))
    assert window.select(whole) == (whole, 0, 0)
