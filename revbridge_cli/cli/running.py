"""What every command does around its own work: resolve the flags, refuse what cannot run,
run a send or a check with the process-wide runtime around it, and fail in one line.

Shared by the commands in `app` and `commands`, so each command's function is only its
options and the settings they make.
"""

from __future__ import annotations

import asyncio
import getpass
import io
import os
import sys
from contextlib import nullcontext
from typing import IO, TYPE_CHECKING, Any

import orjson
import typer

from revbridge_cli.cli.embedded_sandbox import embedded_sandbox
from revbridge_cli.cli.runtime import stop_signals, throughput_gc
from revbridge_cli.config.outputs import check_outputs
from revbridge_cli.config.resolve import Resolved, resolve
from revbridge_cli.config.settings import SendSettings
from revbridge_cli.errors import (
    Exit,
    RevbridgeError,
)
from revbridge_cli.report.summary import Summary, error_json
from revbridge_cli.text import clean, clean_json

if TYPE_CHECKING:
    from revbridge_cli.run import Run


def resolve_flags(flags: dict[str, Any], config: str | None, profile: str | None) -> Resolved:
    stdin: IO[str] | None = None
    if flags.get("api_key_file") == "-":
        stdin = sys.stdin
        if sys.stdin.isatty():  # typed by hand: no echo, so the key stays off the screen
            stdin = io.StringIO(getpass.getpass("API key: ") + "\n")
    return resolve(flags=flags, env=os.environ, config_path=config, profile=profile, stdin=stdin)


def warn(warnings: list[str], quiet: bool) -> None:
    """Configuration warnings (a world-readable key file, a key on the command line) show even
    with --quiet: they are about the key's safety, and cron mails them to someone who can act."""
    for warning in warnings:
        typer.echo(f"revbridge: warning: {warning}", err=True)


def run_check(
    settings: SendSettings, *, json_out: bool, quiet: bool, sandbox: bool = False
) -> Exit:
    from revbridge_cli.cli import check_command as check

    with embedded_sandbox(True) if sandbox else nullcontext() as server:
        url, key, customer = server or (settings.base_url, settings.api_key, settings.customer_id)
        assert key is not None and customer is not None  # require_credentials, or the sandbox's
        verdict = check.probe(url, key, customer, timeout=settings.timeout, retry=settings.retry)
    return check.report(verdict, json_out=json_out, quiet=quiet)


def check_output_paths(settings: SendSettings, sources: dict[str, str]) -> None:
    """Before anything is read or sent: every output path the run will write (exit 2)."""
    paths = {"rejected": settings.rejected, "state": settings.state, "log_file": settings.log_file}
    check_outputs(paths, sources, state_used=settings.send and not settings.dry_run)


def fail(
    message: str, code: Exit = Exit.USAGE, *, json_out: bool = False, dry_run: bool = False
) -> None:
    """One `revbridge: error:` line and the exit; with --json also its one object on stdout."""
    if json_out:
        error = clean_json(error_json(message, int(code), dry_run=dry_run))
        sys.stdout.write(orjson.dumps(error).decode())
        sys.stdout.write("\n")
    typer.echo(f"revbridge: error: {clean(message)}", err=True)
    raise typer.Exit(int(code))


def run_send(settings: SendSettings, *, json_out: bool, quiet: bool, sandbox: bool = False) -> Exit:
    from revbridge_cli.cli.console import LogFileReporter, Reporters, make_reporter

    as_json: dict[str, Any] = {"json_out": json_out, "dry_run": settings.dry_run}
    try:
        reporters = make_reporter(quiet=quiet, log_file=settings.log_file)
    except OSError as exc:
        fail(f"cannot open --log-file {settings.log_file}: {exc.strerror}", **as_json)
    from revbridge_cli.run import Run

    run = Run(settings, reporters)
    try:
        run.prepare()
    except (RevbridgeError, OSError) as exc:  # the family's code: errors.py's one table
        reporters.close()
        fail(str(exc), exc.exit_code if isinstance(exc, RevbridgeError) else Exit.USAGE, **as_json)
    try:
        with embedded_sandbox(quiet) if sandbox else nullcontext() as server:
            if server is not None:
                run.use_server(*server)
            summary = execute(run, json_out)
        if (warning := near_miss(settings)) is not None:
            summary.notices.append(warning)
    except BaseException:  # a live display must not leave the terminal without its cursor
        reporters.close()
        raise
    code = Exit(summary.exit_code)
    reporter = reporters
    if quiet:  # the log file still gets its summary; the screen what is not ordinary
        reporter = Reporters(*(r for r in reporters.reporters if isinstance(r, LogFileReporter)))
        for line in quiet_lines(summary):
            sys.stderr.write(line + "\n")
    reporter.summary(summary)
    reporters.close()
    if json_out:  # after the display is gone, so the two never mix on one terminal
        shown = clean_json({**summary.to_json(), "exit_code": int(code)})
        sys.stdout.write(orjson.dumps(shown).decode() + "\n")
    return code


def quiet_lines(summary: Summary) -> list[str]:
    """What --quiet keeps of the summary: every warning and error (input stopped early, a
    fatal stop, events without a timestamp...), as the full summary words them, and the
    rows set aside, since cron mails what a job prints and not its exit code."""
    lines = [f"warning: {w}" for w in summary.warnings()]
    if summary.rejected_rows and summary.rejected_file:
        n = summary.rejected_rows
        rows = f"{n:,} row set aside" if n == 1 else f"{n:,} rows set aside"
        lines.append(f"warning: {rows}: see {summary.rejected_file}")
    return lines


def execute(run: Run, json_out: bool = False) -> Summary:
    """The run, with what the command line adds around it and takes away after: stop
    signals (SIGINT, SIGTERM, SIGHUP) and the collector's tuning (runtime.py)."""

    def quit_now(why: str, code: int) -> None:  # a second signal: the --json object, still
        error = clean_json(error_json(why, code, dry_run=run.settings.dry_run))
        os.write(1, orjson.dumps(error) + b"\n")

    on_quit = quit_now if json_out else None
    with asyncio.Runner() as runner, stop_signals(runner.get_loop(), run, on_quit), throughput_gc():
        return runner.run(run.execute())


def near_miss(settings: SendSettings) -> str | None:
    tally = settings.shape.near_miss
    return tally.warning() if tally is not None else None
