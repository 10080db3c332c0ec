"""Command-line options that more than one command takes, each defined once.

`send`, `validate` and `config` share these, so a flag's name, help text and default cannot
differ from one command to the next; options only `send` has stay beside it in `cli.py`.
"""

from __future__ import annotations

from typing import Annotated

import typer

from revbridge_cli.errors import UsageError
from revbridge_cli.input.formats import FORMATS
from revbridge_cli.shape.mapfile import load_mapping as load_mapping  # its home: no Typer

# send and validate: what to read, and what to do with what is set aside

Inputs = Annotated[
    list[str],
    typer.Argument(
        help="NDJSON, JSON, CSV, TSV or Parquet files (.gz of the text ones read "
        "transparently), directories, globs, or - for stdin.",
        show_default=False,
        metavar="FILES",
    ),
]
Format = Annotated[
    str | None,
    typer.Option(
        "--format",
        help="csv, tsv, parquet, ndjson or json; by default detected from the content "
        "(Parquet by its magic bytes), else the name.",
    ),
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
        help="Convert numeric timestamps (epoch seconds, milliseconds, microseconds or "
        "nanoseconds, told apart by magnitude) to ISO 8601 UTC.",
    ),
]
Timestamps = Annotated[
    str | None,
    typer.Option(
        "--timestamps",
        help="strict: only the API's ISO 8601 [default]; lenient: also YYYY-MM-DD HH:MM:SS[.f], "
        "offsets +00/+0000/+00:00, a trailing UTC, epoch s/ms/µs (numbers or numeric text), "
        "all sent as ISO 8601 UTC.",
    ),
]
ProfileEvent = Annotated[
    str | None,
    typer.Option(
        "--profile-event",
        metavar="NAME",
        help="Send each profile update that no event of its person carried (an identify "
        "call, say) as an event named NAME, instead of holding it in the rejected file. "
        "[default: off]",
    ),
]
DropNulls = Annotated[
    bool | None,
    typer.Option(
        "--drop-nulls",
        help="Leave out a null revenue, event_value, timestamp or user_properties instead of "
        "setting the record aside.",
    ),
]
MapFile = Annotated[
    str | None,
    typer.Option(
        "--map",
        help="A mapping file (TOML): where each API field comes from in your records "
        "(see revbridge mapping show segment for an example).",
        show_default=False,
    ),
]
Preset = Annotated[
    str | None,
    typer.Option(
        "--preset",
        help="A shipped mapping for another tool's export: segment, amplitude, mixpanel, "
        "posthog or ga4 (print one with revbridge mapping show NAME).",
        show_default=False,
    ),
]
Rename = Annotated[
    list[str] | None,
    typer.Option(
        "--rename",
        help="SOURCE=TARGET, repeatable: use a source field as an API field, e.g. "
        "userId=user_id or amount=revenue (on top of --map or --preset, if given).",
        show_default=False,
    ),
]
Unmapped = Annotated[
    str | None,
    typer.Option(
        "--unmapped",
        help="With a mapping: keep (as event properties, the default) or drop the source "
        "fields it does not name.",
        show_default=False,
    ),
]
Show = Annotated[
    int,
    typer.Option(
        "--show",
        min=0,
        help="Print the first N records as they would be sent (one JSON line each, "
        "on stdout), mapping and options applied, before the check's summary.",
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
Quiet = Annotated[
    bool,
    typer.Option(
        "--quiet", "-q", help="No progress and no ordinary summary lines: only warnings and errors."
    ),
]


def check_timestamps(value: str | None) -> str | None:
    if value is not None and value not in ("strict", "lenient"):
        raise UsageError(f"--timestamps must be strict or lenient, not {value!r}")
    return value


def check_format(fmt: str | None) -> str | None:
    if fmt is not None and fmt not in FORMATS:
        raise UsageError(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}")
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
