"""The docs cannot drift from the code (after sqlite-utils' test_docs.py).

The docs are README.md and the pages under docs/ (tests/docs_pages.py). Every command and
option the Typer app has (read from the app, not listed here) has help text and an entry in
them; every `revbridge ...` command they show uses options that exist; every page is in the
README's map and every relative link resolves; the quick start really does what the README
says it does; and CI runs the README's test command.
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import cli
from docs_pages import PAGES, README, ROOT, all_text, anchors, section, text, without_code
from typer.main import get_command

from revbridge_cli.cli.app import app
from revbridge_cli.errors import COMMAND_EXITS, Exit

FRONT = text(README)
DOCS = all_text()
APP = get_command(app)


def _walk(command: Any, path: tuple[str, ...] = ()) -> Iterator[tuple[tuple[str, ...], Any]]:
    """The app's command tree as Typer builds it: the root, each command, each subcommand."""
    yield path, command
    for name, sub in sorted((getattr(command, "commands", None) or {}).items()):
        if not sub.hidden:
            yield from _walk(sub, (*path, name))


COMMANDS = {path: command for path, command in _walk(APP)}
TOP_LEVEL = sorted(path[0] for path in COMMANDS if len(path) == 1)


def _options(*path: str) -> set[str]:
    return {opt for param in COMMANDS[path].params for opt in getattr(param, "opts", [])}


def _section(name: str) -> str:
    """The docs' text for `revbridge NAME`: from its heading to the next of its level."""
    for page in PAGES:
        found = section(text(page), f"`revbridge {name}")
        if found and re.match(rf"#+ `revbridge {name}\b", found):
            return found
    raise AssertionError(f"no page has a section for `revbridge {name}`")


def test_every_command_the_docs_describe_exists() -> None:
    """The other direction: no section for a command the app lost or renamed."""
    described = sorted(set(re.findall(r"^#{2,3} `revbridge ([a-z-]+)", DOCS, flags=re.M)))
    assert described == TOP_LEVEL


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=lambda p: " ".join(("revbridge", *p)))
def test_every_command_has_help_and_a_docs_entry(path: tuple[str, ...]) -> None:
    command = COMMANDS[path]
    assert (command.help or "").strip(), f"revbridge {' '.join(path)} has no help text"
    if len(path) == 1:
        _section(path[0])  # its own section
    elif len(path) > 1:
        assert f"`revbridge {' '.join(path)}" in _section(path[0])  # named in its parent's


OPTIONS = [
    (path, param)
    for path, command in sorted(COMMANDS.items())
    for param in command.params
    if param.param_type_name == "option" and not param.hidden
]


@pytest.mark.parametrize(
    ("path", "param"),
    OPTIONS,
    ids=[" ".join(("revbridge", *path, param.opts[0])) for path, param in OPTIONS],
)
def test_every_option_has_help_and_is_documented(path: tuple[str, ...], param: Any) -> None:
    where = " ".join(("revbridge", *path))
    assert (param.help or "").strip(), f"{where} {param.opts[0]} has no help text"
    for opt in param.opts:
        if opt.startswith("--"):
            assert re.search(rf"(?<![\w-]){re.escape(opt)}(?![\w-])", DOCS), (
                f"{where} {opt} is documented neither in the README nor in docs/"
            )


def test_every_argument_has_help() -> None:
    for path, command in COMMANDS.items():
        for param in command.params:
            if param.param_type_name == "argument":
                assert (getattr(param, "help", None) or "").strip(), (path, param.name)


def _readme_commands() -> list[list[str]]:
    """Every `revbridge ...` command in the docs' code blocks, as argv (comments cut)."""
    out = []
    for block in re.findall(r"```[a-z]*\n(.*?)```", DOCS, flags=re.S):
        block = re.sub(r"\\\n\s*", " ", block)  # a shell's continued lines, as one
        for line in block.splitlines():
            for part in re.split(r"&&|\|\|", line):
                part = part.split(" #", 1)[0].strip()
                if part.startswith("revbridge "):
                    out.append(shlex.split(part)[1:])
                elif " revbridge " in part and not part.startswith("#"):
                    out.append(shlex.split(part[part.index(" revbridge ") + 1 :])[1:])
    return out


def test_the_docs_commands_use_real_options() -> None:
    commands = _readme_commands()
    assert len(commands) >= 5
    for argv in commands:
        path: tuple[str, ...] = ()
        for word in argv:  # the longest command path the words name
            if (*path, word) not in COMMANDS:
                break
            path = (*path, word)
        known = _options(*path) | {"--help"}
        used = {a.split("=", 1)[0] for a in argv if a.startswith("--")}
        assert used <= known, f"{argv}: unknown {sorted(used - known)}"


@pytest.mark.e2e
def test_quick_start_runs_the_samples_on_the_sandbox(tmp_path: Path) -> None:
    first = re.search(r"```sh\n(python3 -m venv[^\n]*revbridge send[^\n]*)\n```", FRONT)
    assert first, "the quick start's first command is gone"
    command, said = first.group(1).split("&& revbridge ", 1)[1].split("; echo ", 1)
    assert "1 is expected" in said and "five bad records" in said  # in its own output
    argv = shlex.split(command)
    argv = [str(ROOT / a) if a.startswith("samples") else a for a in argv]
    result = cli(*argv, cwd=tmp_path)
    assert result.returncode == 1, result.stderr  # as the README says: five bad records
    (rejected,) = tmp_path.glob("rejected-*.ndjson")
    assert len(rejected.read_text().splitlines()) == 5
    assert "sandbox: stored 104 events" in result.stderr


def test_ci_runs_the_readme_test_command() -> None:
    second = re.search(r"```sh\n(python3 -m venv[^\n]*pytest)\n```", FRONT)
    assert second, "the quick start's test command is gone"
    ci = (ROOT / ".ci" / "run").read_text()
    # The README's extras, and CI's own on top (the engines': their tests skip without them).
    assert re.search(r"pip install --quiet -e '\.\[test(,spark|,dask)*\]'", ci)
    assert ci.rstrip().endswith("pytest")


def test_the_docs_mapping_examples_are_valid_mappings() -> None:
    """Every TOML block with a `[fields]` table is a mapping file (the others are profiles)."""
    from revbridge_cli.shape.mapfile import parse

    blocks = [
        (page, block)
        for page in PAGES
        for block in re.findall(r"```toml\n(.*?)```", text(page), flags=re.S)
        if re.search(r"^\[fields\]", block, flags=re.M)
    ]
    assert blocks, "the docs show no mapping file"
    for page, block in blocks:
        mapping = parse(block, page.name)
        assert mapping.fields and mapping.merges and mapping.set_aside, page


@pytest.mark.parametrize("name", sorted(COMMAND_EXITS))
def test_each_commands_help_lists_only_the_exit_codes_it_can_return(name: str) -> None:
    """The help's `Exit codes:` paragraph names exactly the codes of errors.COMMAND_EXITS, the
    one table of what each command can return (validate never sends: no 3, 69 or 75)."""
    epilog = " ".join((COMMANDS[tuple(name.split())].epilog or "").split())
    match = re.search(r"Exit codes: (.*?)\.(?: Examples|$)", epilog)
    assert match, f"revbridge {name} --help lists no exit codes"
    listed = [int(n) for n in re.findall(r"(?:^|; )(\d+) ", match.group(1))]
    assert listed == [int(code) for code in COMMAND_EXITS[name]]


def test_validate_help_says_what_validate_can_do_and_nothing_else() -> None:
    """validate writes only the rejected file, and sends nothing: its 74 names no state or log,
    and its 0 and 1 speak of valid records, not accepted or undelivered ones."""
    epilog = " ".join((COMMANDS[("validate",)].epilog or "").split())
    codes = epilog.split("Exit codes: ", 1)[1].split(". Examples", 1)[0]
    assert "74 the rejected file could not be written" in codes
    assert "0 every record is valid" in codes
    for word in ("state", "log", "undelivered", "accepted", "server"):
        assert word not in codes, codes


def test_validate_and_the_read_only_commands_do_not_claim_server_or_state_codes() -> None:
    for name in ("validate", "config", "state show"):
        assert not {Exit.AUTH, Exit.UNAVAILABLE, Exit.LOCKED} & set(COMMAND_EXITS[name])


@pytest.mark.e2e
def test_help_shows_words_not_python_types() -> None:
    """Real metavars (`FILES...`, `PATH`, `N`), `--format` with its choices: never `<str>`."""
    for path in COMMANDS:
        done = cli(*path, "--help")
        assert done.returncode == 0, done.stderr
        assert not re.search(r"<(str|int|float|list)", done.stdout), (path, done.stdout)
    send = cli("send", "--help").stdout
    assert "Usage: revbridge send [OPTIONS] FILES..." in send
    assert "--format ndjson|json" in send and "--state PATH" in send and "--limit N" in send


def test_one_cron_recipe_valid_for_crontab() -> None:
    """README and docs/durable-runs.md show the same recipe: one line (crontab has no
    continuations), the console script by its absolute path (cron's PATH lacks a venv)."""
    durable = (ROOT / "docs" / "durable-runs.md").read_text()
    recipes = [re.findall(r"```cron\n(.*?)```", page, flags=re.S) for page in (FRONT, durable)]
    assert recipes[0] == recipes[1] and len(recipes[0]) == 1
    jobs = [line for line in recipes[0][0].splitlines() if line and not line.startswith("#")]
    assert len(jobs) == 1 and "\\" not in recipes[0][0]
    fields = jobs[0].split(None, 5)
    assert len(fields) == 6 and "%" not in fields[5]
    script = next(word for word in fields[5].split() if word.endswith("/revbridge"))
    assert script.startswith("/")
    argv = shlex.split(fields[5].split(f"{script} ", 1)[1])
    assert {a for a in argv if a.startswith("--")} <= _options(argv[0]) | {"--help"}
    assert "PATH" in FRONT and "PATH" in durable


def test_docs_do_not_point_outside_the_repository() -> None:
    for page in PAGES:
        assert "../shared" not in page.read_text(), page


def test_every_docs_page_is_in_the_readme_map() -> None:
    """A page nobody can find from the front door is a page nobody reads."""
    front = section(FRONT, "Documentation")
    assert front, "README.md has no Documentation section (the map of docs/)"
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)\)", front))
    pages = {page.relative_to(ROOT).as_posix() for page in PAGES if page != README}
    assert not pages - linked, f"pages missing from README's map: {sorted(pages - linked)}"
    assert not linked - pages, (
        f"README's map links pages that are not there: {sorted(linked - pages)}"
    )


LINKS = [
    (page, target)
    for page in PAGES
    for target in re.findall(r"\]\(([^)\s]+)\)", without_code(text(page)))
    if not re.match(r"[a-z]+:", target)
]


@pytest.mark.parametrize(
    ("page", "target"), LINKS, ids=[f"{p.relative_to(ROOT)}->{t}" for p, t in LINKS]
)
def test_every_relative_link_resolves(page: Path, target: str) -> None:
    """A link to a file that moved, or to a heading that was renamed, fails here."""
    path, _, anchor = target.partition("#")
    dest = (page.parent / path).resolve() if path else page
    assert dest.exists(), f"{page.relative_to(ROOT)}: {target}: no such file"
    if anchor:
        assert dest.suffix == ".md", (
            f"{page.relative_to(ROOT)}: {target}: an anchor into a non-page"
        )
        assert anchor in anchors(text(dest)), f"{page.relative_to(ROOT)}: {target}: no such heading"


def test_links_are_checked() -> None:
    """The link test bites: the README's map alone links every page."""
    assert len(LINKS) >= len(PAGES)
