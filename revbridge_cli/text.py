"""Text the tool repeats from elsewhere, made safe to show: never the key, always one line.

A server (or a proxy, or a wrong `--base-url`) may quote the request's headers in its
answer; a library (pyarrow, a codec) may put newlines and control bytes in its messages. The
tool repeats such text in stderr, `--json`, the log file and the rejected file, so every one
of those edges passes it through here. A leaf module, below every stage, so that the readers,
the delivery and the CLI all use the same two rules:

- `scrub`: every secret the process holds (each API key it was given is registered as it is
  read, by `config.credentials.Secret`) is replaced by `REDACTED`, in its plain form and in the
  forms a JSON or URL echo gives it. The header form `Bearer <key>` contains the key, so it
  goes with it.
- `one_line`: what is not printable is escaped (`\\n`, `\\r`, `\\t`, `\\x1b`, `\\u2028`), so
  a message is one line and no byte of it can move a cursor or clear a terminal.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any, AnyStr
from urllib.parse import quote

REDACTED = "[api key redacted]"
# Shorter values are not keys anyone uses (the API's are 30+ characters), and replacing every
# "abc" in every message would make the messages unreadable.
MIN_SECRET_CHARS = 6

_SHORT_ESCAPES = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

_secrets: set[str] = set()
_forms: tuple[str, ...] = ()  # every registered secret in each of its echoed forms, longest first


def register_secret(value: str) -> None:
    """From now on `scrub` removes `value` (in its plain, JSON-escaped and URL-encoded forms)
    from every text it is given."""
    global _forms
    if len(value) < MIN_SECRET_CHARS or value in _secrets:
        return
    _secrets.add(value)
    _forms = tuple(sorted({f for s in _secrets for f in _echoes(s)}, key=len, reverse=True))


def _echoes(value: str) -> set[str]:
    """How a server or a library may write the value back: as is, inside a JSON string,
    inside a Python repr, percent-encoded."""
    return {value, json.dumps(value)[1:-1], repr(value)[1:-1], quote(value, safe="")}


def _forms_of(secrets: Iterable[str] | None) -> tuple[str, ...]:
    given = {f for s in secrets or () if len(s) >= MIN_SECRET_CHARS for f in _echoes(s)}
    if not given:
        return _forms
    return tuple(sorted(given.union(_forms), key=len, reverse=True))


# A key that shares characters with REDACTED could be formed again by a replacement beside
# what follows it; a few passes undo any such echo, and past them the whole text goes.
_PASSES = 4


def scrub(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` without any secret in it: the registered ones, and `secrets` as well."""
    return _without(text, _forms_of(secrets), REDACTED)


def scrub_bytes(data: bytes, secrets: Iterable[str] | None = None) -> bytes:
    """`scrub` for a body or a file's row, without decoding it."""
    forms = [f.encode("utf-8", "surrogateescape") for f in _forms_of(secrets)]
    return _without(data, forms, REDACTED.encode())


def _without(data: AnyStr, forms: Sequence[AnyStr], redacted: AnyStr) -> AnyStr:
    """Every form replaced, pass after pass: a crafted key the replacement could re-form
    takes the whole text with it after `_PASSES`."""
    for _ in range(_PASSES):
        hits = [f for f in forms if f in data]
        if not hits:
            return data
        for form in hits:
            data = data.replace(form, redacted)
    return data if not any(f in data for f in forms) else redacted


def one_line(text: str) -> str:
    """`text` with every character that is not printable escaped: one line, no control byte."""
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else _escape(c) for c in text)


def _escape(char: str) -> str:
    if char in _SHORT_ESCAPES:
        return _SHORT_ESCAPES[char]
    code = ord(char)
    if code < 0x100:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def clean(text: str, secrets: Iterable[str] | None = None) -> str:
    """A message for the user, whoever wrote it: no secret, one line."""
    return one_line(scrub(text, secrets))


# Values that name a file the user may open from a script: the key is scrubbed from them like
# from everything else, but their characters are kept as they are (JSON escapes them).
PATH_KEYS = frozenset({"rejected_file", "path", "state", "log_file"})


def clean_json(value: Any, key: str | None = None) -> Any:
    """A `--json` object with every string in it (keys too) cleaned; paths only scrubbed."""
    if isinstance(value, str):
        return scrub(value) if key in PATH_KEYS else clean(value)
    if isinstance(value, dict):
        return {(clean(k) if isinstance(k, str) else k): clean_json(v, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [clean_json(v, key) for v in value]
    return value
