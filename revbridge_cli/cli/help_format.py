"""What `--help` shows for a value: a word a person reads (`PATH`, `N`, `ndjson|json`), not the
Python type Typer would print (`<str>`, `<int range>`, `FILES <list[str]>`).

Applied to the built command tree, once, by `cli.main`, so each option keeps its definition
where it is and a new option gets a sensible metavar without anyone remembering to: a table
for the known ones, the option's last word upper-cased for any other.
"""

from __future__ import annotations

from typing import Any

from revbridge_cli.cli.options import FORMATS

_SECONDS = "SECONDS"
_NUMBERS = "N,N,..."
METAVARS = {
    "--api-key": "KEY",
    "--api-key-file": "PATH",
    "--customer-id": "ID",
    "--base-url": "URL",
    "--config": "PATH",
    "--profile": "NAME",
    "--format": "|".join(FORMATS),
    "--concurrency": "N",
    "--max-users": "N",
    "--max-bytes": "BYTES",
    "--buffer-mb": "MB",
    "--max-retries": "N",
    "--retry-initial-delay": _SECONDS,
    "--retry-max-delay": _SECONDS,
    "--timeout": _SECONDS,
    "--grace": _SECONDS,
    "--rejected": "PATH",
    "--state": "PATH",
    "--log-file": "PATH",
    "--host": "HOST",
    "--port": "PORT",
    "--db": "PATH",
    "--seed": "N",
    "--latency": _SECONDS,
    "--fail-rate": "0..1",
    "--fail-requests": _NUMBERS,
    "--fail-status": "STATUS",
    "--retry-after": _SECONDS,
    "--hang-rate": "0..1",
    "--hang-requests": _NUMBERS,
    "--hang-seconds": _SECONDS,
    "--reset-rate": "0..1",
    "--reset-requests": _NUMBERS,
    "--max-body-bytes": "BYTES",
    "--revoke-after": "N",
    "--reject-user-ids": "ID,ID,...",
    "--last": "N",
}


def metavar_for(opts: list[str]) -> str:
    long = next((o for o in opts if o.startswith("--")), opts[0])
    return METAVARS.get(long) or long.lstrip("-").rsplit("-", 1)[-1].upper()


def apply(command: Any) -> None:
    """Give every value option a metavar, and every argument its metavar alone (Typer appends
    the type to it in the help and wraps it in braces in the usage line)."""
    for param in command.params:
        if param.param_type_name == "option":
            if param.metavar is None and not getattr(param, "is_flag", False):
                param.metavar = metavar_for(param.opts)
        elif param.param_type_name == "argument" and param.metavar is not None:
            shown = param.metavar + ("..." if param.nargs != 1 else "")
            usage = shown if param.required else f"[{shown}]"
            # Instance attributes win over Typer's methods of the same name (typer.core).
            param.display_type_rich = lambda ctx: None
            param._usage_display_name = lambda usage=usage: usage
            param._rich_display_name = lambda shown=shown: shown
    for sub in (getattr(command, "commands", None) or {}).values():
        apply(sub)
