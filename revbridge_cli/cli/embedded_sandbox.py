"""`send --sandbox`: the embedded sandbox, started for one run and stopped after it.

The sandbox subpackage imports only `contract`, `loopback` and `errors` from the rest, so what
joins it to a send (the settings that point at it, the key type, the lines on stderr) lives
here, on the importer's side.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import typer

from revbridge_cli.config.credentials import Secret


@contextmanager
def embedded_sandbox(quiet: bool) -> Iterator[tuple[str, Secret, str]]:
    """`--sandbox`: a local server on a free loopback port, and its URL, key and customer id.

    Started only once the inputs are known to be readable, so a typo costs no server."""
    from revbridge_cli.sandbox import Sandbox

    with Sandbox() as sb:
        if not quiet:
            typer.echo(
                f"sandbox: {sb.url} (a temporary database; to keep what arrives, run "
                "`revbridge sandbox --db PATH` and send there)",
                err=True,
            )
        yield sb.url, Secret(sb.api_key), sb.customer_id
        if not quiet:
            _sandbox_received(sb)


def _sandbox_received(sb: Any) -> None:  # Any: the sandbox is imported only when used
    """What the embedded sandbox stored: the proof that the events arrived."""
    stats = sb.stats()
    typer.echo(
        f"sandbox: stored {stats['events_accepted']:,} events in "
        f"{stats['users_accepted']:,} user objects, {stats['requests']:,} requests",
        err=True,
    )
