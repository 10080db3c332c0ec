"""`revbridge_cli.spark.send_dataframe` on PySpark 4 in local mode, against a real sandbox.

One Spark session (local[2,2]: two cores, a failed task is tried twice) and one sandbox for
the module, since a JVM takes seconds to start; each test has its own users. The executors
take the connection from their environment (`spark.executorEnv.REVBRIDGE_*`, as on a
cluster), never from the plan.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import API_KEY, CUSTOMER_ID, cli_json, read_ndjson

from revbridge_cli.errors import UsageError
from revbridge_cli.sandbox import Sandbox

pyspark = pytest.importorskip("pyspark")
if shutil.which("java") is None:
    pytest.skip("PySpark needs Java", allow_module_level=True)

from pyspark.sql import SparkSession  # noqa: E402

from revbridge_cli.spark import send_dataframe  # noqa: E402

pytestmark = [pytest.mark.e2e, pytest.mark.spark]

SCHEMA = (
    "user_id string, email string, event_name string, timestamp string, seq long, "
    "revenue double, event_value double"
)


@pytest.fixture(scope="module")
def spark_sandbox() -> Iterator[tuple[SparkSession, Sandbox]]:
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID) as sb:
        spark = (
            SparkSession.builder.master("local[2,2]")
            .appName("revbridge-tests")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "4")
            .config("spark.executorEnv.REVBRIDGE_BASE_URL", sb.url)
            .config("spark.executorEnv.REVBRIDGE_API_KEY", sb.api_key)
            .config("spark.executorEnv.REVBRIDGE_CUSTOMER_ID", sb.customer_id)
            .getOrCreate()
        )
        spark.sparkContext.setLogLevel("ERROR")
        try:
            yield spark, sb
        finally:
            spark.stop()


def rows(prefix: str, n: int, users: int, bad_every: int = 0) -> list[dict[str, Any]]:
    """Users interleaved through the input; null revenue and NaN event_value mean absent."""
    out = []
    for i in range(n):
        out.append(
            {
                "user_id": f"{prefix}{i % users}",
                "email": f"{prefix}{i % users}@example.com" if i % users % 2 else None,
                "event_name": None if bad_every and i % bad_every == 7 else "purchase",
                "timestamp": "2026-01-15T14:30:00Z",
                "seq": i,
                "revenue": 9.5 if i % 3 == 0 else None,
                "event_value": 1.0 if i % 5 == 0 else float("nan"),
            }
        )
    return out


def stored(sb: Sandbox, prefix: str) -> list[dict[str, Any]]:
    """The test's events in the sandbox's storage order."""
    return [e for e in sb.events() if str(e["identifiers"].get("user_id", "")).startswith(prefix)]


def assert_once_in_order(events: list[dict[str, Any]], n: int, missing: set[int]) -> None:
    assert sorted(e["properties"]["seq"] for e in events) == sorted(set(range(n)) - missing)
    by_user: dict[str, list[int]] = {}
    for e in events:
        by_user.setdefault(e["user_key"], []).append(e["properties"]["seq"])
    assert all(seq == sorted(seq) for seq in by_user.values())


def test_a_dataframe_of_interleaved_users_arrives_once_in_order_with_rejected_part_files(
    spark_sandbox: tuple[SparkSession, Sandbox], tmp_path: Path
) -> None:
    spark, sb = spark_sandbox
    n, data = 3000, rows("s", 3000, users=41, bad_every=500)
    df = spark.createDataFrame(spark.sparkContext.parallelize(data, 3), SCHEMA)
    rejected = tmp_path / "rejected"
    result = send_dataframe(df, partitions=4, max_users=7, rejected_dir=rejected)
    bad = {i for i in range(n) if i % 500 == 7}
    assert result.partitions == 4 and result.partitions_retried == ()
    assert result.accepted_events == n - len(bad) and result.rejected == len(bad)
    assert result.exit_code == 1 and result.as_dict()["unaccounted_events"] == 0
    events = stored(sb, "s")
    assert_once_in_order(events, n, bad)
    by_seq = {e["properties"]["seq"]: e for e in events}
    assert by_seq[0]["revenue"] == 9.5 and by_seq[1]["revenue"] is None  # null: absent
    assert by_seq[0]["event_value"] == 1.0 and by_seq[1]["event_value"] is None  # NaN: absent
    assert "email" not in by_seq[0]["identifiers"]
    # One file per partition that set rows aside, in the format the CLI sends back.
    files = sorted(rejected.iterdir())
    assert files and all(f.name.startswith("part-") and f.suffix == ".ndjson" for f in files)
    fixed = []
    for f in files:
        for row in read_ndjson(f):
            assert row["message"] == "events[0]: event_name is required"
            row["user"]["events"][0]["event_name"] = "purchase"
            fixed.append(orjson.dumps(row))
    assert len(fixed) == len(bad)
    resend = tmp_path / "fixed.ndjson"
    resend.write_bytes(b"\n".join(fixed) + b"\n")
    done, summary = cli_json("send", str(resend), sb=sb)
    assert done.returncode == 0 and summary["events_accepted"] == len(bad)
    assert sorted(e["properties"]["seq"] for e in stored(sb, "s")) == list(range(n))


def test_a_named_key_column_and_order_column_and_a_cluster_cap(
    spark_sandbox: tuple[SparkSession, Sandbox],
) -> None:
    spark, sb = spark_sandbox
    n = 1200
    data = rows("k", n, users=13)
    for r in data:  # the input is not in seq order; order_by puts each user's events back
        r["seq"] = (r["seq"] * 7) % n
    df = spark.createDataFrame(spark.sparkContext.parallelize(data, 2), SCHEMA)
    result = send_dataframe(df, user_key="user_id", order_by="seq", max_in_flight=2)
    assert result.ok and result.accepted_events == n
    assert_once_in_order(stored(sb, "k"), n, set())


def crash_once(marker: str, at: int) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A map_record that kills its Python worker (no cleanup, as a lost executor would)
    at its `at`-th record of partition 0, the first time only."""
    seen = [0]

    def change(record: dict[str, Any]) -> dict[str, Any]:
        from pyspark import TaskContext

        seen[0] += 1
        context = TaskContext.get()
        if (
            seen[0] == at
            and context is not None
            and context.partitionId() == 0
            and not os.path.exists(marker)
        ):
            Path(marker).touch()
            os._exit(1)
        return record

    return change


def test_a_task_killed_mid_partition_is_rerun_its_duplicates_counted_and_deduplicable(
    spark_sandbox: tuple[SparkSession, Sandbox], tmp_path: Path
) -> None:
    spark, sb = spark_sandbox
    n = 2000
    df = spark.createDataFrame(spark.sparkContext.parallelize(rows("d", n, users=29), 2), SCHEMA)
    marker = tmp_path / "crashed"
    result = send_dataframe(
        df,
        partitions=2,
        max_users=5,  # the first request (5 users) is answered before reading goes on
        event_id_property="event_id",
        map_record=crash_once(str(marker), at=100),
    )
    assert marker.exists()  # the task did die
    assert result.partitions_retried == (0,)
    assert result.ok and result.accepted_events == n  # the final attempts, once each
    events = stored(sb, "d")
    copies = Counter(e["properties"]["seq"] for e in events)
    extra = sum(c - 1 for c in copies.values())
    assert set(copies) == set(range(n))
    assert extra > 0  # the dead attempt's accepted requests are stored twice...
    assert result.possible_duplicate_events >= extra  # ...and counted (a bound)
    ids: dict[int, set[str]] = {}
    for e in events:
        ids.setdefault(e["properties"]["seq"], set()).add(e["properties"]["event_id"])
    assert all(len(s) == 1 for s in ids.values())  # every copy of an event has one id
    assert len({next(iter(s)) for s in ids.values()}) == n  # and distinct events differ
    assert any("more than once" in notice for notice in result.summary.notices)


def test_the_connection_keywords_send_records_takes(
    spark_sandbox: tuple[SparkSession, Sandbox],
) -> None:
    """Issue 20: base_url/api_key/customer_id failed on the executors ("REVBRIDGE_API_KEY ...
    not set"). They are accepted, carried to the tasks as a masked Connection: the events go
    where the keywords say, not where the executors' environment points."""
    spark, env_sb = spark_sandbox
    key = "rbk_test_spark_keywords_7777"
    with Sandbox(api_key=key, customer_id="cust_kw") as other:
        df = spark.createDataFrame(spark.sparkContext.parallelize(rows("conn", 200, 9), 2), SCHEMA)
        result = send_dataframe(
            df, partitions=2, base_url=other.url, api_key=key, customer_id="cust_kw"
        )
        assert result.exit_code == 0 and result.accepted_events == 200
        assert result.as_dict()["unaccounted_events"] == 0
        assert len(stored(other, "conn")) == 200 and stored(env_sb, "conn") == []
        assert key not in repr(result) and key not in orjson.dumps(result.as_dict()).decode()
        before = other.stats()["requests"]
        with pytest.raises(UsageError, match="customer_id missing") as refused:
            send_dataframe(df, base_url=other.url, api_key=key)  # refused on the driver
        assert "connection=" in str(refused.value) and key not in str(refused.value)
        assert other.stats()["requests"] == before
