"""`revbridge sandbox`: run the local API until Ctrl-C, or report what a database received.

Thin on purpose: options become a `Faults` value and a `Sandbox`, everything else lives in the
library so tests drive exactly what the command runs. What the command refuses (a fault value,
a port in use, a file that is not a database) is a `UsageError` of the package's hierarchy,
ended as the main CLI ends one: one `revbridge: error:` line and its family's exit code from
`errors.py`'s table, never a number written here nor a traceback.
"""

from __future__ import annotations

import os
import shlex
import signal
import sqlite3
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import FrameType
from typing import Annotated, Any

import orjson
import typer
from typer import Option

from revbridge_cli.errors import Exit, RevbridgeError, UsageError, exit_for_signal
from revbridge_cli.loopback import is_loopback
from revbridge_cli.sandbox.faults import FAIL_STATUSES, Faults, parse_numbers
from revbridge_cli.sandbox.reads import db_stats
from revbridge_cli.sandbox.runner import Sandbox

EXAMPLE_BODY = (
    '{"users":[{"identifiers":{"user_id":"u1","email":"a@example.com"},'
    '"user_properties":{"loyalty_tier":"gold"},'
    '"events":[{"event_name":"purchase","timestamp":"2026-01-15T14:30:00Z",'
    '"revenue":49.99,"product_id":"sku-1"}]}]}'
)

app = typer.Typer(
    name="sandbox",
    invoke_without_command=True,
    no_args_is_help=False,
)


@contextmanager
def _one_line_errors() -> Iterator[None]:
    """A refusal ends the command as the main CLI's `fail` does: one line, the family's code."""
    try:
        yield
    except RevbridgeError as exc:
        typer.echo(f"revbridge: error: {exc}", err=True)
        raise typer.Exit(int(exc.exit_code)) from None


def _numbers(value: str | None, flag: str) -> tuple[int, ...]:
    try:
        return parse_numbers(value)
    except ValueError as exc:
        raise UsageError(f"{flag}: expected request numbers like 3,5 ({exc})") from None


def _faults(settings: dict[str, Any]) -> Faults:
    """`Faults` names a bad value by its field (`fail_rate must be ...`); say the flag."""
    try:
        return Faults(**settings)
    except ValueError as exc:
        field, _, rest = str(exc).partition(" ")
        flag = f"--{field.replace('_', '-')}" if field in settings else field
        raise UsageError(f"{flag} {rest}") from None


def _banner(sb: Sandbox) -> str:
    db = sb.db_path
    if db is None:
        where = "nothing is stored (--no-store)"
    elif sb.db_is_temporary:
        where = f"{db} (temporary, deleted at exit; use --db PATH to keep it)"
    else:
        where = str(db)
    lines = [
        f"RevBridge sandbox listening on {sb.url} (POST {sb.endpoint})",
        f"database: {where}",
        "",
        "Paste into your shell:",
        f"  export REVBRIDGE_BASE_URL={shlex.quote(sb.url)}",
        f"  export REVBRIDGE_API_KEY={shlex.quote(sb.api_key)}",
        f"  export REVBRIDGE_CUSTOMER_ID={shlex.quote(sb.customer_id)}",
        "",
        "Try it:",
        '  curl -sS -X POST "$REVBRIDGE_BASE_URL/ingest/events" \\',
        '    -H "Authorization: Bearer $REVBRIDGE_API_KEY" \\',
        '    -H "x-customer-id: $REVBRIDGE_CUSTOMER_ID" \\',
        '    -H "Content-Type: application/json" \\',
        f"    -d {shlex.quote(EXAMPLE_BODY)}",
        "",
        "Press Ctrl-C to stop.",
    ]
    return "\n".join(lines)


STOP_GRACE_SECONDS = 10.0


@contextmanager
def _stop_signals() -> Iterator[threading.Event]:
    """SIGINT and SIGTERM set an event instead of raising, so stopping is one clean path;
    a second one while stopping quits at once (exit 128 + its number: 130 for Ctrl-C).

    Installed before the banner is printed: a Ctrl-C that comes right after must not find
    Python's default handler and end with a KeyboardInterrupt traceback.
    """
    stop = threading.Event()

    def handler(signum: int, frame: FrameType | None) -> None:
        if stop.is_set():  # the main CLI's second signal too: the signal's own code
            os.write(2, b"signal again while stopping: quitting now\n")
            os._exit(int(exit_for_signal(signum)))
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _stop_within(sandbox: Sandbox, seconds: float) -> None:
    """A stop that cannot hang: if closing takes longer than `seconds` (a stuck writer, a
    client holding something stop() waits for), the process ends anyway: exit 70, since a
    sandbox that cannot close is a bug of the sandbox."""
    stopper = threading.Thread(target=sandbox.stop, name="sandbox-stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        message = f"the sandbox did not stop within {seconds:g} s: quitting now"
        typer.echo(f"revbridge: error: {message}", err=True)
        sys.stderr.flush()
        os._exit(int(Exit.SOFTWARE))


@app.callback()
def serve(
    ctx: typer.Context,
    host: Annotated[str, Option(help="Interface to bind; loopback unless you mean it.")] = (
        "127.0.0.1"
    ),
    port: Annotated[int, Option(help="TCP port; 0 picks a free one.")] = 8787,
    api_key: Annotated[str | None, Option(help="Accepted API key [default: made up].")] = None,
    customer_id: Annotated[
        str | None, Option(help="Accepted x-customer-id [default: cust_sandbox].")
    ] = None,
    db: Annotated[
        Path | None, Option(help="SQLite file to keep what arrives [default: a temporary file].")
    ] = None,
    no_store: Annotated[
        bool, Option("--no-store", help="Validate and count only, store nothing (benchmarks).")
    ] = False,
    verbose: Annotated[bool, Option("--verbose", "-v", help="One line per request.")] = False,
    seed: Annotated[int, Option(help="Seed for every *-rate fault.")] = 0,
    latency: Annotated[float, Option(help="Seconds added before every answer.")] = 0.0,
    fail_rate: Annotated[float, Option(help="Share of requests answered --fail-status.")] = 0.0,
    fail_requests: Annotated[
        str | None, Option(help="Request numbers answered --fail-status, e.g. 3,5.")
    ] = None,
    fail_status: Annotated[
        int, Option(help="Status of failed requests: 429/500/502/503/504.")
    ] = 503,
    retry_after: Annotated[
        int | None, Option(help="Retry-After seconds sent with failed requests.")
    ] = None,
    hang_rate: Annotated[float, Option(help="Share of requests stored, then answered late.")] = 0.0,
    hang_requests: Annotated[str | None, Option(help="Request numbers to hang, e.g. 2.")] = None,
    hang_seconds: Annotated[float, Option(help="How late a hung request is answered.")] = 15.0,
    reset_rate: Annotated[float, Option(help="Share of requests answered with a TCP reset.")] = 0.0,
    reset_requests: Annotated[str | None, Option(help="Request numbers to reset, e.g. 4.")] = None,
    reset_after_store: Annotated[
        bool, Option("--reset-after-store", help="Store a reset request before resetting.")
    ] = False,
    max_body_bytes: Annotated[
        int | None, Option(help="Lower body limit for 413 [default: 10000000].")
    ] = None,
    revoke_after: Annotated[
        int | None, Option(help="Answer 401 to every request after the Nth.")
    ] = None,
    reject_user_ids: Annotated[
        str | None,
        Option(help="Reject these user_ids (comma-separated) although the rules pass them."),
    ] = None,
    capacity: Annotated[
        int | None, Option(help="At most N requests in progress at once; 503 beyond.")
    ] = None,
    capacity_seconds: Annotated[
        float | None,
        Option(help="--capacity only for the first S seconds after the first request."),
    ] = None,
) -> None:
    """A local RevBridge Events API server: runs until Ctrl-C, then exits with code 0.

    With no --api-key/--customer-id it makes up a pair and prints them, ready to paste.

    Example: revbridge sandbox --port 8787 --db sandbox.db --fail-requests 3 --retry-after 1
    """
    if ctx.invoked_subcommand is not None:
        return
    with _one_line_errors():
        sandbox = _sandbox(locals())
        with _stop_signals() as stop:
            _serve(sandbox, host, port, stop)
    counts = sandbox.stats()
    typer.echo(
        f"stopped: {counts['requests']} requests, {counts['users_accepted']} users and "
        f"{counts['events_accepted']} events accepted"
    )


def _sandbox(flags: dict[str, Any]) -> Sandbox:
    """The server the flags describe, not started yet (UsageError for a bad fault value)."""
    fail_status, host = flags["fail_status"], flags["host"]
    if fail_status not in FAIL_STATUSES:
        allowed = "/".join(str(s) for s in sorted(FAIL_STATUSES))
        raise UsageError(f"--fail-status must be one of {allowed}, not {fail_status}")
    fault_settings: dict[str, Any] = {
        name: flags[name]
        for name in ("seed", "latency", "fail_rate", "fail_status", "retry_after", "hang_rate",
                     "hang_seconds", "reset_rate", "reset_after_store", "revoke_after",
                     "capacity", "capacity_seconds")
    }  # fmt: skip
    for kind in ("fail", "hang", "reset"):
        name = f"{kind}_requests"
        fault_settings[name] = _numbers(flags[name], f"--{kind}-requests")
    rejected_ids = flags["reject_user_ids"] or ""
    fault_settings["reject_user_ids"] = tuple(filter(None, rejected_ids.split(",")))
    if flags["max_body_bytes"] is not None:
        fault_settings["max_body_bytes"] = flags["max_body_bytes"]
    faults = _faults(fault_settings)
    if not is_loopback(host):
        typer.echo(
            f"revbridge: warning: binding to {host}: anyone who can reach this host can use "
            "the sandbox",
            err=True,
        )
    return Sandbox(
        flags["api_key"],
        flags["customer_id"],
        db=flags["db"],
        store=not flags["no_store"],
        faults=faults,
        host=host,
        port=flags["port"],
        log=sys.stderr if flags["verbose"] else None,
    )


def _serve(sandbox: Sandbox, host: str, port: int, stop: threading.Event) -> None:
    """Listen, print the banner, and wait for a stop signal; then stop within the grace."""
    try:
        sandbox.start()
    except OSError as exc:
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    except sqlite3.Error as exc:
        raise UsageError(f"--db {sandbox.db_path}: cannot keep the database there: {exc}") from None
    try:
        typer.echo(_banner(sandbox))
        sys.stdout.flush()
        while not stop.wait(0.5):
            pass
    finally:
        _stop_within(sandbox, STOP_GRACE_SECONDS)


def _read_stats(db: Path, last: int) -> dict[str, Any]:
    if db.is_dir():
        raise UsageError(f"{db} is a directory, not a sandbox database")
    if not db.is_file():
        raise UsageError(f"no such database: {db}")
    try:
        return db_stats(db, last=last)
    except sqlite3.Error as exc:
        raise UsageError(f"{db} is not a sandbox database ({exc})") from None


@app.command()
def stats(
    db: Annotated[Path, Option(help="The SQLite file a `revbridge sandbox --db` run wrote.")],
    last: Annotated[int, Option(help="How many recent requests to list.")] = 5,
    json: Annotated[bool, Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Print what a sandbox database received.

    Example: revbridge sandbox stats --db sandbox.db --json
    """
    with _one_line_errors():
        report = _read_stats(db, last)
    if json:
        typer.echo(orjson.dumps(report, option=orjson.OPT_NON_STR_KEYS).decode())
        return
    by_status = ", ".join(f"{status}: {n}" for status, n in report["requests_by_status"].items())
    typer.echo(f"events:   {report['events']}")
    # The importer's words: distinct users (one profile each) vs user objects (one per user
    # per request: a user whose events came in three requests is three user objects).
    typer.echo(f"users:    {report['profiles']} distinct (profiles)")
    if report["links_refused"]:
        typer.echo(f"refused:  {report['links_refused']} identity links (two different user_ids)")
    typer.echo(f"requests: {report['requests']} ({by_status or 'none'})")
    typer.echo(
        f"accepted: {report['users_accepted']} user objects, {report['events_accepted']} "
        f"events; rejected: {report['users_rejected']} user objects"
    )
    if report["last_requests"]:
        typer.echo("last requests:")
        for row in report["last_requests"]:
            fault = f" fault={row['fault']}" if row["fault"] else ""
            trace = row["trace_id"] or "-"
            typer.echo(f"  {row['received_at']}  {row['status']}  {trace}{fault}")
