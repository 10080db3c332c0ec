"""`send_dataframe(df)`: a Spark DataFrame imported by the cluster, one sender per task.

One CPython process sends about 100k events/s; a data lake needs the cluster's CPUs to read,
shape and serialize. The job is: partition by the user's key (`partition.user_key`, or the
caller's column), so each user is sent by exactly one task; sort each partition by the
caller's order (or the timestamp column), ties kept in input order; then every partition goes
through `send_records` with its own lanes (`engines.task`), and the driver merges the tasks'
reports (`engines.result`). Needs `pip install '.[spark]'` from the source tree (PySpark 4).
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import orjson
import pyarrow as pa
from pyspark import TaskContext
from pyspark.sql import DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import StringType

from revbridge_cli.api import Connection
from revbridge_cli.engines import partition
from revbridge_cli.engines import task as engine_task
from revbridge_cli.engines.result import EngineResult, merge
from revbridge_cli.engines.rows import to_record
from revbridge_cli.errors import UsageError

_KEY = "__revbridge_user_key"
_POSITION = "__revbridge_position"
_REPORT_SCHEMA = "report string"
# The columns that can hold who a record's user is, in any shape the client reads.
_IDENTITY_COLUMNS = (
    "user_id", "email", "phone_number", "anon_id", "identifiers", "events", "users", "user",
    "raw", "userIndex", "message",
)  # fmt: skip


def send_dataframe(
    df: DataFrame,
    *,
    user_key: str | Sequence[str] | None = None,
    order_by: str | Sequence[str] | None = None,
    connection: Connection | None = None,
    rejected_dir: str | os.PathLike[str] | None = None,
    max_in_flight: int | None = None,
    partitions: int | None = None,
    map_record: Callable[[dict[str, Any]], Any] | None = None,
    **options: Any,
) -> EngineResult:
    """Send every row of `df` (a record per row, null meaning absent); docs/scale-out.md.

    `user_key`: the column(s) naming the user, hashed by Spark itself (fastest); by default
    the client's own key of each row, computed in Python. `order_by`: the column(s) each
    user's events are sent in (default `timestamp`, if there is one), ties in input order.
    `max_in_flight` caps the requests in flight over all tasks; `partitions` the number of
    tasks (default: the cores Spark has). Other options are `send_records`', `since`/`until`
    included; `limit` is refused (`engine_task.LIMIT_REFUSED`: it would be each task's).
    """
    started = time.monotonic()
    spark = df.sparkSession
    cores = spark.sparkContext.defaultParallelism
    count = partitions or cores
    if count < 1:
        raise UsageError(f"partitions must be at least 1, got {count}")
    plan = engine_task.make_plan(
        options,
        connection=connection,
        rejected_dir=rejected_dir,
        map_record=map_record,
        max_in_flight=max_in_flight,
        parallelism=min(count, cores),
    )
    keyed, keys, added = _with_key(df, user_key)
    order = _names(order_by) or (["timestamp"] if "timestamp" in df.columns else [])
    missing = [c for c in order if c not in df.columns]
    if missing:
        raise UsageError(f"order_by: no such column {', '.join(missing)}")
    shuffled = (
        keyed.withColumn(_POSITION, F.monotonically_increasing_id())
        .repartition(count, *[F.col(_quoted(k)) for k in keys])
        .sortWithinPartitions(*[F.col(_quoted(c)) for c in order], F.col(_POSITION))
        .drop(_POSITION, *added)
    )
    sent = shuffled.mapInArrow(functools.partial(_send_partition, plan), _REPORT_SCHEMA)
    reports = [orjson.loads(row["report"]) for row in sent.collect()]
    return merge(
        reports,
        elapsed_seconds=time.monotonic() - started,
        rejected_dir=plan.rejected_dir,
    )


def _with_key(
    df: DataFrame, user_key: str | Sequence[str] | None
) -> tuple[DataFrame, list[str], list[str]]:
    """The frame, the column(s) to partition on, and the ones added for it (dropped later)."""
    names = _names(user_key)
    if names:
        missing = [c for c in names if c not in df.columns]
        if missing:
            raise UsageError(f"user_key: no such column {', '.join(missing)}")
        return df, names, []
    present = [c for c in _IDENTITY_COLUMNS if c in df.columns]
    if not present:
        raise UsageError(
            "the DataFrame has no identifier column (user_id, email, phone_number, anon_id, "
            "identifiers, ...): name the user's column with user_key="
        )
    # A lambda: PySpark would read `_row_key`'s type hints as an Arrow UDF's, and warn.
    key_of = F.udf(lambda row: _row_key(row), StringType())
    key = key_of(F.struct(*[F.col(_quoted(c)) for c in present]))
    return df.withColumn(_KEY, key), [_KEY], [_KEY]


def _row_key(row: Any) -> str | None:
    """Runs on the executors: the client's key of the row's record."""
    return partition.user_key_text(to_record(row.asDict(recursive=True)))


def _send_partition(plan: engine_task.TaskPlan, batches: Iterator[Any]) -> Iterator[Any]:
    """Runs on the executors, once per partition (and again if the engine re-runs it)."""
    context = TaskContext.get()
    number = context.partitionId() if context is not None else 0
    attempt = context.attemptNumber() if context is not None else 0
    rows = (row for batch in batches for row in batch.to_pylist())
    report = engine_task.run_partition(plan, rows, number, attempt)
    yield pa.RecordBatch.from_pylist([{"report": orjson.dumps(report).decode()}])


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"
