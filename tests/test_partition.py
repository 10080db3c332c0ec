"""The engines' pure parts: a record's user key (the client's own), a DataFrame row as a
record (null is absent), a task's share of the cluster's cap, and the driver's merge."""

from __future__ import annotations

import math
import pickle
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import orjson
import pytest

from revbridge_cli.engines import task as engine_task
from revbridge_cli.engines.partition import user_key, user_key_text
from revbridge_cli.engines.result import merge, summary_from_json, worst_exit_code
from revbridge_cli.engines.rows import to_record
from revbridge_cli.errors import UsageError
from revbridge_cli.report.summary import Summary
from revbridge_cli.shape.parts import UserPart, shape

FLAT = {
    "user_id": "u1",
    "email": "a@x.io",
    "event_name": "buy",
    "timestamp": "2026-01-15T14:30:00Z",
}
API = {"identifiers": {"email": "a@x.io", "user_id": "u1", "first_name": "Ada"},
       "events": [{"event_name": "buy"}]}  # fmt: skip
NESTED_FLAT = {"identifiers": {"email": "a@x.io"}, "user_id": "u1", "event_name": "buy"}


def client_key(record: dict[str, Any]) -> bytes:
    """How the client's lanes group the record: the key of its shaped part."""
    (part,) = shape(record, (0, 1, 0))
    assert isinstance(part, UserPart)
    return part.key


@pytest.mark.parametrize(
    "record",
    [
        FLAT,
        API,
        NESTED_FLAT,
        {"userIndex": 0, "message": "m", "kind": "rejected", "user": API, "source": "f:1"},
        {"userIndex": None, "message": "m", "kind": "invalid", "user": None,
         "raw": orjson.dumps(FLAT).decode(), "source": "f:2"},
        {"user_id": 7, "event_name": "buy"},
        {"users": [API, {"identifiers": {"user_id": "other"}, "events": [{"event_name": "e"}]}]},
    ],
)  # fmt: skip
def test_the_partition_key_is_the_clients_grouping_key_for_every_shape(
    record: dict[str, Any],
) -> None:
    assert user_key(record) == client_key(record if "users" not in record else API)


def test_one_user_in_any_shape_has_one_key_and_other_users_another() -> None:
    assert user_key(FLAT) == user_key(API) == user_key(NESTED_FLAT)
    assert user_key({**FLAT, "user_id": "u2"}) != user_key(FLAT)
    assert user_key({"user_id": 1, "event_name": "e"}) != user_key({"user_id": "1"})
    assert user_key_text(FLAT) == user_key(FLAT).decode()  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "record", [{"event_name": "no user"}, 42, {"userIndex": 0, "message": "m", "raw": "{bad"},
               {"identifiers": "x", "events": []}, {"users": []}],
)  # fmt: skip
def test_a_record_that_names_no_user_has_no_key(record: Any) -> None:
    assert user_key(record) is None or user_key(record) == user_key({})


def test_null_and_nan_are_absent_at_every_depth() -> None:
    row = {
        "user_id": "u1",
        "email": None,
        "revenue": float("nan"),
        "event_value": 2.5,
        "identifiers": {"user_id": "u1", "phone_number": None},
        "events": [{"event_name": "e", "revenue": None}],
        "tags": ["a", None],
    }
    assert to_record(row) == {
        "user_id": "u1",
        "event_value": 2.5,
        "identifiers": {"user_id": "u1"},
        "events": [{"event_name": "e"}],
        "tags": ["a", None],
    }
    assert row["email"] is None  # the row itself is left as it was


def test_values_json_has_no_word_for_become_the_nearest_json() -> None:
    pd = pytest.importorskip("pandas")
    np = pytest.importorskip("numpy")
    moment = datetime(2026, 1, 15, 15, 30, tzinfo=timezone(timedelta(hours=1)))
    row = {
        "aware": moment,
        "naive": datetime(2026, 1, 15, 14, 30, 0, 250000),
        "day": date(2026, 1, 15),
        "price": Decimal("49.99"),
        "count": np.int64(3),
        "ratio": np.float64("nan"),
        "flag": np.bool_(True),
        "stamp": pd.Timestamp("2026-01-15T14:30:00Z"),
        "missing_stamp": pd.NaT,
        "missing": pd.NA,
        "array": np.array([1, 2]),
    }
    assert to_record(row) == {
        "aware": "2026-01-15T14:30:00Z",
        "naive": "2026-01-15T14:30:00.250000",
        "day": "2026-01-15",
        "price": 49.99,
        "count": 3,
        "flag": True,
        "stamp": "2026-01-15T14:30:00Z",
        "array": [1, 2],
    }
    assert type(to_record(row)["count"]) is int
    assert not math.isnan(to_record({"x": 1.0})["x"])


def test_the_cluster_cap_is_shared_by_the_tasks_that_run_at_once() -> None:
    assert engine_task.per_task_concurrency(16, 4) == 4
    assert engine_task.per_task_concurrency(10, 4) == 2
    assert engine_task.per_task_concurrency(2, 8) == 1  # never below one
    with pytest.raises(UsageError):
        engine_task.per_task_concurrency(0, 2)


def test_a_plan_is_checked_on_the_driver(tmp_path: Any) -> None:
    plan = engine_task.make_plan(
        {"max_users": 10}, connection=None, rejected_dir=tmp_path, map_record=None,
        max_in_flight=8, parallelism=4,
    )  # fmt: skip
    assert plan.options == {"max_users": 10, "concurrency": 2}
    assert plan.rejected_dir == str(tmp_path)
    with pytest.raises(UsageError, match="unknown option"):
        engine_task.make_plan({"max_user": 1}, connection=None, rejected_dir=None,
                              map_record=None, max_in_flight=None, parallelism=1)  # fmt: skip
    with pytest.raises(UsageError, match="rejected_dir"):
        engine_task.make_plan({"rejected": "x"}, connection=None, rejected_dir=None,
                              map_record=None, max_in_flight=None, parallelism=1)  # fmt: skip
    with pytest.raises(UsageError, match="not both"):
        engine_task.make_plan({"concurrency": 4}, connection=None, rejected_dir=None,
                              map_record=None, max_in_flight=8, parallelism=1)  # fmt: skip
    (tmp_path / "part-00000.ndjson").write_text("")
    with pytest.raises(UsageError, match="earlier job"):
        engine_task.make_plan({}, connection=None, rejected_dir=tmp_path, map_record=None,
                              max_in_flight=None, parallelism=1)  # fmt: skip


def test_an_engine_refuses_limit_and_passes_the_window_through(tmp_path: Any) -> None:
    """A per-partition limit is not the job's first N; a window means the same in every task."""
    with pytest.raises(UsageError, match="limit: not an engine option") as info:
        engine_task.make_plan({"limit": 10}, connection=None, rejected_dir=None,
                              map_record=None, max_in_flight=None, parallelism=2)  # fmt: skip
    assert "df.limit(N)" in str(info.value)
    since = datetime(2026, 1, 10)
    plan = engine_task.make_plan({"since": since, "until": "2026-02-01"}, connection=None,
                                 rejected_dir=None, map_record=None, max_in_flight=None,
                                 parallelism=2)  # fmt: skip
    assert plan.options == {"since": since, "until": "2026-02-01"}
    with pytest.raises(UsageError, match="until: expected an ISO 8601 date"):  # on the driver
        engine_task.make_plan({"until": "soon"}, connection=None, rejected_dir=None,
                              map_record=None, max_in_flight=None, parallelism=2)  # fmt: skip


def report(partition: int, attempt: int, **counts: Any) -> dict[str, Any]:
    summary = Summary(**counts).to_json()
    return {"partition": partition, "attempt": attempt, "summary": summary,
            "rejected_rows": [{"p": partition}]}  # fmt: skip


def test_the_merge_sums_counts_and_counts_a_rerun_partition_as_possible_duplicates() -> None:
    reports = [
        report(1, 1, events_read=30, events_accepted=28, events_rejected=2, rejected_rows=1,
               exit_code=1, possible_duplicate_events=2, reasons=Counter({"bad": 1})),
        report(0, 0, events_read=50, events_accepted=50, requests=3),
    ]  # fmt: skip
    result = merge(reports, elapsed_seconds=2.0, rejected_dir=None)
    assert result.accepted_events == 78 and result.rejected == 1
    assert result.summary.events_read == 80 and result.summary.requests == 3
    assert result.possible_duplicate_events == 2 + 28  # the re-run's accepted events, a bound
    assert result.partitions == 2 and result.partitions_retried == (1,)
    assert result.exit_code == 1
    assert result.rejected_rows == [{"p": 0}, {"p": 1}]
    data = result.as_dict()
    assert data["partitions_retried"] == [1] and data["unaccounted_events"] == 0
    assert summary_from_json(data).events_accepted == 78


def test_the_partitions_warnings_before_sending_say_which_partition() -> None:
    warned = report(1, 0, warnings_before_send=["in the first 3 records: 3 of 3 events ..."])
    result = merge([report(0, 0), warned], elapsed_seconds=1.0, rejected_dir=None)
    assert result.summary.warnings_before_send == [
        "partition 1: in the first 3 records: 3 of 3 events ..."
    ]


def test_the_worst_partition_sets_the_exit_code() -> None:
    assert worst_exit_code([0, 0]) == 0
    assert worst_exit_code([0, 1, 0]) == 1
    assert worst_exit_code([1, 3, 69]) == 3
    assert worst_exit_code([]) == 0


def test_a_fatal_partition_says_which_one() -> None:
    result = merge(
        [report(2, 0, fatal="authentication refused (401)", exit_code=3)],
        elapsed_seconds=1.0,
        rejected_dir="/tmp/rej",
    )
    assert result.fatal == "partition 2: authentication refused (401)"
    assert result.exit_code == 3 and result.rejected_rows is None
    assert result.rejected_file == "/tmp/rej"


def test_aware_timestamps_in_any_zone_come_out_in_utc() -> None:
    assert to_record({"t": datetime(2026, 1, 15, 14, 30, tzinfo=UTC)}) == {
        "t": "2026-01-15T14:30:00Z"
    }


# ---- connection keywords, turned into a masked Connection on the driver ----------------------

_KEY = "rbk_live_engine_keyword_secret_9876"


def _plan(**options: Any) -> engine_task.TaskPlan:
    connection = options.pop("connection", None)
    return engine_task.make_plan(
        options,
        connection=connection,
        rejected_dir=None,
        map_record=None,
        max_in_flight=None,
        parallelism=2,
    )


def test_send_records_keywords_become_a_masked_connection_in_the_plan() -> None:
    plan = _plan(base_url="http://127.0.0.1:9", api_key=_KEY, customer_id="cust_k")
    assert plan.connection is not None and plan.connection.customer_id == "cust_k"
    assert plan.connection.api_key.reveal() == _KEY
    assert not {"base_url", "api_key", "customer_id"} & set(plan.options)
    assert _KEY not in repr(plan) and _KEY not in str(plan)  # what a task's repr shows
    assert _KEY not in repr(pickle.loads(pickle.dumps(plan)))  # as an executor gets it


def test_connection_keywords_are_refused_on_the_driver_with_the_way_out() -> None:
    with pytest.raises(UsageError, match="customer_id missing") as missing:
        _plan(api_key=_KEY)
    assert "connection=" in str(missing.value) and "REVBRIDGE_API_KEY" in str(missing.value)
    assert "REVBRIDGE_CUSTOMER_ID" in str(missing.value) and _KEY not in str(missing.value)
    conn = engine_task.Connection("http://127.0.0.1:9", api_key=_KEY, customer_id="c")
    with pytest.raises(UsageError, match="either connection= or"):
        _plan(connection=conn, customer_id="c")
    with pytest.raises(UsageError, match="is not a URL"):
        _plan(base_url="ftp://example.com", api_key=_KEY, customer_id="c")
    assert _plan(api_key=None, customer_id=None).connection is None  # None: not given
