"""`revbridge state show STATE`: what a `--state` journal holds, without opening SQLite by hand.

The reading is state/view.py's (read-only, safe beside a live run); this only words its plain
data for a person, or prints it as the JSON object it already is.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated, Any

import orjson
import typer

from revbridge_cli.errors import Exit, StateError, exit_codes_help
from revbridge_cli.state.view import SCHEMA_VERSION, inspect
from revbridge_cli.text import clean

__all__ = ["app", "inspect", "render"]

app = typer.Typer(
    name="state",
    help="Inspect a --state journal (read-only; safe while a run holds it).",
    no_args_is_help=True,
    rich_markup_mode=None,
)


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
        # Records, not lines: blank and comment lines are not records (an older journal: unknown).
        count = f.get("done_records")
        records = "" if count is None else f" ({count:,} records)"
        out += [
            f"  {f['path']}",
            f"    identity: inode {ident['inode']} on device {ident['device']}, "
            f"{_n(ident['size'])} bytes, modified {ident['modified']}, head sha256 "
            f"{(ident['head_sha256'] or '?')[:12]}… (first {_n(ident['head_bytes'])} bytes); "
            f"now {now}",
            f"    done: {f['lines_done']:,} lines{records}, {f['bytes_done']:,} bytes ({read})",
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
