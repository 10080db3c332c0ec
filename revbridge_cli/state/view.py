"""A journal seen read-only, as plain data: what `revbridge state show` prints and `--json` is.

Here rather than in the CLI so that the journal's SQL, its row encodings (state/rows.py) and
its ownership checks (state/ownership.py) each have one home; the command only words this.

Read-only in every sense, so it can be run beside a live send: the database is opened with
SQLite's `mode=ro` URI (no write, no schema change, no checkpoint), the lock file is only read
(the holder is found in /proc/locks, never by taking the lock, which would make a send that
starts at that instant refuse with exit 75), and a WAL reader does not block the writer. Each
part is read in one read transaction, so the picture is consistent.
"""

from __future__ import annotations

import os
import sqlite3
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from revbridge_cli.errors import StateError
from revbridge_cli.state import runlog
from revbridge_cli.state.journal import SCHEMA_VERSION as JOURNAL_SCHEMA
from revbridge_cli.state.ownership import check_state_path
from revbridge_cli.state.rows import decode_refs, unpack_lines

SCHEMA_VERSION = 1  # of the plain data returned (the JSON `state show --json` prints)
RUNS_SHOWN = 10
JOURNAL_TABLES = frozenset({"files", "settled", "inflight", "doubt"})


def lock_holder(state_path: str) -> int | None:
    """The pid of the live run holding STATE.lock, or None. Linux lists every `flock` in
    /proc/locks by device and inode; elsewhere the pid written in the lock file is trusted
    while that process exists."""
    lock = state_path + ".lock"
    try:
        st = os.stat(lock)
        with open(lock, "rb") as f:
            written = f.read(64).decode(errors="replace").strip()
    except OSError:
        return None
    key = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks") as f:
            table = f.read()
    except OSError:
        table = None
    if table is not None:
        for entry in table.splitlines():
            fields = entry.split()
            if "FLOCK" in fields and len(fields) >= 6 and key in fields:
                pid = fields[fields.index("FLOCK") + 3]
                return int(pid) if pid.isdigit() else None
        return None
    if not written.isdigit():
        return None
    try:
        os.kill(int(written), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    return int(written)


def _connect(path: str) -> sqlite3.Connection:
    """Open a journal read-only, after the checks a run makes before writing one: another
    program's database or one from a newer revbridge is refused, never misread."""
    if not os.path.exists(path):
        raise StateError(f"{path}: no such state file")
    if not os.path.isfile(path):
        raise StateError(f"{path}: not a state file (not a regular file)")
    check_state_path(path, int(JOURNAL_SCHEMA))
    try:
        db = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True, timeout=10)
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot read it as a state file: {exc}") from None
    if not tables >= JOURNAL_TABLES:
        db.close()
        raise StateError(f"{path}: not a revbridge state file (no journal tables)")
    return db


def _when(ns: int | None) -> str | None:
    if ns is None:
        return None
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _size_now(path: str) -> int | None:
    try:
        return os.stat(path).st_size
    except OSError:
        return None


def _columns(db: sqlite3.Connection, table: str) -> set[str]:
    return {row[1] for row in db.execute(f"pragma table_info({table})")}


def _identity(text: str) -> dict[str, Any]:
    """Shown as far as it goes: a journal of an older schema may lack some keys, and what it
    has is still worth showing (a run, which must trust it, checks it with `check_identity`)."""
    ident = orjson.loads(text)
    if not isinstance(ident, dict):
        raise ValueError("a file identity is not an object")
    return {
        "device": ident.get("device"),
        "inode": ident.get("inode"),
        "size": ident.get("size"),
        "modified": _when(ident.get("mtime_ns")),
        "head_sha256": ident.get("head_sha"),
        "head_bytes": ident.get("head_len"),
    }


def _files(db: sqlite3.Connection, doubt: Counter[str]) -> list[dict[str, Any]]:
    records = "done_records" if "done_records" in _columns(db, "files") else "null"
    files = []
    for fpath, identity, line, offset, end, updated, done_records in db.execute(
        "select path, identity, done_line, done_offset, end_offset, updated_at,"
        f" {records} from files order by path"
    ).fetchall():
        beyond: set[int] = set()
        for (blob,) in db.execute("select lines from settled where path = ?", (fpath,)):
            beyond.update(n for n in unpack_lines(blob) if n > line)
        files.append(
            {
                "path": fpath,
                "identity": _identity(identity),
                "size_now": _size_now(fpath),
                "lines_done": line,
                "bytes_done": offset,
                "done_records": done_records,
                "read_to_end_at": end,
                "done": end is not None and offset >= end,
                "settled_beyond_watermark": len(beyond),
                "records_in_doubt": doubt.get(fpath, 0),
                "last_read": updated,
            }
        )
    return files


def _batches(db: sqlite3.Connection) -> list[dict[str, Any]]:
    counts = "users, events" if "users" in _columns(db, "inflight") else "null, null"
    batches = []
    for batch, blob, users, events in db.execute(
        f"select batch, lines, {counts} from inflight order by batch"
    ).fetchall():
        refs = decode_refs(blob)
        batches.append(
            {
                "batch": batch,
                "records": len(refs),
                "users": users,
                "events": events,
                "files": dict(Counter(p for p, _ in refs)),
            }
        )
    return batches


def inspect(path: str) -> dict[str, Any]:
    """Everything the journal at `path` says, as plain data; `StateError` if it is none."""
    holder = lock_holder(path)
    db = _connect(path)
    try:
        db.execute("begin")  # one snapshot for all that follows
        schema = db.execute("select value from meta where key = 'schema'").fetchone()
        doubt = Counter(p for (p,) in db.execute("select path from doubt"))
        files = _files(db, doubt)
        batches = _batches(db)
        runs = runlog.last_runs(db, RUNS_SHOWN)
        db.execute("commit")
    except (sqlite3.Error, ValueError) as exc:  # ValueError: a row that does not decode
        raise StateError(f"{path}: cannot read it as a state file: {exc}") from None
    finally:
        db.close()
    for run in runs:
        if run["ended_at"] is not None:
            run["status"] = "ended"
        elif holder is not None and run["pid"] == holder and run is runs[0]:
            run["status"] = "running"
        else:
            run["status"] = "no end recorded (killed or crashed)"
    return {
        "schema_version": SCHEMA_VERSION,
        "state": os.path.abspath(path),
        "journal_schema": schema[0] if schema else None,
        "held_by_pid": holder,
        "files": files,
        # With a live holder these batches are out now; without one, a run died with them
        # out: the next run counts their records as possibly stored already.
        "batches_in_flight": batches if holder is not None else [],
        "batches_in_doubt": [] if holder is not None else batches,
        "records_in_doubt": sum(doubt.values()),
        "runs": runs,
    }
