"""The `revbridge` command line: the Typer app, `send`, and the console script (`main`).

Kept thin: the options the commands share are in `options`, what every command does around
its work (resolve, check outputs, run, fail) in `running`, the other commands in `commands`,
the exit codes in `errors`, and `send --sandbox`'s server in `embedded_sandbox`.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Annotated, Any

import orjson
import typer

from revbridge_cli import __version__
from revbridge_cli.cli import commands, help_format
from revbridge_cli.cli.options import (
    ApiKey,
    ApiKeyFile,
    BaseUrl,
    ConfigPath,
    CustomerId,
    DropNulls,
    EpochTimestamps,
    Format,
    Inputs,
    JsonOut,
    LogFile,
    MapFile,
    Preset,
    Profile,
    ProfileEvent,
    Quiet,
    Rejected,
    Rename,
    RequireTimestamp,
    Timestamps,
    Unmapped,
    check_format,
    check_timestamps,
    load_mapping,
)
from revbridge_cli.cli.state_command import app as state_app
from revbridge_cli.config.bounds import BOUNDS
from revbridge_cli.config.resolve import require_credentials
from revbridge_cli.config.settings import build_settings
from revbridge_cli.errors import (
    EXIT_CODES_HELP,
    Exit,
    UsageError,
)
from revbridge_cli.input import reader
from revbridge_cli.input.paths import any_tabular
from revbridge_cli.report.summary import error_json
from revbridge_cli.shape.window import Window

if TYPE_CHECKING:
    pass
from revbridge_cli.cli.running import (
    check_output_paths,
    fail,
    resolve_flags,
    run_check,
    run_send,
    warn,
)

app = typer.Typer(
    name="revbridge",
    help="Bulk importer for the RevBridge Events API, with a local sandbox server.",
    epilog="Examples:\n\n\b\n  revbridge send --sandbox samples/\n  revbridge config\n"
    "  revbridge send --profile production exports/\n  revbridge --install-completion",
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


@app.command(
    epilog=EXIT_CODES_HELP + "\n\nExamples:\n\n\b\n"  # \b: click keeps these lines as they are
    "  revbridge send --sandbox samples/\n"
    "  REVBRIDGE_API_KEY=... REVBRIDGE_CUSTOMER_ID=... revbridge send export.ndjson.gz\n"
    "  revbridge send --profile production --state backfill.state exports/\n"
    "  pass show revbridge | revbridge send --api-key-file - --log-file run.log exports/\n"
    "  revbridge send rejected-20260115T143000Z.ndjson   # after fixing the rows"
)
def send(
    inputs: Inputs,
    api_key: ApiKey = None,
    api_key_file: ApiKeyFile = None,
    customer_id: CustomerId = None,
    base_url: BaseUrl = None,
    config: ConfigPath = None,
    profile: Profile = None,
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
        int | None,
        typer.Option(
            "--concurrency",
            **BOUNDS["concurrency"].typer(),
            help="Requests in flight at most. [default: 4]",
        ),
    ] = None,
    max_users: Annotated[
        int | None,
        typer.Option(
            "--max-users", **BOUNDS["max_users"].typer(), help="Users per request. [default: 1000]"
        ),
    ] = None,
    max_bytes: Annotated[
        int | None,
        typer.Option(
            "--max-bytes",
            **BOUNDS["max_bytes"].typer(),
            help="Request body limit in bytes. [default: 10000000]",
        ),
    ] = None,
    buffer_mb: Annotated[
        int | None,
        typer.Option(
            "--buffer-mb",
            **BOUNDS["buffer_mb"].typer(),
            help="Memory, MB, for holding events back while grouping them by user: more "
            "puts more of each user's events in one request, so fewer requests. [default: 160]",
        ),
    ] = None,
    max_retries: Annotated[
        int | None,
        typer.Option(
            "--max-retries",
            **BOUNDS["max_retries"].typer(),
            help="Retries per request; 0 means none. [default: 8]",
        ),
    ] = None,
    retry_initial_delay: Annotated[
        float | None,
        typer.Option(
            "--retry-initial-delay",
            **BOUNDS["retry_initial_delay"].typer(),
            help="First backoff wait, s. [default: 1]",
        ),
    ] = None,
    retry_max_delay: Annotated[
        float | None,
        typer.Option(
            "--retry-max-delay",
            **BOUNDS["retry_max_delay"].typer(),
            help="Longest backoff wait, s. [default: 60]",
        ),
    ] = None,
    timeout: Annotated[
        float | None,
        typer.Option(
            "--timeout",
            **BOUNDS["timeout"].typer(),
            help="Deadline of a whole request, connect to last byte, s. [default: 30]",
        ),
    ] = None,
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            **BOUNDS["grace_seconds"].typer(),
            help="After Ctrl-C or SIGTERM, seconds the requests in flight get to answer "
            "before they are given up (counted in doubt or not sent). [default: 5]",
        ),
    ] = None,
    rejected: Rejected = None,
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
    require_timestamp: RequireTimestamp = None,
    epoch_timestamps: EpochTimestamps = None,
    timestamps: Timestamps = None,
    drop_nulls: DropNulls = None,
    profile_event: ProfileEvent = None,
    map_file: MapFile = None,
    preset: Preset = None,
    rename: Rename = None,
    unmapped: Unmapped = None,
    log_file: LogFile = None,
    event_id_property: Annotated[
        str | None,
        typer.Option(
            "--event-id-property",
            metavar="NAME",
            help="Stamp every event with NAME: a stable hash of its user and content, the "
            "same however often it is sent, for deduplication downstream. [default: off]",
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run", help="Read, check and pack; report requests and bytes; send nothing."
        ),
    ] = False,
    strict: Annotated[
        bool | None,
        typer.Option(
            "--strict",
            help="Stop with exit 2 before the first request if the first records warn "
            "(identifier-like keys left unmapped, events without a timestamp, a preset that "
            "does not fit the data): nothing is sent.",
        ),
    ] = None,
    since: Annotated[
        str | None,
        typer.Option(
            "--since",
            metavar="DATE|TIME",
            help="Send only events at or after this ISO 8601 date or time (UTC unless it has "
            "an offset); the others are counted, not sent, not set aside.",
        ),
    ] = None,
    until: Annotated[
        str | None,
        typer.Option(
            "--until",
            metavar="DATE|TIME",
            help="Send only events before this ISO 8601 date or time (exclusive: --until "
            "2026-02-01 ends with January).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(
            "--limit",
            **BOUNDS["limit"].typer(),
            metavar="N",
            help="Read the first N records (after what --state already settled), send them, "
            "and stop: a trial run.",
        ),
    ] = None,
    check_only: Annotated[
        bool,
        typer.Option(
            "--check-only",
            help="Check the inputs can be opened and prove the key, customer id and server "
            "with one request that stores nothing (as `revbridge check`); read and send nothing.",
        ),
    ] = False,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Send events from files to RevBridge: stream, group by user, pack, deliver, and keep
    every record that did not go in a rejected file you can fix and send again."""
    flags = {k: v for k, v in locals().items() if k in _SEND_FLAGS}
    try:
        if api_key_file == "-" and "-" in inputs:
            raise UsageError("--api-key-file - and input - cannot both read standard input")
        check_timestamps(timestamps)
        mapping = load_mapping(map_file, preset, rename, unmapped)
        resolved = resolve_flags(flags, config, profile)
        if not sandbox and (check_only or not dry_run):
            require_credentials(resolved.connection)
        warn(resolved.warnings, quiet)
        settings = build_settings(
            inputs,
            resolved.connection,
            resolved.options,
            fmt=check_format(fmt),
            dry_run=dry_run,
            restart_changed=restart_changed,
            mapping=mapping,
            keep_rows=any_tabular(inputs, fmt),
            window=Window.of(since, until),
            limit=limit,
            **({} if grace is None else {"grace_seconds": grace}),
        )
        if check_only:
            for path in reader.expand_inputs(settings.inputs):
                reader.check_input(path)
        else:
            check_output_paths(settings, resolved.sources)
    except (UsageError, ValueError) as exc:
        fail(str(exc), json_out=json_out, dry_run=dry_run)
    if check_only:
        raise typer.Exit(int(run_check(settings, json_out=json_out, quiet=quiet, sandbox=sandbox)))
    code = run_send(settings, json_out=json_out, quiet=quiet, sandbox=sandbox)
    raise typer.Exit(int(code))


_SEND_FLAGS = frozenset(
    (
        "api_key",
        "api_key_file",
        "customer_id",
        "base_url",
        "concurrency",
        "max_users",
        "max_bytes",
        "buffer_mb",
        "max_retries",
        "retry_initial_delay",
        "retry_max_delay",
        "timeout",
        "rejected",
        "state",
        "require_timestamp",
        "epoch_timestamps",
        "timestamps",
        "drop_nulls",
        "profile_event",
        "strict",
        "log_file",
        "event_id_property",
    )
)


commands.register(app)  # config, check, validate: after send, as help lists them


def _mount_mapping() -> None:
    from revbridge_cli.cli.mapping_command import app as mapping_app

    app.add_typer(mapping_app, name="mapping")


_mount_mapping()


def _mount_sandbox() -> None:
    try:
        from revbridge_cli.sandbox.cli import app as sandbox_app
    except ImportError:  # the sandbox subpackage is being built
        return
    app.add_typer(sandbox_app, name="sandbox")


_mount_sandbox()
app.add_typer(state_app, name="state")


_JSON_COMMANDS = frozenset(("send", "validate", "check"))
# Click's usage-error base, found from Typer's public BadParameter: Typer may vendor click.
_CLICK_ERROR: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


def main() -> None:
    """The console script. Click's own usage errors (an unknown option, a value out of
    bounds) exit 2 as click words them; under --json they also print the one object."""
    args = sys.argv[1:]
    command = typer.main.get_command(app)
    help_format.apply(command)
    try:
        code = command.main(args, prog_name="revbridge", standalone_mode=False)
    except _CLICK_ERROR as exc:
        wants_json = "--json" in args[: args.index("--")] if "--" in args else "--json" in args
        if wants_json and args and args[0] in _JSON_COMMANDS:
            error = error_json(exc.format_message(), exc.exit_code, dry_run="--dry-run" in args)
            sys.stdout.write(orjson.dumps(error).decode() + "\n")
        exc.show()
        sys.exit(exc.exit_code)
    except typer.Abort:
        sys.stderr.write("Aborted!\n")
        sys.exit(1)
    except KeyboardInterrupt:  # Ctrl-C outside a run (during start-up): no traceback
        sys.stderr.write("interrupted\n")
        os._exit(int(Exit.INTERRUPTED))
    sys.exit(code if isinstance(code, int) else 0)
