"""Deterministic benchmark input: realistic flat events, many users interleaved.

Every contender must read the very same bytes, and a rerun must not pay for generation again,
so files are generated once from a seed and cached under bench/data/ (git-ignored). The shape is
the common export: one flat event per line with the identifiers at top level, users interleaved
at random (the case that defeats naive grouping), a tenth of the lines carrying
`user_properties`, and about 200 bytes per line.

The same events also come as CSV and Parquet (`--formats` in run.py): Parquet carries them
exactly (`user_properties` as a struct column, null where absent); CSV cannot nest, so its
`loyalty_tier` and `lifetime_value` columns are what `user_properties` holds, and they arrive
as event properties (no mapping: the reading is what is measured).

Run alone to (re)generate: `python bench/generate.py --events 1000000` (`--csv`, `--parquet`).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import orjson

DATA_DIR = Path(__file__).resolve().parent / "data"
SEED = 42
EVENTS_PER_USER = 5  # 1,000,000 events -> 200,000 users, as the issue asks

_EVENT_NAMES = (
    ("page_view", 50),
    ("product_view", 20),
    ("add_to_cart", 10),
    ("search", 10),
    ("purchase", 5),
    ("signup", 3),
    ("refund", 2),
)
_CATEGORIES = ("shoes", "shirts", "books", "garden", "toys", "kitchen", "audio", "sports")
_CHANNELS = ("web", "ios", "android", "email")
_TIERS = ("bronze", "silver", "gold", "platinum")
_START = datetime(2025, 1, 1, tzinfo=UTC)
_SPAN_SECONDS = 365 * 24 * 3600


def _events(n_events: int, seed: int) -> Iterator[dict[str, object]]:
    """The events, in file order; the same (n_events, seed) always gives the same stream."""
    rng = random.Random(seed)
    n_users = max(1, n_events // EVENTS_PER_USER)
    names = [name for name, weight in _EVENT_NAMES for _ in range(weight)]
    for i in range(n_events):
        user = rng.randrange(n_users)
        name = rng.choice(names)
        sku = rng.randrange(20_000)
        moment = _START + timedelta(seconds=rng.randrange(_SPAN_SECONDS))
        event: dict[str, object] = {
            "user_id": f"u_{user:07d}",
            "email": f"user{user}@example.com",
            "event_name": name,
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "product_id": f"sku-{sku:05d}",
            "category": _CATEGORIES[sku % len(_CATEGORIES)],
            "channel": rng.choice(_CHANNELS),
            "session_id": f"s_{i // 7:08x}",
        }
        if name in ("purchase", "refund"):
            event["revenue"] = round(rng.uniform(5, 500), 2)
            event["event_value"] = rng.randrange(1, 5)
        elif name == "search":
            event["query"] = rng.choice(_CATEGORIES) + " " + rng.choice(_CHANNELS)
        if rng.random() < 0.1:
            event["user_properties"] = {
                "loyalty_tier": rng.choice(_TIERS),
                "lifetime_value": round(rng.uniform(0, 5000), 2),
            }
        yield event


def ndjson_path(n_events: int, seed: int = SEED) -> Path:
    return DATA_DIR / f"events-{n_events}-s{seed}.ndjson"


def json_array_path(n_events: int, seed: int = SEED) -> Path:
    return DATA_DIR / f"events-{n_events}-s{seed}.json"


CSV_COLUMNS = (
    "user_id", "email", "event_name", "timestamp", "product_id", "category", "channel",
    "session_id", "revenue", "event_value", "query", "loyalty_tier", "lifetime_value",
)  # fmt: skip
PARQUET_GROUP_ROWS = 65_536


def csv_path(n_events: int, seed: int = SEED) -> Path:
    return DATA_DIR / f"events-{n_events}-s{seed}.csv"


def parquet_path(n_events: int, seed: int = SEED) -> Path:
    return DATA_DIR / f"events-{n_events}-s{seed}.parquet"


def _write_csv(path: Path, n_events: int, seed: int) -> None:
    import csv

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    with open(tmp, "w", newline="", buffering=1 << 20) as out:
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for event in _events(n_events, seed):
            props = event.pop("user_properties", None) or {}
            row = {**event, **props}  # type: ignore[dict-item]
            writer.writerow(["" if row.get(c) is None else row[c] for c in CSV_COLUMNS])
    os.replace(tmp, path)


def _write_parquet(path: Path, n_events: int, seed: int) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema(
        [
            *((c, pa.string()) for c in CSV_COLUMNS[:8]),
            ("revenue", pa.float64()),
            ("event_value", pa.int64()),
            ("query", pa.string()),
            (
                "user_properties",
                pa.struct([("loyalty_tier", pa.string()), ("lifetime_value", pa.float64())]),
            ),
        ]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".part")
    names = schema.names
    with pq.ParquetWriter(tmp, schema) as writer:
        chunk: list[dict[str, object]] = []
        for event in _events(n_events, seed):
            chunk.append({name: event.get(name) for name in names})
            if len(chunk) == PARQUET_GROUP_ROWS:
                writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
                chunk = []
        if chunk:
            writer.write_table(pa.Table.from_pylist(chunk, schema=schema))
    os.replace(tmp, path)


def ensure_format(n_events: int, fmt: str, seed: int = SEED) -> Path:
    """The cached CSV or Parquet file of the same events, generated first if needed.

    Generated in a child process: writing Parquet takes pyarrow and a table's worth of memory,
    and the kernel starts a child's peak RSS from its parent's at fork, so a bench that wrote it
    in-process would report that peak for every contender it runs afterwards.
    """
    path = csv_path(n_events, seed) if fmt == "csv" else parquet_path(n_events, seed)
    if not path.exists():
        argv = [sys.executable, __file__, "--events", str(n_events), "--seed", str(seed)]
        subprocess.run([*argv, f"--{fmt}", "--here"], check=True, stdout=subprocess.DEVNULL)
    return path


def _write_format(n_events: int, fmt: str, seed: int) -> Path:
    path = csv_path(n_events, seed) if fmt == "csv" else parquet_path(n_events, seed)
    if not path.exists():
        (_write_csv if fmt == "csv" else _write_parquet)(path, n_events, seed)
    return path


def _write(path: Path, n_events: int, seed: int, array: bool) -> None:
    """Write through a temporary name: an interrupted run never leaves a short cached file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".part")
    dumps = orjson.dumps
    with open(tmp, "wb", buffering=1 << 20) as out:
        if array:
            out.write(b"[\n")
        first = True
        for event in _events(n_events, seed):
            if array and not first:
                out.write(b",\n")
            out.write(dumps(event))
            if not array:
                out.write(b"\n")
            first = False
        if array:
            out.write(b"\n]\n")
    os.replace(tmp, path)


def ensure(n_events: int, seed: int = SEED, *, array: bool = False) -> Path:
    """The cached file for these parameters, generated first if it is not there yet."""
    path = json_array_path(n_events, seed) if array else ndjson_path(n_events, seed)
    if not path.exists():
        _write(path, n_events, seed, array)
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=SEED)
    parser.add_argument("--json-array", action="store_true", help="one JSON array, not NDJSON")
    parser.add_argument("--force", action="store_true", help="regenerate even if cached")
    parser.add_argument("--csv", action="store_true", help="the same events as CSV")
    parser.add_argument("--parquet", action="store_true", help="the same events as Parquet")
    parser.add_argument("--here", action="store_true", help=argparse.SUPPRESS)  # ensure_format's
    args = parser.parse_args()
    for fmt in ("csv", "parquet"):
        if getattr(args, fmt):
            make = _write_format if args.here else ensure_format
            made = make(args.events, fmt, args.seed)
            print(f"{made} ({made.stat().st_size / 1e6:,.1f} MB)")
    if args.csv or args.parquet:
        return
    path = json_array_path(args.events, args.seed) if args.json_array else ndjson_path(args.events)
    if args.force and path.exists():
        path.unlink()
    path = ensure(args.events, args.seed, array=args.json_array)
    print(f"{path} ({path.stat().st_size / 1e6:,.1f} MB)")


if __name__ == "__main__":
    main()
