"""The project's documentation as the tests read it: README.md, the front door, and every page
under docs/ (README's "Documentation" maps them). A check of the docs reads all of them, so a
section moving from one page to another never makes a check pass by finding nothing.
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
PAGES = [README, *sorted((ROOT / "docs").glob("*.md"))]


def text(page: Path) -> str:
    return page.read_text()


def all_text() -> str:
    return "\n".join(text(page) for page in PAGES)


def without_code(markdown: str) -> str:
    """The prose: fenced blocks blanked (a `# comment` in a shell block is not a heading)."""
    return re.sub(r"^```.*?^```", "", markdown, flags=re.S | re.M)


def headings(markdown: str) -> list[tuple[int, str]]:
    """(level, title) of every heading outside fenced blocks, in order."""
    return [
        (len(m.group(1)), m.group(2).strip())
        for m in re.finditer(r"^(#{1,6}) (.+)$", without_code(markdown), flags=re.M)
    ]


def anchors(markdown: str) -> set[str]:
    """The `#anchor`s GitHub makes of the headings: lower case, punctuation dropped, spaces
    as hyphens, a repeated one numbered."""
    out: set[str] = set()
    for _, title in headings(markdown):
        slug = re.sub(r"[^\w\- ]", "", title.lower()).replace(" ", "-")
        n, unique = 0, slug
        while unique in out:
            n += 1
            unique = f"{slug}-{n}"
        out.add(unique)
    return out


def section(markdown: str, title: str) -> str | None:
    """The text under the heading that starts with `title`, to the next heading of its level
    or above (fenced blocks are not headings)."""
    lines, out, level = markdown.splitlines(keepends=True), [], 0
    fence = False
    for line in lines:
        if line.startswith("```"):
            fence = not fence
        match = None if fence else re.match(r"(#{1,6}) (.+)$", line)
        if match and level and len(match.group(1)) <= level:
            break
        if match and not level and match.group(2).startswith(title):
            level = len(match.group(1))
        if level:
            out.append(line)
    return "".join(out) if level else None
