"""The config file: where it is, its TOML, and each profile checked as it is read.

A mistake in a profile is refused when the file is read, naming the file and the profile, not
when a run gets to the setting; a misspelt key would otherwise silently do nothing. Which
profile is used, and what wins over it, is `config.resolve`'s job.
"""

from __future__ import annotations

import difflib
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, cast

from revbridge_cli.config.bounds import BOUNDS, NOT_IN_PROFILES, Bound
from revbridge_cli.config.paths import expand, permission_warning
from revbridge_cli.errors import ConfigError

CONNECTION_KEYS: Final = ("base_url", "api_key", "api_key_file", "customer_id")


@dataclass(frozen=True)
class _Option:
    kind: type
    bound: Bound | None = None


# Profile defaults for the other `send` options: type and bounds (the bounds are
# `bounds.BOUNDS`, the same the flags use), checked when the file is read because
# Typer's own checks only see flags. Path options (`str`) expand `~` and are taken relative to
# the config file's folder, so a cron job's working directory does not matter.
OPTIONS: Final[Mapping[str, _Option]] = {
    **{name: _Option(b.kind, b) for name, b in BOUNDS.items() if name not in NOT_IN_PROFILES},
    "require_timestamp": _Option(bool),
    "epoch_timestamps": _Option(bool),
    "timestamps": _Option(str),
    "drop_nulls": _Option(bool),
    "profile_event": _Option(str),
    "strict": _Option(bool),
    "state": _Option(str),
    "rejected": _Option(str),
    "log_file": _Option(str),
}
_PROFILE_KEYS: Final = (*CONNECTION_KEYS, *OPTIONS)
_TEXT: Final = frozenset(("timestamps", "profile_event"))  # strings that are not paths
_TYPE_NAMES: Final = {
    bool: "true or false",
    int: "an integer",
    float: "a number",
    str: "a string",
    list: "an array",
    dict: "a table",
}


def _type_name(value: Any) -> str:
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def default_config_path(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/revbridge/config.toml`, else `~/.config/revbridge/config.toml`.

    A relative XDG_CONFIG_HOME is ignored, as the XDG specification requires.
    """
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else expand("~/.config", env)
    return base / "revbridge" / "config.toml"


def load_document(path: Path, explicit: bool, warnings: list[str]) -> dict[str, Any] | None:
    """The parsed file, None for a missing default file; a named file must exist."""
    try:
        with open(path, "rb") as f:
            warnings += permission_warning(str(path), os.fstat(f.fileno()).st_mode, "config file")
            document = tomllib.load(f)
    except FileNotFoundError:
        if explicit:
            raise ConfigError(f"config file {path} does not exist") from None
        return None
    except OSError as e:
        raise ConfigError(f"cannot read config file {path}: {e.strerror}") from None
    except tomllib.TOMLDecodeError as e:  # its message gives line and column, never the text
        raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
    for key in document:
        if key not in ("default_profile", "profiles"):
            raise ConfigError(
                f"config file {path}: unknown top-level key {key!r} "
                "(expected default_profile and [profiles.NAME] tables)"
            )
    profiles = document.get("profiles", {})
    if not isinstance(profiles, dict) or not all(isinstance(p, dict) for p in profiles.values()):
        raise ConfigError(f"config file {path}: profiles must be [profiles.NAME] tables")
    if not isinstance(document.get("default_profile", ""), str):
        raise ConfigError(f"config file {path}: default_profile must be a string")
    return document


def check_profile(
    table: dict[str, Any], where: str, config_dir: Path, env: Mapping[str, str]
) -> dict[str, Any]:
    """Type-check one profile; unknown keys are refused so a typo cannot silently do nothing."""
    checked: dict[str, Any] = {}
    for key, raw in table.items():
        value: Any = raw
        if key not in _PROFILE_KEYS:
            close = difflib.get_close_matches(key, _PROFILE_KEYS, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            known = ", ".join(_PROFILE_KEYS)
            raise ConfigError(f"{where}: unknown key {key!r}{hint}; known keys: {known}")
        kind = OPTIONS[key].kind if key in OPTIONS else str
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if type(value) is not kind:
            raise ConfigError(
                f"{where}: {key} must be {_TYPE_NAMES[kind]}, not {_type_name(value)}"
            )
        if kind is str and not str(value).strip():
            raise ConfigError(f"{where}: {key} is empty")
        spec = OPTIONS.get(key)
        problem = (
            spec.bound.problem(cast(float, value)) if spec is not None and spec.bound else None
        )
        if problem is not None:
            raise ConfigError(f"{where}: {key} {problem} (got {value})")
        if kind is str and key in OPTIONS and key not in _TEXT:
            value = str(expand(str(value), env, config_dir))
        checked[key] = value
    if "api_key" in checked and "api_key_file" in checked:
        raise ConfigError(f"{where}: give api_key or api_key_file, not both")
    if checked.get("api_key_file") == "-":
        raise ConfigError(f"{where}: api_key_file cannot be '-' (stdin) in a profile")
    return checked
