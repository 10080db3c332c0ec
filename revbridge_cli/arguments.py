"""The Python API's arguments, each checked where it enters: one table of keyword -> check.

A program can pass anything (`rename=5`, `timeout=float("nan")`, `format="xml"`); Typer
protects the CLI's flags, nothing protected these, and a wrong value surfaced deep in the run
as a `TypeError`, an exit 70 or a silent success. Every keyword `send_records` and
`send_files` take has an entry here, and a value the entry refuses is a `UsageError` naming
the keyword, what it takes and (when short) the value given. The numeric keywords take their
type from `bounds.BOUNDS` (the table the flags and profiles use), so a bound and its type have
one home. A key passed in the wrong place is masked by the API before a message leaves it.

Pure functions on plain values; `None` is always "not given" (the option's default).
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from revbridge_cli.config.bounds import BOUNDS
from revbridge_cli.config.credentials import Secret
from revbridge_cli.errors import UsageError
from revbridge_cli.input.formats import FORMATS
from revbridge_cli.shape.mapfile import PRESETS

Check = Callable[[str, Any], Any]  # (keyword, value) -> the value the settings take

# The API's keywords that a settings field spells otherwise (the CLI's --grace, --format).
FIELD_OF = {"grace": "grace_seconds", "format": "fmt"}


def shown(value: Any) -> str:
    """A short value as Python writes it ('10', 2.5), a long one by its type's name."""
    text = repr(value)
    return text if len(text) <= 40 and text.isprintable() else type(value).__name__


def _refuse(name: str, wanted: str, value: Any) -> UsageError:
    return UsageError(f"{name} must be {wanted}, not {shown(value)}")


def flag(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse(name, "True or False", value)
    return value


def integer(name: str, value: Any) -> int:
    """numpy's integers too (numbers.Integral); a bool is not a count."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise _refuse(name, "an integer", value)
    return int(value)


def number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise _refuse(name, "a number", value)
    if not math.isfinite(value):  # NaN passes every comparison with a bound
        raise UsageError(f"{name} must be a finite number, not {value!r}")
    return float(value)


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _refuse(name, "text (a str)", value)
    if not value.strip():
        raise UsageError(f"{name} is empty")
    return value


def path(name: str, value: Any) -> str:
    """A str or `os.PathLike` naming a file; bytes paths are refused (the messages and the
    journal hold text)."""
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if not isinstance(value, str):
        raise _refuse(name, "a path (a str or os.PathLike)", value)
    if not value:
        raise UsageError(f"{name} is empty")
    if "\x00" in value:
        raise UsageError(f"{name} contains a NUL character: no file can have that name")
    return value


def choice(*allowed: str) -> Check:
    def check(name: str, value: Any) -> str:
        if value not in allowed or not isinstance(value, str):
            raise UsageError(f"{name} must be one of {', '.join(allowed)}, not {shown(value)}")
        return value

    return check


def renames(name: str, value: Any) -> list[str]:
    """A dict of source -> target, or the CLI's "SRC=DST" strings; the pairs' own syntax is
    the mapping's to check (`mapfile.renames`)."""
    if isinstance(value, Mapping):
        pairs = list(value.items())
        if not all(isinstance(s, str) and isinstance(d, str) for s, d in pairs):
            raise UsageError(f"{name} must map field names (str) to field names (str)")
        return [f"{src}={dst}" for src, dst in pairs]
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        raise _refuse(name, 'a dict of source to target, or a list of "SRC=DST"', value)
    if not all(isinstance(item, str) for item in value):
        raise UsageError(f'{name}: every item must be a "SRC=DST" str')
    return list(value)


def bound(name: str, value: Any) -> Any:
    """since/until: `Window.of` checks them (str, date or datetime) with the CLI's words."""
    return value


def _numeric() -> dict[str, Check]:
    api_name = {field: name for name, field in FIELD_OF.items()}
    return {
        api_name.get(field, field): integer if spec.kind is int else number
        for field, spec in BOUNDS.items()
    }


ARGUMENTS: dict[str, Check] = {
    **_numeric(),
    "format": choice(*FORMATS),
    "timestamps": choice("strict", "lenient"),
    "require_timestamp": flag,
    "epoch_timestamps": flag,
    "drop_nulls": flag,
    "restart_changed": flag,
    "dry_run": flag,
    "strict": flag,
    "rejected": path,
    "state": path,
    "log_file": path,
    "event_id_property": text,
    "profile_event": text,
    "map": path,
    "preset": choice(*PRESETS),
    "rename": renames,
    "unmapped": choice("keep", "drop"),
    "since": bound,
    "until": bound,
}
CONNECTION_PARTS = ("connection", "base_url", "api_key", "customer_id")


def check_arguments(options: Mapping[str, Any]) -> dict[str, Any]:
    """The keyword arguments, each checked by its entry (None: not given, dropped)."""
    checked: dict[str, Any] = {}
    for name, value in options.items():
        check = ARGUMENTS.get(name)
        if check is None and name not in CONNECTION_PARTS:
            listed = ", ".join(sorted({*ARGUMENTS, *CONNECTION_PARTS}))
            raise UsageError(f"unknown option {name!r}; the options are: {listed}")
        if value is not None:
            checked[name] = check(name, value) if check is not None else value
    return checked


def connection_parts(base_url: Any, api_key: Any, customer_id: Any) -> tuple[str, Secret, str]:
    """`Connection(...)`'s arguments by type; their content is config's to check."""
    if not isinstance(api_key, str | Secret):  # by its type alone: a bytes key is still a key
        raise UsageError(f"api_key must be text (a str or a Secret), not {type(api_key).__name__}")
    key = api_key if isinstance(api_key, Secret) else Secret(api_key)
    return text("base_url", base_url), key, text("customer_id", customer_id)


def check_records(records: Any) -> Iterable[Any]:
    """What `send_records` iterates: an iterable of records, not one record or a file name."""
    if isinstance(records, str | bytes | os.PathLike):
        raise UsageError(
            "records must be an iterable of records (dicts); to send files, use send_files"
        )
    if isinstance(records, Mapping):
        raise UsageError(
            "records must be an iterable of records (dicts), not one dict: wrap it in a list"
        )
    if not isinstance(records, Iterable):
        raise _refuse("records", "an iterable of records (dicts)", records)
    return records


def check_paths(paths: Any) -> list[str]:
    """What `send_files` reads: a path, or a list of files, directories or globs."""
    if isinstance(paths, str | os.PathLike):
        paths = [paths]
    if isinstance(paths, bytes) or not isinstance(paths, Iterable):
        raise _refuse("paths", "a path or a list of paths (str or os.PathLike)", paths)
    checked = [path("paths", p) for p in paths]
    if not checked:
        raise UsageError("paths is empty: give at least one file, directory or glob")
    return checked
