"""The README cannot drift from the code (after sqlite-utils' test_docs.py).

Every command is documented; every option of `send` is in its table; every `revbridge ...`
command the README shows uses options that exist; the quick start really does what the README
says it does; and CI runs the README's test command.
"""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest
from conftest import cli
from typer.main import get_command

from revbridge_cli.cli import app

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
COMMANDS = ["send", "validate", "config", "sandbox"]


def _options(*path: str) -> set[str]:
    command = get_command(app)
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    return {opt for param in command.params for opt in getattr(param, "opts", [])}


def _readme_commands() -> list[list[str]]:
    """Every `revbridge ...` command in the README's code blocks, as argv (comments cut)."""
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", README, flags=re.S):
        for line in block.splitlines():
            for part in re.split(r"&&|\|\|", line):
                part = part.split(" #", 1)[0].strip()
                if part.startswith("revbridge "):
                    out.append(shlex.split(part)[1:])
                elif " revbridge " in part and not part.startswith("#"):
                    out.append(shlex.split(part[part.index(" revbridge ") + 1 :])[1:])
    return out


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_a_readme_section(command: str) -> None:
    assert f"### `revbridge {command}" in README


def test_every_send_option_is_in_the_readme() -> None:
    documented = set(re.findall(r"`(--[a-z-]+)", README))
    missing = {o for o in _options("send") if o.startswith("--")} - documented - {"--help"}
    assert not missing, f"send options missing from README: {sorted(missing)}"


def test_readme_commands_use_real_options() -> None:
    commands = _readme_commands()
    assert len(commands) >= 5
    for argv in commands:
        path = [argv[0]] if argv[0] in COMMANDS else []
        if path == ["sandbox"] and len(argv) > 1 and argv[1] == "stats":
            path = ["sandbox", "stats"]
        known = _options(*path) | {"--help"}
        used = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
        assert used <= known, f"{argv}: unknown {sorted(used - known)}"


def test_quick_start_runs_the_samples_on_the_sandbox(tmp_path: Path) -> None:
    first = re.search(r"```sh\n(python3 -m venv[^\n]*revbridge send[^\n]*)\n```", README)
    assert first, "the quick start's first command is gone"
    command = first.group(1).split("&& revbridge ", 1)[1]
    argv = shlex.split(command)
    argv = [str(ROOT / a) if a.startswith("samples") else a for a in argv]
    result = cli(*argv, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # as the README says: five bad records
    (rejected,) = tmp_path.glob("rejected-*.ndjson")
    assert len(rejected.read_text().splitlines()) == 5
    assert "sandbox: stored 104 events" in result.stderr


def test_ci_runs_the_readme_test_command() -> None:
    second = re.search(r"```sh\n(python3 -m venv[^\n]*pytest)\n```", README)
    assert second, "the quick start's test command is gone"
    ci = (ROOT / ".ci" / "run").read_text()
    assert "pip install --quiet -e '.[test]'" in ci
    assert ci.rstrip().endswith("pytest")
