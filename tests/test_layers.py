"""Imports point one way: the pure stages at the bottom, the run above them, the Python API
above the run, the command line on top; the sandbox stands apart. A module may import its
own layer or one below, never one above, so the library never loads the CLI (Typer, Rich,
Click) and no cycle can form across layers.

The run's own packages are layers too, in the order a run is built (its settings, delivery,
the journal, the report, the feed, the run itself): one layer for all of them let state and
report, or config and delivery, import each other. Within a layer, no module may reach itself
through its imports (cli/app and cli/commands once did, registering by a late import).

The layers are read from the source with `ast`: every import counts, top level or inside a
function, since a deferred import is still a dependency.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "revbridge_cli"

# Longest prefix wins. shape/timestamps.py is a pure leaf (it imports the contract only) that
# both the Parquet reader and the shaper read: it sits below both. config/ is where options
# come from (bounds, credentials, profiles, the retry policy); its settings module assembles
# the run's options from every stage's, so it sits above the stages, below what reads it.
# text.py (terminal-safe text, redaction) imports nothing of the package: every layer may.
LAYERS: dict[str, int] = {
    "revbridge_cli.errors": 0,
    "revbridge_cli.contract": 0,
    "revbridge_cli.loopback": 0,
    "revbridge_cli.version": 0,
    "revbridge_cli.text": 0,
    "revbridge_cli.config": 0,
    "revbridge_cli.shape.timestamps": 0,
    "revbridge_cli.input": 1,
    "revbridge_cli.shape": 2,
    "revbridge_cli.pack": 3,
    "revbridge_cli.config.settings": 4,
    "revbridge_cli.delivery": 5,
    "revbridge_cli.state": 6,
    "revbridge_cli.report": 7,
    "revbridge_cli.feed": 8,
    "revbridge_cli.run": 9,
    "revbridge_cli": 10,  # the package root re-exports the API
    "revbridge_cli.api": 10,
    "revbridge_cli.arguments": 10,
    "revbridge_cli.engines": 11,
    "revbridge_cli.spark": 11,
    "revbridge_cli.dask": 11,
    "revbridge_cli.cli": 12,
    "revbridge_cli.__main__": 12,
}
SANDBOX = "revbridge_cli.sandbox"
SANDBOX_MAY_IMPORT = {"revbridge_cli.contract", "revbridge_cli.loopback", "revbridge_cli.errors"}
CLI_ONLY = ("typer", "rich", "click")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(name: str) -> bool:
    base = PACKAGE.parent.joinpath(*name.split("."))
    return base.with_suffix(".py").exists() or (base / "__init__.py").exists()


def _imports(path: Path) -> set[str]:
    """The package's modules this file imports (`from revbridge_cli import contract` is the
    module contract; `from revbridge_cli import __version__` is the package root)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                names.add(sub if _is_module(sub) else node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n == "revbridge_cli" or n.startswith("revbridge_cli.")}


def _layer(name: str) -> int | None:
    if name == SANDBOX or name.startswith(SANDBOX + "."):
        return None
    prefixes = [p for p in LAYERS if name == p or name.startswith(p + ".")]
    assert prefixes, f"{name} is in no layer: add it to LAYERS"
    return LAYERS[max(prefixes, key=len)]


MODULES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", MODULES, ids=lambda p: _module_name(p))
def test_no_module_imports_a_layer_above_its_own(path: Path) -> None:
    name = _module_name(path)
    own = _layer(name)
    for target in sorted(_imports(path)):
        if own is None:  # the sandbox: itself and the shared rules only
            assert target.startswith(SANDBOX) or target in SANDBOX_MAY_IMPORT, (
                f"{name} imports {target}"
            )
            continue
        layer = _layer(target)
        if layer is None:
            assert own == LAYERS["revbridge_cli.cli"], f"{name} imports the sandbox ({target})"
            continue
        assert layer <= own, f"{name} (layer {own}) imports {target} (layer {layer})"


def test_the_layers_name_every_module() -> None:
    """A new module or package is placed on purpose, not by a default."""
    for path in MODULES:
        _layer(_module_name(path))


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in `graph`, as the modules around it (first repeated last), or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        path.append(name)
        for target in sorted(graph.get(name, ())):
            found = visit(target)
            if found:
                return found
        path.pop()
        done.add(name)
        return None

    for name in sorted(graph):
        found = visit(name)
        if found:
            return found
    return None


def test_no_module_reaches_itself_through_its_imports() -> None:
    """The layers forbid cycles between layers; this forbids them inside one (a package)."""
    graph = {_module_name(path): _imports(path) - {_module_name(path)} for path in MODULES}
    cycle = _cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_check_finds_a_cycle() -> None:
    """The check above is only worth its pass if it can fail."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set(), "c": {"b"}}) is None


@pytest.mark.e2e
def test_importing_the_library_loads_no_cli_package() -> None:
    """`import revbridge_cli` in a notebook or a Spark executor costs what the library needs:
    neither Typer nor Rich nor Click (the CLI's), checked in a fresh interpreter. Click is
    installed here when Dask is, and then httpx's own command line would bring Click and
    Rich: `revbridge_cli/delivery/__init__.py` says why it does not."""
    code = (
        "import sys, revbridge_cli, revbridge_cli.engines\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {CLI_ONLY!r}))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"
