"""The `revbridge` command line: options in, one settings object to the pipeline, exit code out.

Kept thin: the options the commands share are in `cli_options`, the exit codes and the mapping
from a run's outcome to one in `errors`, and `send --sandbox`'s server in `embedded_sandbox`.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import os
import sys
from contextlib import nullcontext
from typing import IO, TYPE_CHECKING, Annotated, Any

import orjson
import typer

from revbridge_cli import __version__
from revbridge_cli.cli import help_format
from revbridge_cli.cli.embedded_sandbox import embedded_sandbox
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
    Quiet,
    Rejected,
    Rename,
    RequireTimestamp,
    Show,
    Timestamps,
    Unmapped,
    check_format,
    check_timestamps,
    load_mapping,
)
from revbridge_cli.cli.runtime import stop_signals, throughput_gc
from revbridge_cli.cli.state_command import app as state_app
from revbridge_cli.config.bounds import BOUNDS
from revbridge_cli.config.outputs import check_outputs
from revbridge_cli.config.resolve import Resolved, render, require_credentials, resolve
from revbridge_cli.config.settings import SendSettings, build_settings
from revbridge_cli.errors import (
    EXIT_CODES_HELP,
    Exit,
    RevbridgeError,
    UsageError,
    exit_codes_help,
)
from revbridge_cli.input import reader
from revbridge_cli.input.paths import any_tabular
from revbridge_cli.report.summary import Summary, error_json
from revbridge_cli.shape.window import Window

if TYPE_CHECKING:
    from revbridge_cli.run import Run

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


def _resolve(flags: dict[str, Any], config: str | None, profile: str | None) -> Resolved:
    stdin: IO[str] | None = None
    if flags.get("api_key_file") == "-":
        stdin = sys.stdin
        if sys.stdin.isatty():  # typed by hand: no echo, so the key stays off the screen
            stdin = io.StringIO(getpass.getpass("API key: ") + "\n")
    return resolve(flags=flags, env=os.environ, config_path=config, profile=profile, stdin=stdin)


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
            min=1,
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
        resolved = _resolve(flags, config, profile)
        if not sandbox and (check_only or not dry_run):
            require_credentials(resolved.connection)
        _warn(resolved.warnings, quiet)
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
            _check_outputs(settings, resolved.sources)
    except (UsageError, ValueError) as exc:
        _fail(str(exc), json_out=json_out, dry_run=dry_run)
    if check_only:
        raise typer.Exit(int(_check(settings, json_out=json_out, quiet=quiet, sandbox=sandbox)))
    code = _run(settings, json_out=json_out, quiet=quiet, sandbox=sandbox)
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
        "log_file",
        "event_id_property",
    )
)


def _warn(warnings: list[str], quiet: bool) -> None:
    """Configuration warnings (a world-readable key file, a key on the command line) show even
    with --quiet: they are about the key's safety, and cron mails them to someone who can act."""
    for warning in warnings:
        typer.echo(f"revbridge: warning: {warning}", err=True)


@app.command(
    "config",
    context_settings={"allow_extra_args": True, "ignore_unknown_options": True},
    epilog=exit_codes_help("config")
    + "\n\nTakes every option and argument `revbridge send` takes (FILES are not read), and "
    "shows what that send would use.\n\nExamples:\n\n\b\n  revbridge config\n"
    "  revbridge config --profile production\n"
    "  revbridge config --profile production --concurrency 8 --state events.state exports/",
)
def config_command(ctx: typer.Context) -> None:
    """Show the settings a send would use, where each comes from, with the key masked."""
    # send's own parser, so config takes exactly send's flags and refuses what send refuses
    send_command = typer.main.get_command(app).commands["send"]  # type: ignore[attr-defined]
    help_format.apply(send_command)
    parsed = send_command.make_context("revbridge config", [*ctx.args, "-"])
    given = {
        k: v
        for k, v in parsed.params.items()
        if k not in ("inputs", "config", "profile") and v is not None and v is not False
    }
    try:
        resolved = _resolve(given, parsed.params["config"], parsed.params["profile"])
    except UsageError as exc:
        _fail(str(exc))
    typer.echo(render(resolved))


@app.command(
    "check",
    epilog=exit_codes_help("check")
    + "\n\nExamples:\n\n\b\n  revbridge check --profile production\n"
    "  REVBRIDGE_API_KEY=... REVBRIDGE_CUSTOMER_ID=... revbridge check --json",
)
def check_command(
    api_key: ApiKey = None,
    api_key_file: ApiKeyFile = None,
    customer_id: CustomerId = None,
    base_url: BaseUrl = None,
    config: ConfigPath = None,
    profile: Profile = None,
    timeout: Annotated[
        float | None,
        typer.Option("--timeout", min=0.1, help="Per-request timeout, s. [default: 30]"),
    ] = None,
    json_out: Annotated[
        bool, typer.Option("--json", help="Print the verdict as one JSON object on stdout.")
    ] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No text when all is well.")] = False,
) -> None:
    """Prove the key, the customer id and the server before a long run: the configuration is
    resolved as send would, then one request that stores nothing (an empty users list, which
    the API refuses with 400 once it has accepted the credentials)."""
    flags = {
        "api_key": api_key,
        "api_key_file": api_key_file,
        "customer_id": customer_id,
        "base_url": base_url,
        "timeout": timeout,
    }
    try:
        resolved = _resolve(flags, config, profile)
        require_credentials(resolved.connection)
        _warn(resolved.warnings, quiet)
        settings = build_settings([], resolved.connection, resolved.options)
    except (UsageError, ValueError) as exc:
        _fail(str(exc), json_out=json_out)
    raise typer.Exit(int(_check(settings, json_out=json_out, quiet=quiet)))


def _check(settings: SendSettings, *, json_out: bool, quiet: bool, sandbox: bool = False) -> Exit:
    from revbridge_cli.cli import check_command as check

    with embedded_sandbox(True) if sandbox else nullcontext() as server:
        url, key, customer = server or (settings.base_url, settings.api_key, settings.customer_id)
        assert key is not None and customer is not None  # require_credentials, or the sandbox's
        verdict = check.probe(url, key, customer, timeout=settings.timeout, retry=settings.retry)
    return check.report(verdict, json_out=json_out, quiet=quiet)


@app.command(
    epilog=exit_codes_help("validate") + "\n\nExamples:\n\n\b\n  revbridge validate export.ndjson\n"
    "  revbridge validate --require-timestamp exports/\n"
    "  revbridge validate --preset segment --show 3 segment-export.ndjson"
)
def validate(
    inputs: Inputs,
    fmt: Format = None,
    rejected: Rejected = None,
    require_timestamp: RequireTimestamp = None,
    epoch_timestamps: EpochTimestamps = None,
    timestamps: Timestamps = None,
    drop_nulls: DropNulls = None,
    map_file: MapFile = None,
    preset: Preset = None,
    rename: Rename = None,
    unmapped: Unmapped = None,
    show: Show = 0,
    json_out: JsonOut = False,
    quiet: Quiet = False,
) -> None:
    """Check files with the API's own rules without sending anything: counts per reason, the
    first examples with file and line, and the rejected file. Exit 1 if anything is invalid."""
    try:
        options = {
            "rejected": rejected,
            "require_timestamp": require_timestamp,
            "epoch_timestamps": epoch_timestamps,
            "timestamps": check_timestamps(timestamps),
            "drop_nulls": drop_nulls,
        }
        mapping = load_mapping(map_file, preset, rename, unmapped)
        settings = build_settings(
            inputs,
            None,
            options,
            fmt=check_format(fmt),
            send=False,
            mapping=mapping,
            keep_rows=any_tabular(inputs, fmt),
        )
        _check_outputs(settings, {})
        if show:
            from revbridge_cli.cli.preview import preview

            for line in preview(settings, show):
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except UsageError as exc:
        _fail(str(exc), json_out=json_out)
    raise typer.Exit(int(_run(settings, json_out=json_out, quiet=quiet)))


def _check_outputs(settings: SendSettings, sources: dict[str, str]) -> None:
    """Before anything is read or sent: every output path the run will write (exit 2)."""
    paths = {"rejected": settings.rejected, "state": settings.state, "log_file": settings.log_file}
    check_outputs(paths, sources, state_used=settings.send and not settings.dry_run)


def _fail(
    message: str, code: Exit = Exit.USAGE, *, json_out: bool = False, dry_run: bool = False
) -> None:
    """One `revbridge: error:` line and the exit; with --json also its one object on stdout."""
    if json_out:
        sys.stdout.write(orjson.dumps(error_json(message, int(code), dry_run=dry_run)).decode())
        sys.stdout.write("\n")
    typer.echo(f"revbridge: error: {message}", err=True)
    raise typer.Exit(int(code))


def _run(settings: SendSettings, *, json_out: bool, quiet: bool, sandbox: bool = False) -> Exit:
    from revbridge_cli.cli.console import LogFileReporter, Reporters, make_reporter

    as_json: dict[str, Any] = {"json_out": json_out, "dry_run": settings.dry_run}
    try:
        reporters = make_reporter(quiet=quiet, log_file=settings.log_file)
    except OSError as exc:
        _fail(f"cannot open --log-file {settings.log_file}: {exc.strerror}", **as_json)
    from revbridge_cli.run import Run

    run = Run(settings, reporters)
    try:
        run.prepare()
    except (RevbridgeError, OSError) as exc:  # the family's code: errors.py's one table
        reporters.close()
        _fail(str(exc), exc.exit_code if isinstance(exc, RevbridgeError) else Exit.USAGE, **as_json)
    try:
        with embedded_sandbox(quiet) if sandbox else nullcontext() as server:
            if server is not None:
                run.use_server(*server)
            summary = _execute(run, json_out)
        if (warning := _near_miss(settings)) is not None:
            summary.notices.append(warning)
    except BaseException:  # a live display must not leave the terminal without its cursor
        reporters.close()
        raise
    code = Exit(summary.exit_code)
    reporter = reporters
    if quiet:  # the log file still gets its summary
        reporter = Reporters(*(r for r in reporters.reporters if isinstance(r, LogFileReporter)))
    reporter.summary(summary)
    reporters.close()
    if json_out:  # after the display is gone, so the two never mix on one terminal
        sys.stdout.write(
            orjson.dumps({**summary.to_json(), "exit_code": int(code)}).decode() + "\n"
        )
    return code


def _execute(run: Run, json_out: bool = False) -> Summary:
    """The run, with what the command line adds around it and takes away after: stop
    signals (SIGINT, SIGTERM, SIGHUP) and the collector's tuning (process.py)."""

    def quit_now(why: str, code: int) -> None:  # a second signal: the --json object, still
        os.write(1, orjson.dumps(error_json(why, code, dry_run=run.settings.dry_run)) + b"\n")

    on_quit = quit_now if json_out else None
    with asyncio.Runner() as runner, stop_signals(runner.get_loop(), run, on_quit), throughput_gc():
        return runner.run(run.execute())


def _near_miss(settings: SendSettings) -> str | None:
    tally = settings.shape.near_miss
    return tally.warning() if tally is not None else None


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
