"""Command-line options that more than one command takes, each defined once.

`send`, `validate` and `config` share these, so a flag's name, help text and default cannot
differ from one command to the next; options only `send` has stay beside it in `cli.py`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from revbridge_cli.errors import UsageError

# send and validate: what to read, and what to do with what is set aside

Inputs = Annotated[
    list[str],
    typer.Argument(
        help="NDJSON or JSON files (.gz read transparently), directories, globs, or - for stdin.",
        show_default=False,
        metavar="FILES",
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
    bool | None,
    typer.Option(
        "--require-timestamp",
        help="Set aside events without a timestamp instead of "
        "letting the server stamp them with the time of arrival.",
    ),
]
EpochTimestamps = Annotated[
    bool | None,
    typer.Option(
        "--epoch-timestamps",
        help="Convert numeric timestamps (epoch seconds or milliseconds) to ISO 8601 UTC.",
    ),
]
LogFile = Annotated[
    str | None,
    typer.Option(
        "--log-file",
        help="Append a log of the run to this file, with the trace_id "
        "of every request that was not a plain 202.",
    ),
]
JsonOut = Annotated[
    bool, typer.Option("--json", help="Print the summary as one JSON object on stdout.")
]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress and no summary text.")]


FORMATS = ("ndjson", "json")  # --format's choices (help_format shows them as its metavar)


def check_format(fmt: str | None) -> str | None:
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format must be {' or '.join(FORMATS)}, not {fmt!r}")
    return fmt


# send and config: where the connection settings come from

ConfigPath = Annotated[
    str | None,
    typer.Option(
        "--config",
        help="Config file with profiles (default ~/.config/revbridge/config.toml, "
        "or REVBRIDGE_CONFIG).",
        show_default=False,
    ),
]
Profile = Annotated[
    str | None,
    typer.Option("--profile", help="Profile of the config file to use (or REVBRIDGE_PROFILE)."),
]
ApiKey = Annotated[
    str | None,
    typer.Option(
        "--api-key",
        show_default=False,
        help="API key. Visible in shell history and ps: prefer REVBRIDGE_API_KEY or "
        "--api-key-file.",
    ),
]
ApiKeyFile = Annotated[
    str | None,
    typer.Option(
        "--api-key-file", help="Read the API key from this file's first line (- for stdin)."
    ),
]
CustomerId = Annotated[
    str | None,
    typer.Option(
        "--customer-id", help="Your customer id, sent as x-customer-id (or REVBRIDGE_CUSTOMER_ID)."
    ),
]
BaseUrl = Annotated[
    str | None,
    typer.Option(
        "--base-url",
        help="API base URL, or the words production / development (or "
        "REVBRIDGE_BASE_URL). http:// only for loopback.",
        show_default=False,
    ),
]
