"""Nothing cites what is gone (issue 21, item 7).

A comment or docstring in revbridge_cli/, tests/ or bench/ that names a module or a file
(`foo.py`, `state/resume.py`, `revbridge_cli.x.y`, `docs/x.md`) or a section of the docs
(`README "Section"`, `docs/x.md, "Section"`) names one that exists: a reader who follows it
finds it. Modules this project once had and dropped (GONE) must not be named even bare, in
backquotes, as `csvfile` was long after it became input/csv_rows.py.
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from pathlib import Path

import pytest
from docs_pages import PAGES, README, ROOT, headings, text

PACKAGE = ROOT / "revbridge_cli"
# This file's own docstring and examples cite made-up names on purpose.
SOURCES = sorted(
    p
    for d in ("revbridge_cli", "tests", "bench")
    for p in (ROOT / d).rglob("*.py")
    if p != Path(__file__).resolve()
)
# Every file of the project a citation may name, by path from the root.
FILES = {
    p.relative_to(ROOT).as_posix()
    for p in ROOT.rglob("*")
    if p.is_file() and not {".venv", ".git", "revbridge_cli.egg-info"} & set(p.parts)
}
BASENAMES = {f.rsplit("/", 1)[-1] for f in FILES}
# Module names the tree once had (from git history) that no module has now.
GONE = {
    "cli_options", "csvfile", "deliver", "engine_result", "engine_task", "iterable_source",
    "jsondoc", "mapping_cli", "meter", "nearmiss", "option_bounds", "output_checks",
    "parquetfile", "pipeline", "send_side", "state_show", "userfiles",
}  # fmt: skip


def _texts(path: Path) -> list[tuple[int, str]]:
    """(line, text) of every docstring and every run of comment lines, whitespace joined."""
    source = path.read_text()
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            doc = ast.get_docstring(node, clean=False)
            if doc:
                out.append((node.body[0].lineno, doc))
    run: list[str] = []
    start = last = 0
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type != tokenize.COMMENT:
            continue
        line = token.start[0]
        if run and line != last + 1:
            out.append((start, " ".join(run)))
            run = []
        if not run:
            start = line
        run.append(token.string.lstrip("#").strip())
        last = line
    if run:
        out.append((start, " ".join(run)))
    return [(line, " ".join(body.split())) for line, body in out]


CITATIONS = [
    (path.relative_to(ROOT).as_posix(), line, body, path.read_text())
    for path in SOURCES
    for line, body in _texts(path)
]


def _file_exists(cited: str, where: str) -> bool:
    if "/" not in cited:
        return cited in BASENAMES
    here = Path(where).parent.as_posix()
    return any(
        f"{base}/{cited}".lstrip("/") in FILES
        for base in ("", "revbridge_cli", "tests", "bench", here)
    ) or any(f.endswith(f"/{cited}") for f in FILES)


def _module_exists(dotted: str) -> bool:
    """`revbridge_cli.a.b.name`: a package or module, then at most one name defined in it."""
    parts = dotted.split(".")
    for n in range(len(parts), 0, -1):
        base = ROOT.joinpath(*parts[:n])
        module = base / "__init__.py" if base.is_dir() else base.with_suffix(".py")
        if module.exists():
            rest = parts[n:]
            if not rest:
                return True
            if len(rest) > 1 and not (base.is_dir()):
                rest = rest[:1]  # a class's attribute: the class must be there
            return bool(re.search(rf"\b{re.escape(rest[0])}\b", module.read_text()))
    return False


def _plain(title: str) -> str:
    return title.replace("`", "")


def _headings(pages: list[Path]) -> list[str]:
    return [_plain(title) for page in pages for _, title in headings(text(page))]


FILE = re.compile(r"(?<![\w/.:-])((?:[\w.-]+/)*[\w-]+\.(?:py|md))(?![\w])")
MODULE = re.compile(r"\brevbridge_cli(?:\.\w+)+")
SECTION = re.compile(
    r"\b(README(?:\.md)?|docs/[\w-]+\.md|[\w-]+\.md)(?:'s)?,?:? (?:under |section )?\(?\"([^\"]+)\""
)
BARE = re.compile(r"`(\w+)(?:\.\w+)*`")


def stale(where: str, body: str, source: str = "") -> list[str]:
    """What `body` (a comment or docstring of file `where`, whose text is `source`) cites that
    does not exist. Another project's file (httpx's `_exceptions.py`) is not ours to check,
    and a gone name the file imports as an alias (`task as engine_task`) is that alias."""
    out = []
    for match in FILE.finditer(body):
        cited = match.group(1)
        if re.search(r"\w's `?$", body[: match.start()]):
            continue
        if not _file_exists(cited, where):
            out.append(f"no file {cited}")
    for cited in MODULE.findall(body):
        if not _module_exists(cited.rstrip(".")):
            out.append(f"no module or name {cited}")
    for page, title in SECTION.findall(body):
        if page.startswith("README"):
            pages = PAGES  # README's sections, and those it moved to docs/
        elif _file_exists(page, where) and (ROOT / page).exists():
            pages = [ROOT / page]
        else:
            continue  # a page outside the project: FILE reports it
        if not any(h.startswith(_plain(title)) for h in _headings(pages)):
            out.append(f'no heading "{title}" in {page if pages != PAGES else "the docs"}')
    for name in BARE.findall(body):
        if name in GONE and not re.search(rf"\bas {name}\b", source):
            out.append(f"`{name}` is gone")
    return out


def test_the_citations_are_found() -> None:
    """The test bites: there are citations of every kind to check."""
    bodies = " ".join(body for _, _, body, _ in CITATIONS)
    assert len(FILE.findall(bodies)) > 50
    assert len(MODULE.findall(bodies)) > 5
    assert len(SECTION.findall(bodies)) > 5


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("the figures come from meter.py", "no file meter.py"),
        ("see state/nowhere.py", "no file state/nowhere.py"),
        ("as CONTRACT.md says", "no file CONTRACT.md"),
        ("revbridge_cli.input.csvfile reads it", "no module or name revbridge_cli.input.csvfile"),
        ("revbridge_cli.errors.NoSuchError", "no module or name revbridge_cli.errors.NoSuchError"),
        ('README "No such section"', 'no heading "No such section" in the docs'),
        ('docs/contract.md, "No such section"', 'no heading "No such section" in docs/contract.md'),
        ("a row (`parquetfile`)", "`parquetfile` is gone"),
        ('the README ("No such section")', 'no heading "No such section" in the docs'),
    ],
)
def test_a_stale_citation_is_reported(body: str, problem: str) -> None:
    assert stale("revbridge_cli/run.py", body) == [problem]


@pytest.mark.parametrize(
    "body",
    [
        "state/resume.py and journal.py; revbridge_cli.engines.partition.user_key",
        'README "Exit codes"; README, "Input shapes"; docs/contract.md, "Contract decisions"',
        "the front door is README.md; tests/conftest.py holds the fixtures",
        "grouped as httpx's `_exceptions.py` is",
    ],
)
def test_a_live_citation_passes(body: str) -> None:
    assert stale("revbridge_cli/run.py", body) == []


def test_nothing_cites_what_is_gone() -> None:
    problems = [
        f"{where}:{line}: {problem}"
        for where, line, body, source in CITATIONS
        for problem in stale(where, body, source)
    ]
    assert problems == [], "\n".join(problems)


def test_the_readme_is_one_of_the_pages() -> None:
    assert README in PAGES
