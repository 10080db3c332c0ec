"""One engine task: a partition's rows sent through `send_records`, its report for the driver.

Spark and Dask differ in how they cut and move data, not in what a task does, so both run
this: rows become records (`rows.to_record`: null is absent), the records go through the
Python API with the task's own lanes and adaptive concurrency, and the task returns a report
the driver merges (`result.merge`). The connection is taken from the executor's
environment (`Connection.from_env()`) unless the caller passed one: `connection=`, or the
keywords `send_records` takes (`base_url=`, `api_key=`, `customer_id=`), which the driver turns
into a `Connection` before any task starts, so the key travels masked (its repr, in a task's
repr or a log, is `rbk_…abcd`) and never as a plain option. Rejected rows go to
`part-NNNNN.ndjson` under the rejected directory, written under an attempt's own name and
renamed when the attempt ends: a task the engine re-runs leaves one file, not the rows of
both attempts.
"""

from __future__ import annotations

import glob
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from revbridge_cli import contract
from revbridge_cli.api import Connection, send_records
from revbridge_cli.engines.rows import to_record
from revbridge_cli.errors import UsageError

# Options the engines set themselves, or that mean nothing for one partition of a job.
ENGINE_OWNED = frozenset(("rejected", "state", "restart_changed", "log_file", "records"))
# `limit` would be each task's own first N, so a job of P partitions would send up to P * N
# records, and which ones would depend on how the shuffle cut the data: not the job's first N.
# (`since`/`until` are per event, so they mean the same in every partition: they pass through.)
LIMIT_REFUSED = (
    "limit: not an engine option: each partition would send its own first N records, not the "
    "job's first N; limit the DataFrame itself (df.limit(N) in Spark, "
    "ddf.head(N, npartitions=-1, compute=False) in Dask)"
)


@dataclass(frozen=True)
class TaskPlan:
    """What every task of one job is given: picklable, and free of the key unless the caller
    passed `connection=` (then it travels, masked in any repr, inside the task)."""

    options: dict[str, Any] = field(default_factory=dict)
    connection: Connection | None = None
    rejected_dir: str | None = None
    map_record: Callable[[dict[str, Any]], Any] | None = None


def per_task_concurrency(max_in_flight: int, parallelism: int) -> int:
    """Each task's lanes: the cluster's cap shared by the tasks that run at once."""
    if max_in_flight < 1:
        raise UsageError(f"max_in_flight must be at least 1, got {max_in_flight}")
    return max(1, max_in_flight // max(1, parallelism))


def make_plan(
    options: Mapping[str, Any],
    *,
    connection: Connection | None,
    rejected_dir: str | os.PathLike[str] | None,
    map_record: Callable[[dict[str, Any]], Any] | None,
    max_in_flight: int | None,
    parallelism: int,
) -> TaskPlan:
    """The plan, checked on the driver: a bad option fails before any task starts."""
    from revbridge_cli.api import check_options

    if "limit" in options:
        raise UsageError(LIMIT_REFUSED)
    owned = sorted(ENGINE_OWNED & set(options))
    if owned:
        raise UsageError(
            f"{', '.join(owned)}: not an engine option (rejected rows go under rejected_dir, "
            "one file per partition)"
        )
    if connection is not None and not isinstance(connection, Connection):
        raise UsageError("connection must be a revbridge_cli.Connection")
    options, connection = _connection_keywords(options, connection)
    if map_record is not None and not callable(map_record):
        raise UsageError("map_record must be a function of one record")
    opts = dict(options)
    if max_in_flight is not None and "concurrency" in opts:
        raise UsageError(
            "give concurrency (each task's) or max_in_flight (the cluster's), not both"
        )
    if max_in_flight is not None:
        opts["concurrency"] = per_task_concurrency(max_in_flight, parallelism)
    check_options(opts)
    directory = None
    if rejected_dir is not None:
        directory = os.path.abspath(os.fspath(rejected_dir))
        if glob.glob(os.path.join(directory, "part-*.ndjson")):
            raise UsageError(
                f"{directory} already holds part-*.ndjson files of an earlier job: choose a "
                "new rejected_dir (a re-run would mix two jobs' rows)"
            )
    return TaskPlan(opts, connection, directory, map_record)


_CONNECTION_KEYWORDS = ("base_url", "api_key", "customer_id")


def _connection_keywords(
    options: Mapping[str, Any], connection: Connection | None
) -> tuple[dict[str, Any], Connection | None]:
    """`send_records`' connection keywords, as the masked `Connection` the tasks get: on the
    driver, so a missing part fails here, not on every executor."""
    opts = dict(options)
    parts = {k: opts.pop(k) for k in _CONNECTION_KEYWORDS if opts.get(k) is not None}
    for name in _CONNECTION_KEYWORDS:
        opts.pop(name, None)  # given as None: not given
    if not parts:
        return opts, connection
    if connection is not None:
        raise UsageError("give either connection= or base_url/api_key/customer_id, not both")
    missing = [k for k in ("api_key", "customer_id") if k not in parts]
    if missing:
        raise UsageError(
            f"{' and '.join(missing)} missing: give api_key= and customer_id= (base_url= too, "
            "unless production), or connection=Connection(...), or neither and set "
            "REVBRIDGE_API_KEY and REVBRIDGE_CUSTOMER_ID in the executors' environment"
        )
    base_url = parts.get("base_url") or contract.PRODUCTION_URL
    try:
        made = Connection(base_url, api_key=parts["api_key"], customer_id=parts["customer_id"])
    except (TypeError, ValueError) as exc:
        raise UsageError(str(exc)) from None
    return opts, made


def run_partition(
    plan: TaskPlan, rows: Iterable[Mapping[str, Any]], partition: int, attempt: int | None
) -> dict[str, Any]:
    """Send one partition's rows, in the order given; the report is plain JSON-able data."""
    connection = plan.connection
    if connection is None and not plan.options.get("dry_run"):
        connection = Connection.from_env()
    target = final = None
    if plan.rejected_dir is not None:
        os.makedirs(plan.rejected_dir, exist_ok=True)
        final = os.path.join(plan.rejected_dir, f"part-{partition:05d}.ndjson")
        target = f"{final}.attempt-{uuid.uuid4().hex[:12]}"
    result = send_records(
        _records(plan, rows),
        **({"connection": connection} if connection is not None else {}),
        **({"rejected": target} if target is not None else {}),
        **plan.options,
    )
    rejected_file = None
    if final is not None and target is not None and os.path.exists(target):
        os.replace(target, final)
        rejected_file = final
    return {
        "partition": partition,
        "attempt": attempt,
        "summary": result.as_dict(),
        "rejected_file": rejected_file,
        "rejected_rows": result.rejected_rows,
    }


def _records(plan: TaskPlan, rows: Iterable[Mapping[str, Any]]) -> Iterator[Any]:
    change = plan.map_record
    for row in rows:
        record = to_record(row)
        yield change(record) if change is not None else record
