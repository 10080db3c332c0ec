"""Events/s of an import run by Dask (1 and 2 workers) beside one process's `send_records`.

    python bench/engines.py                  # 200,000 events, medians of 3
    python bench/engines.py --events 50000 --repeat 1

The same generated events (bench/generate.py, seed 42: flat, 5 per user, interleaved) are
held in memory once, as a list of dicts for `send_records` and as a pandas frame for Dask, so
no contender pays for parsing a file. Dask runs twice per cluster: partitioned on the client's
own key of each row (computed in Python, the default) and on the `user_id` column (hashed by
Dask itself, `user_key="user_id"`). The server is `revbridge sandbox --no-store` in its own
process (bench/measure.py). The Dask cluster (`distributed.LocalCluster`, one thread per
worker process) is started before the clock runs; each Dask run includes the shuffle on the
user key, the per-partition sort, the rows' conversion and the sends. The figures go to
stdout and to bench/results/engines.md. Needs the [dask] extra.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import dask
import dask.dataframe as dd
import generate
import pandas as pd
from distributed import Client, LocalCluster
from measure import API_KEY, BENCH, CUSTOMER_ID, SandboxProcess

from revbridge_cli import Connection, send_records
from revbridge_cli.dask import send_dataframe


def timed(run: Callable[[], Any], expected: int) -> float:
    """Seconds for one run; a run that does not get every event accepted is an error."""
    started = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - started
    if result.accepted_events != expected or not result.ok:
        raise SystemExit(f"a run did not get every event accepted: {result.as_dict()}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--partitions", type=int, default=4, help="Dask output partitions")
    args = parser.parse_args()
    n = args.events
    # `user_properties` holds dicts: Dask would turn an object column into strings.
    dask.config.set({"dataframe.convert-string": False})
    records = list(generate._events(n, generate.SEED))
    frame = pd.DataFrame.from_records(records)
    figures: dict[str, list[float]] = {"send_records, 1 process": []}
    with SandboxProcess() as server:
        conn = Connection(server.url, api_key=API_KEY, customer_id=CUSTOMER_ID)
        for _ in range(args.repeat):
            figures["send_records, 1 process"].append(
                timed(lambda: send_records(records, connection=conn), n)
            )
        for workers in (1, 2):
            with (
                LocalCluster(
                    n_workers=workers, threads_per_worker=1, processes=True,
                    dashboard_address=None,
                ) as cluster,
                Client(cluster),
            ):  # fmt: skip
                ddf = dd.from_pandas(frame, npartitions=args.partitions).persist()
                plural = "s" if workers > 1 else ""
                for label, key in (("the client's key", None), ('user_key="user_id"', "user_id")):
                    name = f"dask, {workers} worker{plural}, {label}"
                    figures[name] = []
                    for _ in range(args.repeat):
                        figures[name].append(
                            timed(
                                lambda ddf=ddf, key=key: send_dataframe(
                                    ddf, connection=conn, partitions=args.partitions, user_key=key
                                ),
                                n,
                            )
                        )
    lines = [
        f"{n:,} flat events, {n // generate.EVENTS_PER_USER:,} users interleaved (seed "
        f"{generate.SEED}); no-store sandbox in its own process; {os.cpu_count()} cores; "
        f"medians of {args.repeat} ({datetime.now(UTC):%Y-%m-%d %H:%M} UTC)",
        "",
        "| contender | wall s (median) | events/s | runs (s) |",
        "|---|---|---|---|",
    ]
    for name, runs in figures.items():
        median = statistics.median(runs)
        shown = ", ".join(f"{r:.2f}" for r in runs)
        lines.append(f"| {name} | {median:.2f} | {n / median:,.0f} | {shown} |")
    text = "\n".join(lines)
    print(text)
    (BENCH / "results" / "engines.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
