"""The `revbridge` command line: options in, one settings object to the pipeline, exit code out."""

from __future__ import annotations

import typer

from revbridge_cli import __version__

app = typer.Typer(
    name="revbridge",
    help="Bulk importer for the RevBridge Events API, with a local sandbox server.",
    no_args_is_help=True,
    add_completion=True,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"revbridge {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Show the version and exit."
    ),
) -> None:
    """Bulk importer for the RevBridge Events API, with a local sandbox server."""


def _mount_sandbox() -> None:
    try:
        from revbridge_cli.sandbox.cli import app as sandbox_app
    except ImportError:  # the sandbox subpackage is being built
        return
    app.add_typer(sandbox_app, name="sandbox")


_mount_sandbox()


def main() -> None:
    app()
