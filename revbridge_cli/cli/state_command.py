"""`revbridge state show STATE`: what a `--state` journal holds, without opening SQLite by hand.

Read-only in every sense, so it can be run beside a live send: the database is opened with
SQLite's `mode=ro` URI (no write, no schema change, no checkpoint), the lock file is only read
(the holder is found in /proc/locks, never by taking the lock, which would make a send that
starts at that instant refuse with exit 75), and a WAL reader does not block the writer. Each
part is read in one read transaction, so the picture is consistent.

`inspect` gathers plain data (the JSON form is that data), `render` words it for a person.
"""

from __future__ import annotations

import os
import sqlite3
import sys
from array import array
from collections import Counter
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
import typer

from revbridge_cli.errors import Exit, StateError, exit_codes_help
from revbridge_cli.state import runlog
from revbridge_cli.text import clean

SCHEMA_VERSION = 1  # of the JSON this command prints
RUNS_SHOWN = 10

app = typer.Typer(
    name="state",
    help="Inspect a --state journal (read-only; safe while a run holds it).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


def _lines(blob: bytes) -> list[int]:
    out = array("q")
    out.frombytes(blob)
    return out.tolist()


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
    if not os.path.exists(path):
        raise StateError(f"{path}: no such state file")
    if not os.path.isfile(path):
        raise StateError(f"{path}: not a state file (not a regular file)")
    try:
        db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        tables = {row[0] for row in db.execute("select name from sqlite_master")}
    except sqlite3.Error as exc:
        raise StateError(f"{path}: cannot read it as a state file: {exc}") from None
    if not {"files", "settled", "inflight", "doubt"} <= tables:
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


def inspect(path: str) -> dict[str, Any]:
    """Everything `state show` reports, as plain data (its --json form)."""
    holder = lock_holder(path)
    db = _connect(path)
    try:
        db.execute("begin")  # one snapshot for all that follows
        schema = db.execute("select value from meta where key = 'schema'").fetchone()
        inflight_columns = {row[1] for row in db.execute("pragma table_info(inflight)")}
        doubt = Counter(p for (p,) in db.execute("select path from doubt"))
        files = []
        for fpath, identity, line, offset, end, updated in db.execute(
            "select path, identity, done_line, done_offset, end_offset, updated_at"
            " from files order by path"
        ).fetchall():
            beyond: set[int] = set()
            for (blob,) in db.execute("select lines from settled where path = ?", (fpath,)):
                beyond.update(n for n in _lines(blob) if n > line)
            ident = orjson.loads(identity)
            files.append(
                {
                    "path": fpath,
                    "identity": {
                        "device": ident.get("device"),
                        "inode": ident.get("inode"),
                        "size": ident.get("size"),
                        "modified": _when(ident.get("mtime_ns")),
                        "head_sha256": ident.get("head_sha"),
                        "head_bytes": ident.get("head_len"),
                    },
                    "size_now": _size_now(fpath),
                    "lines_done": line,
                    "bytes_done": offset,
                    "read_to_end_at": end,
                    "done": end is not None and offset >= end,
                    "settled_beyond_watermark": len(beyond),
                    "records_in_doubt": doubt.get(fpath, 0),
                    "last_read": updated,
                }
            )
        counts = "users, events" if "users" in inflight_columns else "null, null"
        batches = []
        for batch, blob, users, events in db.execute(
            f"select batch, lines, {counts} from inflight order by batch"
        ).fetchall():
            refs = orjson.loads(blob)
            batches.append(
                {
                    "batch": batch,
                    "records": len(refs),
                    "users": users,
                    "events": events,
                    "files": dict(Counter(p for p, _ in refs)),
                }
            )
        runs = runlog.last_runs(db, RUNS_SHOWN)
        db.execute("commit")
    except sqlite3.Error as exc:
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


def _n(value: int | None) -> str:
    return "?" if value is None else f"{value:,}"


def _batch_line(batch: dict[str, Any]) -> str:
    where = ", ".join(f"{os.path.basename(p)} ({n:,})" for p, n in batch["files"].items())
    return (
        f"  batch {batch['batch']}: {_n(batch['users'])} users, {_n(batch['events'])} events, "
        f"{batch['records']:,} records from {where}"
    )


def _run_line(run: dict[str, Any]) -> str:
    head = f"  run {run['run']} (pid {run['pid']}): started {run['started_at']}, "
    if run["status"] != "ended":
        return head + str(run["status"])
    c = run["counts"] or {}
    figures = (
        f"records read {_n(c.get('records_read'))}, skipped {_n(c.get('records_skipped'))}; "
        f"events accepted {_n(c.get('events_accepted'))}, "
        f"rejected {_n(c.get('events_rejected'))}, "
        f"undelivered {_n(c.get('events_undelivered'))}, "
        f"pending {_n(c.get('events_pending'))}; requests {_n(c.get('requests'))}"
    )
    return head + f"ended {run['ended_at']}, exit {run['exit_code']}\n    {figures}"


def render(report: dict[str, Any]) -> str:
    holder = report["held_by_pid"]
    held = f"in use by a running revbridge (pid {holder})" if holder else "not in use"
    out = [f"state {report['state']} (journal schema {report['journal_schema']}): {held}"]
    out.append(f"files ({len(report['files'])}):" if report["files"] else "files: none yet")
    for f in report["files"]:
        ident = f["identity"]
        end = f["read_to_end_at"]
        read = "read to its end" if f["done"] else "not read to its end"
        if end is not None and not f["done"]:
            read = f"read to its end at byte {end:,} once, not all of it settled"
        now = "gone" if f["size_now"] is None else f"{f['size_now']:,} bytes"
        out += [
            f"  {f['path']}",
            f"    identity: inode {ident['inode']} on device {ident['device']}, "
            f"{_n(ident['size'])} bytes, modified {ident['modified']}, head sha256 "
            f"{(ident['head_sha256'] or '?')[:12]}… (first {_n(ident['head_bytes'])} bytes); "
            f"now {now}",
            f"    done: {f['lines_done']:,} lines, {f['bytes_done']:,} bytes ({read})",
            f"    settled beyond the watermark: {f['settled_beyond_watermark']:,} records; "
            f"in doubt: {f['records_in_doubt']:,} records",
            f"    last read: {f['last_read']}",
        ]
    for key, title in (
        ("batches_in_flight", "batches in flight"),
        ("batches_in_doubt", "batches in doubt (their run died with them out)"),
    ):
        if report[key]:
            out.append(f"{title} ({len(report[key])}):")
            out += [_batch_line(b) for b in report[key]]
    out.append(f"records in doubt from earlier runs: {report['records_in_doubt']:,}")
    if report["runs"]:
        out.append("last runs (newest first):")
        out += [_run_line(r) for r in report["runs"]]
    else:
        out.append("last runs: none recorded (a journal from before runs were kept, or new)")
    return "\n".join(out)


@app.command(
    "show",
    epilog=exit_codes_help("state show")
    + "\n\nExamples:\n\n\b\n  revbridge state show backfill.state\n"
    "  revbridge state show --json /var/lib/revbridge/events.state | jq .files",
)
def show(
    state: Annotated[
        str,
        typer.Argument(metavar="STATE", help="The --state file to inspect.", show_default=False),
    ],
    json_out: Annotated[
        bool, typer.Option("--json", help="One JSON object on stdout instead of text.")
    ] = False,
) -> None:
    """Show what a --state journal holds: each file's identity and how far it is done, batches
    in flight or in doubt, and the last runs. Read-only: safe while a run holds the state."""
    try:
        report = inspect(state)
    except StateError as exc:
        if json_out:
            error = {"schema_version": SCHEMA_VERSION, "error": str(exc), "exit_code": 2}
            sys.stdout.write(orjson.dumps(error).decode() + "\n")
        typer.echo(f"revbridge: error: {clean(str(exc))}", err=True)
        raise typer.Exit(int(Exit.USAGE)) from None
    if json_out:
        sys.stdout.write(orjson.dumps(report).decode() + "\n")
    else:
        typer.echo(render(report))
