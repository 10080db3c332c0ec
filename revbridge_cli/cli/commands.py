"""`revbridge config`, `revbridge check` and `revbridge validate`: the commands beside send.

Registered on the one Typer app by `register(app)`, which `app` calls: this module never
imports `app`, so the two do not import each other and importing this registers nothing.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Annotated, Any

import typer

from revbridge_cli.cli import help_format
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
from revbridge_cli.cli.running import (
    check_output_paths,
    fail,
    resolve_flags,
    run_check,
    run_send,
    warn,
)
from revbridge_cli.config.resolve import render, require_credentials
from revbridge_cli.config.settings import build_settings
from revbridge_cli.errors import (
    UsageError,
    exit_codes_help,
)
from revbridge_cli.input.paths import any_tabular

_COMMANDS: list[tuple[tuple[Any, ...], dict[str, Any], Callable[..., Any]]] = []


def _command(*args: Any, **kwargs: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """`app.command(...)` kept for `register`, so the commands are declared where they are
    written and mounted on an app the caller names."""

    def keep(fn: Callable[..., Any]) -> Callable[..., Any]:
        _COMMANDS.append((args, kwargs, fn))
        return fn

    return keep


def register(app: typer.Typer) -> None:
    """Mount config, check and validate on `app`, in the order they are written."""
    for args, kwargs, fn in _COMMANDS:
        app.command(*args, **kwargs)(fn)


@_command(
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
    send_command = ctx.find_root().command.commands["send"]  # type: ignore[attr-defined]
    help_format.apply(send_command)
    parsed = send_command.make_context("revbridge config", [*ctx.args, "-"])
    given = {
        k: v
        for k, v in parsed.params.items()
        if k not in ("inputs", "config", "profile") and v is not None and v is not False
    }
    try:
        resolved = resolve_flags(given, parsed.params["config"], parsed.params["profile"])
    except UsageError as exc:
        fail(str(exc))
    typer.echo(render(resolved))


@_command(
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
        resolved = resolve_flags(flags, config, profile)
        require_credentials(resolved.connection)
        warn(resolved.warnings, quiet)
        settings = build_settings([], resolved.connection, resolved.options)
    except (UsageError, ValueError) as exc:
        fail(str(exc), json_out=json_out)
    raise typer.Exit(int(run_check(settings, json_out=json_out, quiet=quiet)))


@_command(
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
        check_output_paths(settings, {})
        if show:
            from revbridge_cli.cli.preview import preview

            for line in preview(settings, show):
                sys.stdout.write(line + "\n")
            sys.stdout.flush()
    except UsageError as exc:
        fail(str(exc), json_out=json_out)
    raise typer.Exit(int(run_send(settings, json_out=json_out, quiet=quiet)))
