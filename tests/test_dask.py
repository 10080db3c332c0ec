"""`revbridge_cli.dask.send_dataframe` on a `distributed.LocalCluster` of two worker
processes, against a real sandbox: every event once, each user's events in input order."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from conftest import API_KEY, CUSTOMER_ID

from revbridge_cli import Connection, UsageError
from revbridge_cli.sandbox import Sandbox

dd = pytest.importorskip("dask.dataframe")
distributed = pytest.importorskip("distributed")
pd = pytest.importorskip("pandas")

from revbridge_cli.dask import send_dataframe  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.dask]


@pytest.fixture(scope="module")
def cluster() -> Iterator[Any]:
    with (
        distributed.LocalCluster(
            n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
        ) as local,
        distributed.Client(local) as client,
    ):
        yield client


def frame(n: int, users: int) -> Any:
    """Users interleaved through the input; NaN revenue and None email mean absent."""
    return pd.DataFrame(
        {
            "user_id": [f"u{i % users}" for i in range(n)],
            "email": [f"u{i % users}@example.com" if i % users % 2 else None for i in range(n)],
            "event_name": ["purchase" if i % 400 != 9 else None for i in range(n)],
            "timestamp": "2026-01-15T14:30:00Z",
            "seq": range(n),
            "revenue": [9.5 if i % 3 == 0 else float("nan") for i in range(n)],
        }
    )


def test_a_dask_frame_of_interleaved_users_arrives_once_in_order(cluster: Any) -> None:
    n = 3000
    bad = {i for i in range(n) if i % 400 == 9}
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID) as sb:
        conn = Connection(sb.url, api_key=sb.api_key, customer_id=sb.customer_id)
        ddf = dd.from_pandas(frame(n, users=37), npartitions=3)
        result = send_dataframe(ddf, connection=conn, partitions=4, max_users=7, max_in_flight=4)
        events = sb.events()
    assert result.partitions == 4
    assert result.accepted_events == n - len(bad) and result.rejected == len(bad)
    assert result.exit_code == 1 and result.as_dict()["unaccounted_events"] == 0
    assert sorted(e["properties"]["seq"] for e in events) == sorted(set(range(n)) - bad)
    by_user: dict[str, list[int]] = {}
    for e in events:  # storage order
        by_user.setdefault(e["user_key"], []).append(e["properties"]["seq"])
    assert len(by_user) == 37
    assert all(seq == sorted(seq) for seq in by_user.values())
    by_seq = {e["properties"]["seq"]: e for e in events}
    assert by_seq[0]["revenue"] == 9.5 and by_seq[1]["revenue"] is None  # NaN: absent
    assert "email" not in by_seq[0]["identifiers"]  # None: absent
    rows = result.rejected_rows
    assert rows is not None and len(rows) == len(bad)
    assert {r["message"] for r in rows} == {"events[0]: event_name is required"}
    assert sorted(r["user"]["events"][0]["seq"] for r in rows) == sorted(bad)


def test_a_named_key_column_with_events_in_a_given_order(cluster: Any) -> None:
    n = 1000
    pdf = frame(n, users=11)
    pdf["seq"] = [(i * 7) % n for i in range(n)]  # input not in seq order: order_by restores it
    pdf["event_name"] = "purchase"
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID) as sb:
        conn = Connection(sb.url, api_key=sb.api_key, customer_id=sb.customer_id)
        ddf = dd.from_pandas(pdf, npartitions=2)
        result = send_dataframe(ddf, connection=conn, user_key="user_id", order_by="seq")
        events = sb.events()
    assert result.ok and result.accepted_events == n
    by_user: dict[str, list[int]] = {}
    for e in events:
        by_user.setdefault(e["user_key"], []).append(e["properties"]["seq"])
    assert all(seq == sorted(seq) for seq in by_user.values())
    assert sum(len(s) for s in by_user.values()) == n


def test_a_window_passes_through_to_every_partition_and_limit_is_refused(cluster: Any) -> None:
    """`since`/`until` select events in each task as in one run; the job's counts add up."""
    n = 600
    pdf = frame(n, users=13)
    pdf["event_name"] = "purchase"
    pdf["timestamp"] = [f"2026-01-{1 + i % 30:02d}T12:00:00Z" for i in range(n)]
    inside = {i for i in range(n) if 10 <= 1 + i % 30 < 20}
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID) as sb:
        conn = Connection(sb.url, api_key=sb.api_key, customer_id=sb.customer_id)
        ddf = dd.from_pandas(pdf, npartitions=3)
        with pytest.raises(UsageError, match="limit: not an engine option"):
            send_dataframe(ddf, connection=conn, limit=100)
        assert sb.requests() == []  # refused on the driver, before any task
        result = send_dataframe(
            ddf, connection=conn, partitions=3, since="2026-01-10", until=datetime(2026, 1, 20)
        )
        stored = sorted(e["properties"]["seq"] for e in sb.events())
    assert result.ok and stored == sorted(inside)
    summary = result.as_dict()
    assert summary["events_outside_window"] == summary["records_outside_window"] == n - len(inside)
    assert summary["records_read"] == summary["events_accepted"] + summary["records_outside_window"]
    assert summary["unaccounted_events"] == 0


def test_the_connection_keywords_send_records_takes(cluster: Any) -> None:
    """Issue 20: base_url/api_key/customer_id are accepted as send_records takes them, and
    travel to the workers as a masked Connection; a missing part is refused on the driver."""
    key = "rbk_test_dask_keywords_8888"
    with Sandbox(api_key=key, customer_id="cust_kw") as sb:
        pdf = frame(300, users=11).dropna(subset=["event_name"])
        ddf = dd.from_pandas(pdf, npartitions=2)
        conn = {"base_url": sb.url, "api_key": key, "customer_id": "cust_kw"}
        result = send_dataframe(ddf, partitions=2, **conn)
        assert result.exit_code == 0, result.as_dict()
        n = len(pdf)
        assert result.accepted_events == n and result.as_dict()["unaccounted_events"] == 0
        assert len(sb.events()) == n
        assert key not in repr(result)
        before = sb.stats()["requests"]
        with pytest.raises(UsageError, match="api_key missing") as refused:
            send_dataframe(ddf, base_url=sb.url, customer_id="cust_kw")
        assert "REVBRIDGE_API_KEY" in str(refused.value)
        assert sb.stats()["requests"] == before
