"""The Python API's `since=`, `until=` and `limit=`: the CLI's `--since`/`--until`/`--limit`.

Against real sandboxes: the counts a program gets equal the CLI's `--json` for the same input
and the same values; `date`/`datetime` bounds mean what the CLI's strings mean (a naive one is
UTC, never the machine's local time); `send_files(state=..., limit=N)` called again sends the
next N, each record once; a bad value raises from the package's hierarchy. Books: records read
= accepted + set aside + outside the window + pending, on every call.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from books import rejected_rows
from conftest import API_KEY, CUSTOMER_ID, cli_json, conn, event, seqs, write_ndjson

from revbridge_cli import RevbridgeError, UsageError, send_files, send_records
from revbridge_cli.sandbox import Sandbox
from revbridge_cli.shape.window import Window, parse_bound

pytestmark = pytest.mark.e2e

# What a run did, as the --json summary counts it (not how fast, nor into which file).
COUNTS = (
    "records_read", "records_invalid", "events_read", "users_distinct", "users_sent",
    "events_sent", "users_accepted", "events_accepted", "users_rejected", "events_rejected",
    "rejected_rows", "events_pending", "records_skipped", "events_outside_window",
    "untimed_outside_window", "records_outside_window", "events_without_timestamp",
    "reasons", "notices", "input_errors", "files", "exit_code", "unaccounted_events",
)  # fmt: skip


def dated(n: int, when: str, **extra: Any) -> dict[str, Any]:
    return event(f"u{n}", n, timestamp=when, **extra)


def january(tmp: Path) -> Path:
    """28 events a day apart, one without a timestamp, one invalid: every kind of outcome."""
    records = [dated(n, f"2026-01-{n:02d}T12:00:00Z") for n in range(1, 29)]
    records.insert(14, {k: v for k, v in event("untimed", 100).items() if k != "timestamp"})
    records.insert(6, dated(101, "2026-01-12T00:00:00Z", revenue="x"))
    return write_ndjson(tmp / "jan.ndjson", records)


def assert_books_balance(summary: dict[str, Any]) -> None:
    assert summary["unaccounted_events"] == 0
    assert summary["records_read"] == (
        summary["events_accepted"]
        + summary["rejected_rows"]
        + summary["records_outside_window"]
        + summary["events_pending"]
    ), summary


@pytest.fixture
def second() -> Iterator[Sandbox]:
    """A sandbox of its own for the API's run, so both runs start from an empty database."""
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID) as sb:
        yield sb


@pytest.mark.parametrize(
    ("since", "until"),
    [
        ("2026-01-05", "2026-01-20T00:00:00+00:00"),  # the CLI's very strings
        (date(2026, 1, 5), datetime(2026, 1, 20)),  # a date; a naive datetime: UTC
        (datetime(2026, 1, 5, 9, tzinfo=timezone(timedelta(hours=9))), None),  # 00:00 UTC
    ],
)
def test_window_and_limit_counts_equal_the_clis_json(
    sandbox: Sandbox, second: Sandbox, tmp_path: Path, since: Any, until: Any
) -> None:
    data = january(tmp_path)
    flags = ["--since", "2026-01-05", "--limit", "22"]
    if until is not None:
        flags += ["--until", "2026-01-20T00:00:00+00:00"]
    done, cli_summary = cli_json(
        "send", str(data), *flags, "--rejected", str(tmp_path / "cli.ndjson"), sb=sandbox
    )
    assert done.returncode == 1, done.stderr  # the invalid record
    result = send_files(
        [data],
        connection=conn(second),
        since=since,
        until=until,
        limit=22,
        rejected=tmp_path / "api.ndjson",
    )
    api_summary = result.as_dict()
    assert {k: api_summary[k] for k in COUNTS} == {k: cli_summary[k] for k in COUNTS}
    assert seqs(second) == seqs(sandbox) == list(range(5, 20 if until else 21))
    # outside: the 1st to the 4th, the untimed one, and with `until` the 20th
    assert api_summary["events_outside_window"] == 5 + (until is not None)
    assert api_summary["records_read"] == 22 and api_summary["untimed_outside_window"] == 1
    assert api_summary["records_invalid"] == result.rejected == 1
    assert_books_balance(api_summary)
    assert_books_balance(cli_summary)
    assert [r["user"]["events"][0]["seq"] for r in rejected_rows(tmp_path / "api.ndjson")] == [101]


def test_send_records_takes_the_window_and_the_limit_too(sandbox: Sandbox) -> None:
    records = [dated(n, f"2026-01-{n:02d}T12:00:00Z") for n in range(1, 29)]
    result = send_records(
        iter(records), connection=conn(sandbox), since="2026-01-10", until=date(2026, 1, 20),
        limit=15,
    )  # fmt: skip
    assert result.ok, result.as_dict()
    assert seqs(sandbox) == list(range(10, 16))  # records 1-15 read, 10-15 in the window
    summary = result.as_dict()
    assert summary["records_read"] == 15 and summary["records_outside_window"] == 9
    reached = "--limit 15 reached after <records>:15; nothing after it was read"
    assert summary["notices"] == [reached]
    assert_books_balance(summary)


def test_a_naive_datetime_is_utc_whatever_the_machines_time_zone(
    sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokyo is UTC+9: read as local time, since=01:00 would be 16:00 UTC the day before and
    take the 20:00 UTC event in; read as UTC (as the CLI reads "2026-01-10T01:00"), it does not."""
    monkeypatch.setenv("TZ", "Asia/Tokyo")
    time.tzset()
    try:
        assert datetime(2026, 1, 10, 1).astimezone().utcoffset() == timedelta(hours=9)
        records = [
            dated(1, "2026-01-09T20:00:00Z"),  # after 01:00 Tokyo time, before 01:00 UTC
            dated(2, "2026-01-10T00:30:00Z"),
            dated(3, "2026-01-10T01:00:00Z"),
        ]
        result = send_records(records, connection=conn(sandbox), since=datetime(2026, 1, 10, 1))
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()
    assert seqs(sandbox) == [3]
    assert result.as_dict()["events_outside_window"] == 2
    assert_books_balance(result.as_dict())
    assert parse_bound(datetime(2026, 1, 10, 1), "since") == parse_bound("2026-01-10T01:00", "s")


def test_a_state_and_a_limit_send_the_next_n_on_each_call(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [event(f"u{n % 7}", n) for n in range(1, 26)]
    records.insert(12, event("bad", 99, revenue="x"))  # line 13, read by the second call
    data = write_ndjson(tmp_path / "events.ndjson", records)
    state = tmp_path / "run.state"
    lines_done = 0
    for call, expected in enumerate(([*range(1, 11)], [*range(1, 20)], [*range(1, 26)])):
        rejected = tmp_path / f"rejected-{call}.ndjson"
        result = send_files(
            [data], connection=conn(sandbox), state=state, limit=10, rejected=rejected
        )
        summary = result.as_dict()
        assert seqs(sandbox) == expected  # each record sent exactly once, over the calls
        lines_done += summary["records_read"]
        assert summary["records_read"] == (10 if call < 2 else 6)
        assert result.rejected == (1 if call == 1 else 0)
        assert len(rejected_rows(rejected)) == result.rejected
        assert_books_balance(summary)
        if call < 2:
            assert summary["notices"] == [
                f"--limit 10 reached after {data}:{lines_done}; run the same command again "
                "for the next ones"
            ]
    assert lines_done == 26
    again = send_files([data], connection=conn(sandbox), state=state, limit=10)
    assert again.ok and again.as_dict()["records_read"] == 0
    assert seqs(sandbox) == list(range(1, 26))


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"since": "last tuesday"}, "since: expected an ISO 8601 date"),
        ({"until": "2026-13-01"}, "until: expected an ISO 8601 date"),
        ({"since": 1767225600}, "since: expected .* not int"),
        ({"since": date(2026, 2, 1), "until": "2026-01-01"}, "is not before until"),
        ({"since": datetime(2026, 1, 2, tzinfo=UTC), "until": datetime(2026, 1, 2)}, "not before"),
        ({"limit": 0}, "limit must be at least 1"),
        ({"limit": -5}, "limit must be at least 1"),
        ({"limit": "10"}, "limit must be an integer, not '10'"),
        ({"limit": 2.5}, "limit must be an integer"),
        ({"limit": True}, "limit must be an integer"),
        ({"window": Window.of("2026-01-01", None)}, "unknown option 'window'"),
    ],
)
def test_a_bad_window_or_limit_raises_from_the_hierarchy(
    sandbox: Sandbox, tmp_path: Path, options: dict[str, Any], message: str
) -> None:
    data = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    for call in (
        lambda: send_records([event("u1", 1)], connection=conn(sandbox), **options),
        lambda: send_files([data], connection=conn(sandbox), **options),
        lambda: send_records([event("u1", 1)], dry_run=True, **options),
    ):
        with pytest.raises(UsageError, match=message) as info:
            call()
        assert isinstance(info.value, RevbridgeError)
    assert sandbox.requests() == []
    assert os.listdir(tmp_path) == ["in.ndjson"]  # no rejected file, no state
