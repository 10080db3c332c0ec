"""The tree shows the flow, and the docs' map of it cannot drift (issue 13).

The map in docs/development.md lists every module and subpackage, nested as in the tree, and
nothing that is not there; each subpackage says in its docstring which stage it is; modules
stay near the house limit of 400 lines; the pure stages import no I/O library.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "revbridge_cli"
DEVELOPMENT = (ROOT / "docs" / "development.md").read_text()
MAX_LINES = 420  # the house style's "about 400": the largest (journal, packer) are at 410
PURE = ("shape", "pack")  # the stages that are plain functions on plain data
IO_MODULES = {"httpx", "sqlite3", "typer", "rich", "asyncio", "socket", "subprocess", "os"}


def _tree() -> set[str]:
    out = set()
    for path in PACKAGE.rglob("*"):
        rel = path.relative_to(PACKAGE)
        if "__pycache__" in rel.parts or "presets" in rel.parts[:-1]:
            continue
        if path.is_dir() and (path / "__init__.py").exists():
            out.add(f"{rel.as_posix()}/")
        elif (
            path.suffix == ".py"
            and path.name != "__main__.py"
            and (path.name != "__init__.py" or path.parent == PACKAGE)
        ):
            out.add(rel.as_posix())
    return out


def _readme_map() -> set[str]:
    section = DEVELOPMENT[DEVELOPMENT.index("# Development") :]
    block = section[section.index("```\n") + 4 :]
    block = block[: block.index("```")]
    lines = block.splitlines()
    assert lines[0] == "revbridge_cli/"
    listed, stack = set(), []
    for line in lines[1:]:
        depth = (len(line) - len(line.lstrip(" "))) // 2
        name = line.split()[0]
        stack[depth - 1 :] = [name]
        listed.add("".join(stack))
    return listed


def test_the_readme_map_lists_exactly_the_tree() -> None:
    tree, listed = _tree(), _readme_map()
    assert not tree - listed, f"modules missing from the docs' map: {sorted(tree - listed)}"
    assert not listed - tree, f"the docs' map names what is not there: {sorted(listed - tree)}"


def test_each_subpackage_names_its_stage() -> None:
    for init in PACKAGE.glob("*/__init__.py"):
        doc = ast.get_docstring(ast.parse(init.read_text()))
        assert doc, f"{init.relative_to(ROOT)} has no docstring saying what the stage is"


@pytest.mark.parametrize(
    "path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.relative_to(PACKAGE).as_posix()
)
def test_no_module_is_much_over_the_house_limit(path: Path) -> None:
    lines = len(path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{path.relative_to(ROOT)} has {lines} lines: split it"


@pytest.mark.parametrize("stage", PURE)
def test_the_pure_stages_import_no_io(stage: str) -> None:
    for path in (PACKAGE / stage).rglob("*.py"):
        tree = ast.parse(path.read_text())
        names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import)
                 for a in n.names}  # fmt: skip
        names |= {
            (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
        }
        assert not names & IO_MODULES, f"{path.relative_to(ROOT)} imports {names & IO_MODULES}"


def test_the_package_root_holds_only_the_shared_and_public_modules() -> None:
    top = {p.name for p in PACKAGE.glob("*.py")}
    assert top == {
        "__init__.py", "__main__.py", "api.py", "arguments.py", "run.py", "feed.py", "errors.py",
        "contract.py", "loopback.py", "text.py", "version.py", "spark.py", "dask.py",
    }  # fmt: skip
    assert re.search(r"^  run\.py ", DEVELOPMENT, flags=re.M)
