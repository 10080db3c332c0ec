"""`send_dataframe(ddf)`: a Dask DataFrame imported by the cluster, one sender per partition.

The same job as `revbridge_cli.spark`, in Dask's terms: each input partition is tagged with
the rows' input positions (and, unless the caller names the user's column, the client's key
of each row: `partition.user_key`), `shuffle` brings each user's rows into one partition,
and `map_partitions` sorts each partition (the caller's order, or the timestamp column; ties
in input order) and sends it through `send_records` with its own lanes (`engines.task`). The
driver merges the partitions' reports (`engines.result`). Needs `pip install
'.[dask]'` from the source tree. (A module of this package named `dask`: absolute imports mean
`import dask` below is the library, never this file.)
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import dask.dataframe as dd
import orjson
import pandas as pd

from revbridge_cli.api import Connection
from revbridge_cli.engines import partition
from revbridge_cli.engines import task as engine_task
from revbridge_cli.engines.result import EngineResult, merge
from revbridge_cli.engines.rows import to_record
from revbridge_cli.errors import UsageError

_KEY = "__revbridge_user_key"
_POSITION = "__revbridge_position"
_CHUNK_ROWS = 10_000
_PARTITION_BITS = 40  # a position is (input partition << 40) + row: input order, globally


def send_dataframe(
    ddf: dd.DataFrame,
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
    """Send every row of `ddf` (a record per row, null or NaN meaning absent); the arguments
    are `revbridge_cli.spark.send_dataframe`'s. Runs on the current Dask scheduler (a
    `distributed.Client` if one is active)."""
    started = time.monotonic()
    count = partitions or ddf.npartitions
    if count < 1:
        raise UsageError(f"partitions must be at least 1, got {count}")
    plan = engine_task.make_plan(
        options,
        connection=connection,
        rejected_dir=rejected_dir,
        map_record=map_record,
        max_in_flight=max_in_flight,
        parallelism=min(count, _threads()),
    )
    columns = list(ddf.columns)
    keys = _names(user_key)
    missing = [c for c in keys if c not in columns]
    order = _names(order_by) or (["timestamp"] if "timestamp" in columns else [])
    missing += [c for c in order if c not in columns]
    if missing:
        raise UsageError(f"no such column: {', '.join(missing)}")
    meta = ddf._meta.assign(**{_POSITION: pd.Series(dtype="int64")})
    if not keys:
        meta = meta.assign(**{_KEY: pd.Series(dtype=object)})
    tagged = ddf.map_partitions(_tag, not keys, meta=meta)
    shuffled = tagged.shuffle(on=keys or _KEY, npartitions=count)
    report_meta = pd.DataFrame({"report": pd.Series(dtype=object)})
    sent = shuffled.map_partitions(_send_partition, plan, order, keys, meta=report_meta)
    frame = sent.compute()
    reports = [orjson.loads(text) for text in frame["report"]]
    return merge(
        reports,
        elapsed_seconds=time.monotonic() - started,
        rejected_dir=plan.rejected_dir,
    )


def _tag(
    pdf: pd.DataFrame, with_key: bool, partition_info: dict[str, Any] | None = None
) -> pd.DataFrame:
    """Runs on the workers, per input partition: positions, and the key if asked."""
    number = partition_info["number"] if partition_info else 0
    start = number << _PARTITION_BITS
    tagged = pdf.assign(**{_POSITION: range(start, start + len(pdf))})
    if with_key:
        keys = [partition.user_key_text(to_record(row)) for row in _rows(pdf)]
        tagged[_KEY] = pd.Series(keys, index=pdf.index, dtype=object)
    return tagged


def _send_partition(
    pdf: pd.DataFrame,
    plan: engine_task.TaskPlan,
    order: list[str],
    keys: list[str],
    partition_info: dict[str, Any] | None = None,
) -> pd.DataFrame:
    """Runs on the workers, once per output partition (and again if Dask re-runs it)."""
    number = partition_info["number"] if partition_info else 0
    ordered = pdf.sort_values([*order, _POSITION], kind="stable")
    ordered = ordered.drop(columns=[_POSITION] + ([] if keys else [_KEY]))
    report = engine_task.run_partition(plan, _rows(ordered), number, None)
    return pd.DataFrame({"report": [orjson.dumps(report).decode()]})


def _rows(pdf: pd.DataFrame) -> Iterator[dict[str, Any]]:
    """Rows as dicts, a chunk of columns at a time: `tolist()` per column is a C loop, where
    iterating rows of Arrow-backed columns (pandas 3's strings) costs a Python call per cell;
    chunks keep the dicts of a partition from being all built at once."""
    names = [str(c) for c in pdf.columns]
    for start in range(0, len(pdf), _CHUNK_ROWS):
        chunk = pdf.iloc[start : start + _CHUNK_ROWS]
        columns = [chunk.iloc[:, i].tolist() for i in range(len(names))]
        for values in zip(*columns, strict=True):
            yield dict(zip(names, values, strict=True))


def _threads() -> int:
    """How many tasks run at once: the distributed client's threads, else this machine's."""
    try:
        from distributed import default_client

        return max(1, int(sum(default_client().nthreads().values())))
    except (ImportError, ValueError):
        return os.cpu_count() or 1


def _names(value: str | Sequence[str] | None) -> list[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)
