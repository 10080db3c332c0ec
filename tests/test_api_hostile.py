"""The Python API under a hostile caller, against a real sandbox.

Records that raise mid-run end the run in order (what was read is sent or set aside, and
counted) and reach the caller as `RunAborted` with the partial result and the caller's own
exception as its cause. Any argument of a wrong type or value is a `UsageError` naming it,
before anything is sent; Hypothesis throws any value of any type at every keyword. The books
balance after every run: records read = accepted + set aside + pending.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from books import assert_books_balance
from conftest import API_KEY, CUSTOMER_ID, conn, event, seqs
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from revbridge_cli import (
    Connection,
    RevbridgeError,
    RunAborted,
    UsageError,
    asend_records,
    send_files,
    send_records,
)
from revbridge_cli.arguments import ARGUMENTS
from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e


class Broken(Exception):
    pass


def failing_after(n: int, bad_at: frozenset[int] = frozenset()) -> Iterator[dict[str, Any]]:
    for i in range(n):
        yield {"event_name": "no identifier"} if i in bad_at else event(f"u{i % 7}", i)
    raise Broken("the export's cursor\nwas closed")


def test_records_that_raise_end_the_run_in_order_with_the_partial_result(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rejected = tmp_path / "rejected.ndjson"
    records = failing_after(50, bad_at=frozenset({3, 17}))
    with pytest.raises(RunAborted) as info:
        send_records(records, connection=conn(sandbox), max_users=3, rejected=rejected)
    error = info.value
    assert isinstance(error, RevbridgeError)
    assert isinstance(error.__cause__, Broken)
    assert str(error) == (
        "<records>:51: the records raised Broken: the export's cursor was closed; "
        "nothing after it was read"
    )
    result = error.result
    summary = result.as_dict()
    assert summary["records_read"] == 50 and summary["events_accepted"] == 48
    assert summary["unaccounted_events"] == 0
    assert summary["input_errors"] == [str(error)]
    assert result.exit_code == error.exit_code == 1
    assert sorted(seqs(sandbox)) == [i for i in range(50) if i not in (3, 17)]
    rows = assert_books_balance(summary, rejected)
    assert sorted(row["source"] for row in rows) == ["<records>:18", "<records>:4"]


def test_records_that_raise_at_once_send_nothing_and_say_where(sandbox: Sandbox) -> None:
    def nothing() -> Iterator[dict[str, Any]]:
        raise Broken("no rows")
        yield {}  # a generator

    with pytest.raises(RunAborted, match=r"<records>:1: the records raised Broken") as info:
        send_records(nothing(), connection=conn(sandbox))
    summary = info.value.result.as_dict()
    assert (summary["records_read"], summary["unaccounted_events"]) == (0, 0)
    assert sandbox.requests() == []


def test_the_async_api_raises_the_same_with_rows_kept_in_memory(sandbox: Sandbox) -> None:
    records = failing_after(20, bad_at=frozenset({5}))
    with pytest.raises(RunAborted) as info:
        asyncio.run(asend_records(records, connection=conn(sandbox)))
    result = info.value.result
    assert result.accepted_events == 19 and result.rejected == 1
    assert [row["source"] for row in result.rejected_rows] == ["<records>:6"]
    assert result.as_dict()["unaccounted_events"] == 0
    assert len(seqs(sandbox)) == 19


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda c: send_records([event("u", 1)], connection=c, rename=5), "^rename must be"),
        (lambda c: send_files(5, connection=c), "^paths must be"),
        (lambda c: send_files([], connection=c), "^paths is empty"),
        (lambda c: send_files(["a.ndjson", None], connection=c), "^paths must be"),
        (lambda c: send_records([event("u", 1)], connection=c, rejected=5), "^rejected must"),
        (lambda c: send_records([event("u", 1)], connection=c, format="xml"), "^format must"),
        (lambda c: send_records([event("u", 1)], connection=c, timeout=float("nan")), "^timeout"),
        (lambda c: send_records([event("u", 1)], connection=c, grace=float("inf")), "^grace"),
        (lambda c: send_records(None, connection=c), "^records must be"),
        (lambda c: send_records("events.ndjson", connection=c), "use send_files"),
        (lambda c: send_records(event("u", 1), connection=c), "not one dict"),
        (lambda c: send_records([event("u", 1)], connection=c, dry_run="no"), "^dry_run must"),
        (lambda c: send_records([event("u", 1)], connection=c, map=5), "^map must"),
        (lambda c: send_records([event("u", 1)], connection=c, preset=["ga4"]), "^preset must"),
        (lambda c: send_records([event("u", 1)], connection=c, log_file="a\x00b"), "^log_file"),
        (lambda c: send_records([event("u", 1)], connection=c, concurrency=2.5), "^concurrency"),
        (lambda c: send_records([event("u", 1)], connection=c, max_retries="3"), "^max_retries"),
        (lambda c: send_records([event("u", 1)], connection=c, event_id_property=""), "^event_id"),
        (lambda c: send_records([event("u", 1)], connection=c, rename={"a": 1}), "^rename must"),
        (lambda c: send_records([event("u", 1)], connection=c, colour=1), "^unknown option"),
        (lambda c: Connection(c.base_url, api_key=123, customer_id="c"), "^api_key must"),
        (lambda c: Connection(5, api_key=API_KEY, customer_id="c"), "^base_url must"),
        (lambda c: Connection(c.base_url, api_key=API_KEY, customer_id=None), "^customer_id"),
    ],
)
def test_a_wrong_argument_is_a_usage_error_naming_it_and_nothing_is_sent(
    sandbox: Sandbox, call: Any, message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        call(conn(sandbox))
    assert API_KEY not in str(info.value) and "\n" not in str(info.value)
    assert sandbox.requests() == []


def test_a_log_file_that_cannot_be_written_is_refused_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    with pytest.raises(UsageError, match="log_file"):
        send_records([event("u1", 1)], connection=conn(sandbox), log_file=tmp_path / "no" / "x")
    assert sandbox.requests() == []


# ---- any value of any type, at every keyword --------------------------------------------------

_NAMES = sorted({*ARGUMENTS, "connection", "base_url", "api_key", "customer_id"})
_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=0, max_value=70),
    st.floats(),
    st.text(max_size=30),
    st.binary(max_size=10),
    st.sampled_from(["keep", "lenient", "csv", "ga4", "2026-01-15", "a=b", API_KEY, ".", ""]),
    st.lists(st.text(max_size=8), max_size=3),
    st.dictionaries(st.text(max_size=8), st.one_of(st.text(max_size=8), st.integers())),
    st.dates(),
    st.datetimes(timezones=st.one_of(st.none(), st.timezones())),
    st.timedeltas(),
    st.builds(Path, st.text(max_size=10)),
    st.builds(object),
    st.just(float("nan")),
    st.just(UTC),
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(name=st.sampled_from(_NAMES), value=_VALUES)
def test_any_value_at_any_keyword_is_a_usage_error_or_a_balanced_run(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str, value: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # a rejected= or log_file= of any name lands here
    options: dict[str, Any] = {"connection": conn(sandbox), "grace": 0}
    if name in ("base_url", "api_key", "customer_id"):  # dry: a URL drawn could be anywhere's
        options = {"base_url": sandbox.url, "api_key": API_KEY, "customer_id": CUSTOMER_ID}
        options["dry_run"] = True
    options[name] = value
    try:
        result = send_records([event("u1", 1), event("u2", 2)], **options)
    except UsageError as exc:
        text = str(exc)
        assert API_KEY not in text and "\n" not in text and text
        return
    summary = result.as_dict()
    assert summary["unaccounted_events"] == 0
    assert summary["records_read"] == 2 or summary["records_outside_window"] or name == "limit"
    assert API_KEY not in repr(summary)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(value=_VALUES)
def test_any_value_as_the_records_or_the_paths_is_a_usage_error_or_a_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, value: Any
) -> None:
    monkeypatch.chdir(tmp_path)  # "." or a glob reads an empty directory, not the tree's
    for call in (send_records, send_files):
        try:
            call(value, dry_run=True, rejected=os.devnull)
        except UsageError as exc:
            assert "\n" not in str(exc)


def test_date_bounds_still_work_beside_the_checks(sandbox: Sandbox) -> None:
    today = date(2026, 1, 15)
    records = [event("u1", 1, timestamp="2026-01-15T10:00:00Z")]
    result = send_records(
        records,
        connection=conn(sandbox),
        since=today,
        until=datetime(2026, 1, 16, tzinfo=UTC) + timedelta(0),
        rename={"user_id": "user_id"},
    )
    assert result.ok and result.accepted_events == 1
