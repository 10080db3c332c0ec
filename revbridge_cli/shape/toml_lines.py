"""Where each key of a TOML document is set, so a mapping error names the line at fault.

tomllib gives values, not positions, and finding a key by searching for its name picks the
first line that mentions it: `from` is on most lines of a mapping, `missing` in two tables.
This reads the document's structure instead: table headers (`[fields]`, `[[set_aside]]`,
whose entries are numbered "0", "1", ...), `key =` lines with dotted and quoted keys, and the
keys of an inline table (`{ from = "x", type = "number" }`) on the line that opens it. The
document has already parsed, so this only has to follow valid TOML; text inside multi-line
strings is skipped. Pure: text in, positions out.
"""

from __future__ import annotations

import json
import re

_KEY = r"""(?:[A-Za-z0-9_-]+|"(?:[^"\\]|\\.)*"|'[^']*')"""
_DOTTED = rf"{_KEY}(?:\s*\.\s*{_KEY})*"
_ARRAY_HEADER = re.compile(rf"\s*\[\[\s*({_DOTTED})\s*\]\]")
_HEADER = re.compile(rf"\s*\[\s*({_DOTTED})\s*\]")
_ASSIGN = re.compile(rf"\s*({_DOTTED})\s*=")
_INLINE = re.compile(rf"[{{,]\s*({_DOTTED})\s*=")
_PART = re.compile(_KEY)

Path = tuple[str, ...]


def _keys(dotted: str) -> Path:
    parts = []
    for match in _PART.finditer(dotted):
        part = match.group(0)
        if part.startswith('"'):
            part = json.loads(part)  # TOML's basic strings escape as JSON does (but \e, \U)
        elif part.startswith("'"):
            part = part[1:-1]
        parts.append(part)
    return tuple(parts)


def key_lines(text: str) -> dict[Path, int]:
    """Each key path set in the document -> its 1-based line (the first, if set twice)."""
    lines: dict[Path, int] = {}
    table: Path = ()
    entries: dict[Path, int] = {}  # an array of tables -> how many entries so far
    in_string: str | None = None
    for number, line in enumerate(text.splitlines(), 1):
        if in_string is not None:
            if line.count(in_string) % 2:
                in_string = None
            continue
        if match := _ARRAY_HEADER.match(line):
            array = _keys(match.group(1))
            entries[array] = entries.get(array, -1) + 1
            table = (*array, str(entries[array]))
            lines.setdefault(array, number)
        elif match := _HEADER.match(line):
            table = _keys(match.group(1))
        elif match := _ASSIGN.match(line):
            key = (*table, *_keys(match.group(1)))
            lines.setdefault(key, number)
            rest = line[match.end() :]
            for inner in _INLINE.finditer(rest):
                lines.setdefault((*key, *_keys(inner.group(1))), number)
            for quote in ('"""', "'''"):
                if rest.count(quote) % 2:
                    in_string = quote
            continue
        else:
            continue
        lines.setdefault(table, number)
    return lines


def line_of(lines: dict[Path, int], path: Path) -> int | None:
    """The line `path` is set on; for a table set key by key (`[fields.x]`, `x.from = ...`),
    its first key's."""
    if path in lines:
        return lines[path]
    inside = [n for key, n in lines.items() if key[: len(path)] == path]
    return min(inside) if inside else None
