"""The `revbridge` command line: options in, one settings object to the pipeline, exit code out."""

from __future__ import annotations

import asyncio
import os
import sys
from contextlib import ExitStack
from typing import Annotated

import orjson
import typer

from revbridge_cli import __version__, contract
from revbridge_cli.errors import Exit, UsageError
from revbridge_cli.journal import LockedError
from revbridge_cli.reader import InputError
from revbridge_cli.records import ShapeOptions
from revbridge_cli.retry import RetryPolicy
from revbridge_cli.settings import SendSettings
from revbridge_cli.summary import Summary

EXIT_CODES_HELP = (
    "Exit codes: 0 everything accepted; 1 finished, but something was rejected or undelivered "
    "(all of it is in the rejected file); 2 usage, configuration or unreadable input; "
    "3 authentication refused; 75 another run holds the --state file; 130 interrupted (Ctrl-C); "
    "143 terminated (SIGTERM)."
)

app = typer.Typer(
    name="revbridge",
    help="Bulk importer for the RevBridge Events API, with a local sandbox server.",
    no_args_is_help=True,
    add_completion=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"revbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Bulk importer for the RevBridge Events API, with a local sandbox server."""


# ---- options shared by send and validate ----------------------------------------------------

Inputs = Annotated[
    list[str],
    typer.Argument(
        help="NDJSON or JSON files (.gz read transparently), directories, globs, or - for stdin.",
        show_default=False,
    ),
]
Format = Annotated[
    str | None,
    typer.Option("--format", help="ndjson or json; by default detected from the content."),
]
Rejected = Annotated[
    str | None,
    typer.Option(
        "--rejected",
        help="Where rows set aside go (appended to). Default: a new "
        "rejected-<UTC time>.ndjson, created only if something is set aside.",
    ),
]
RequireTimestamp = Annotated[
    bool,
    typer.Option(
        "--require-timestamp",
        help="Set aside events without a timestamp instead of "
        "letting the server stamp them with the time of arrival.",
    ),
]
EpochTimestamps = Annotated[
    bool,
    typer.Option(
        "--epoch-timestamps",
        help="Convert numeric timestamps (epoch seconds or milliseconds) to ISO 8601 UTC.",
    ),
]
JsonOut = Annotated[
    bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary text.")]


def _check_format(fmt: str | None) -> str | None:
    if fmt not in (None, "ndjson", "json"):
        raise UsageError(f"--format must be ndjson or json, not {fmt!r}")
    return fmt


@app.command(
    epilog=EXIT_CODES_HELP + "\n\nExamples:\n\n"
    "  revbridge send --sandbox samples/\n\n"
    "  REVBRIDGE_API_KEY=... REVBRIDGE_CUSTOMER_ID=... revbridge send export.ndjson.gz\n\n"
    "  revbridge send rejected-20260115T143000Z.ndjson   # after fixing the rows"
)
def send(
    inputs: Inputs,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key",
            envvar="REVBRIDGE_API_KEY",
            show_envvar=True,
            show_default=False,
            help="API key. Prefer the environment variable or --api-key-file.",
        ),
    ] = None,
    customer_id: Annotated[
        str | None,
        typer.Option(
            "--customer-id",
            envvar="REVBRIDGE_CUSTOMER_ID",
            show_envvar=True,
            help="Your RevBridge customer id (sent as x-customer-id).",
        ),
    ] = None,
    base_url: Annotated[
        str,
        typer.Option(
            "--base-url",
            envvar="REVBRIDGE_BASE_URL",
            show_envvar=True,
            help="API base URL; http:// only for loopback.",
        ),
    ] = contract.PRODUCTION_URL,
    sandbox: Annotated[
        bool,
        typer.Option(
            "--sandbox",
            help="Start the embedded sandbox on a free loopback port and send there; "
            "no credentials needed.",
        ),
    ] = False,
    fmt: Format = None,
    concurrency: Annotated[
        int, typer.Option("--concurrency", min=1, max=64, help="Requests in flight at most.")
    ] = 4,
    max_users: Annotated[
        int, typer.Option("--max-users", min=1, max=contract.MAX_USERS, help="Users per request.")
    ] = contract.MAX_USERS,
    max_bytes: Annotated[
        int,
        typer.Option(
            "--max-bytes",
            min=1024,
            max=contract.MAX_BODY_BYTES,
            help="Request body size limit in bytes.",
        ),
    ] = contract.MAX_BODY_BYTES,
    max_retries: Annotated[
        int, typer.Option("--max-retries", min=0, help="Retries per request (0: none).")
    ] = 8,
    retry_initial_delay: Annotated[
        float, typer.Option("--retry-initial-delay", min=0.0, help="First backoff wait, seconds.")
    ] = 1.0,
    retry_max_delay: Annotated[
        float, typer.Option("--retry-max-delay", min=0.0, help="Longest backoff wait, seconds.")
    ] = 60.0,
    timeout: Annotated[
        float, typer.Option("--timeout", min=0.1, help="Per-request timeout, seconds.")
    ] = 30.0,
    rejected: Rejected = None,
    require_timestamp: RequireTimestamp = False,
    epoch_timestamps: EpochTimestamps = False,
    state: Annotated[
        str | None,
        typer.Option(
            "--state",
            help="Journal file (SQLite) that makes the run resumable and incremental: "
            "rerun the same command to continue; only new data is sent.",
        ),
    ] = None,
    restart_changed: Annotated[
        bool,
        typer.Option(
            "--restart-changed",
            help="With --state: read a file that was replaced or truncated "
            "since the last run from its start, as new data.",
        ),
    ] = False,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Read, check and pack; report requests and bytes; send nothing."
        ),
    ] = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Send events from files to RevBridge: stream, group by user, pack, deliver, and keep
    every record that did not go in a rejected file you can fix and send again."""
    with ExitStack() as stack:
        try:
            if sandbox:
                from revbridge_cli.sandbox import Sandbox

                sb = stack.enter_context(Sandbox())
                base_url, api_key, customer_id = sb.url, sb.api_key, sb.customer_id
                if not quiet:
                    typer.echo(f"sandbox: {sb.url} (stored in {sb.db_path})", err=True)
            elif not dry_run:
                _require_credentials(api_key, customer_id)
            settings = SendSettings(
                inputs=inputs,
                base_url=base_url,
                api_key=api_key,
                customer_id=customer_id,
                fmt=_check_format(fmt),
                concurrency=concurrency,
                max_users=max_users,
                max_bytes=max_bytes,
                timeout=timeout,
                retry=RetryPolicy(max_retries, retry_initial_delay, retry_max_delay),
                shape=ShapeOptions(require_timestamp, epoch_timestamps),
                rejected=rejected,
                dry_run=dry_run,
            )
        except UsageError as exc:
            _fail(str(exc))
        code = _run(settings, json_out=json_out, quiet=quiet)
    raise typer.Exit(int(code))


@app.command(
    epilog=EXIT_CODES_HELP + "\n\nExamples:\n\n  revbridge validate export.ndjson\n\n"
    "  revbridge validate --require-timestamp exports/"
)
def validate(
    inputs: Inputs,
    fmt: Format = None,
    rejected: Rejected = None,
    require_timestamp: RequireTimestamp = False,
    epoch_timestamps: EpochTimestamps = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Check files with the API's own rules without sending anything: counts per reason, the
    first examples with file and line, and the rejected file. Exit 1 if anything is invalid."""
    try:
        settings = SendSettings(
            inputs=inputs,
            fmt=_check_format(fmt),
            rejected=rejected,
            send=False,
            shape=ShapeOptions(require_timestamp, epoch_timestamps),
        )
    except UsageError as exc:
        _fail(str(exc))
    raise typer.Exit(int(_run(settings, json_out=json_out, quiet=quiet)))


def _require_credentials(api_key: str | None, customer_id: str | None) -> None:
    missing = []
    if not api_key:
        missing.append("an API key (--api-key, or REVBRIDGE_API_KEY)")
    if not customer_id:
        missing.append("a customer id (--customer-id, or REVBRIDGE_CUSTOMER_ID)")
    if missing:
        raise UsageError("missing " + " and ".join(missing) + "; or use --sandbox to try locally")


def _fail(message: str, code: Exit = Exit.USAGE) -> None:
    typer.echo(f"revbridge: error: {message}", err=True)
    raise typer.Exit(int(code))


def _run(settings: SendSettings, *, json_out: bool, quiet: bool) -> Exit:
    from revbridge_cli.console import make_reporter
    from revbridge_cli.pipeline import Run

    run = Run(settings, make_reporter(quiet=quiet))
    try:
        run.prepare()
    except (InputError, UsageError, OSError) as exc:
        _fail(str(exc))
    except LockedError as exc:
        _fail(str(exc), Exit.LOCKED)
    summary = asyncio.run(run.execute())
    code = exit_code(summary, run)
    if json_out:
        sys.stdout.write(
            orjson.dumps({**summary.to_json(), "exit_code": int(code)}).decode() + "\n"
        )
    if not quiet:
        run.reporter.summary(summary)
    return code


def exit_code(summary: Summary, run: object) -> Exit:
    sender = getattr(run, "sender", None)
    if sender is not None and sender.fatal is not None:
        return Exit(sender.fatal.exit_code)
    if summary.interrupted:
        signum = getattr(run, "interrupt_signal", 2)
        return Exit.TERMINATED if signum == 15 else Exit.INTERRUPTED
    return Exit.OK if summary.complete else Exit.INCOMPLETE


def _mount_sandbox() -> None:
    try:
        from revbridge_cli.sandbox.cli import app as sandbox_app
    except ImportError:  # the sandbox subpackage is being built
        return
    app.add_typer(sandbox_app, name="sandbox")


_mount_sandbox()


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:  # Ctrl-C outside a run (during start-up): no traceback
        sys.stderr.write("interrupted\n")
        os._exit(int(Exit.INTERRUPTED))
