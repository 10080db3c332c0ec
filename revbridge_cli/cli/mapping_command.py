"""`revbridge mapping show NAME`: print a shipped preset, the file a user copies to adjust.

Its own sub-command group, mounted by `cli`, so the main command module stays the thin shell
over `send` and `validate`.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from revbridge_cli.errors import Exit, UsageError
from revbridge_cli.shape.mapfile import preset_text
from revbridge_cli.text import clean

app = typer.Typer(
    help="The shipped mappings (presets) for other tools' exports: print one to copy and adjust.",
    no_args_is_help=True,
    rich_markup_mode=None,
)


@app.command(
    "show",
    epilog="Examples:\n\n\b\n  revbridge mapping show segment\n"
    "  revbridge mapping show amplitude > amplitude.toml   # then --map amplitude.toml",
)
def show(
    name: Annotated[
        str,
        typer.Argument(
            metavar="NAME", help="segment, amplitude, mixpanel, posthog or ga4.", show_default=False
        ),
    ],
) -> None:
    """Print a preset's mapping file (TOML), the same format --map reads."""
    try:
        text = preset_text(name)
    except UsageError as exc:
        typer.echo(f"revbridge: error: {clean(str(exc))}", err=True)
        raise typer.Exit(int(Exit.USAGE)) from None
    sys.stdout.write(text)
