"""The API key: held masked from the moment it is read, from a flag, a file or stdin.

The key is held in a `Secret`: its `str()` and `repr()` are masked, so a traceback, a log line
or a printed settings object cannot leak it. No error message in this module quotes a value
that could be the key. The key has more ways in than any other setting (the key itself or a
key file, by flag, environment or profile; stdin through `--api-key-file -`), so its own
precedence is settled here, and `config.resolve` takes the result.

The customer id travels in a header beside the key, so it is checked by the same rules.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, Any, Final

from revbridge_cli.config.paths import expand, permission_warning
from revbridge_cli.errors import ConfigError
from revbridge_cli.text import register_secret

ENV_API_KEY: Final = "REVBRIDGE_API_KEY"
ENV_API_KEY_FILE: Final = "REVBRIDGE_API_KEY_FILE"


def _looks_like_a_key(text: str) -> bool:
    """A path that is one word of 20 or more letters, digits and underscores, no slash and no
    dot: a key pasted in place of its file's path (`rbk_...`), not a file name."""
    return len(text) >= 20 and text.replace("_", "").isalnum()


def mask(key: str) -> str:
    """Enough of a key to tell two keys apart, never enough to use one.

    A short key would be mostly revealed by its last four characters, so it shows nothing.
    """
    if len(key) < 12:
        return "****"
    prefix = key[: key.index("_") + 1] if "_" in key[:5] else ""
    return f"{prefix}…{key[-4:]}"


class Secret:
    """A string that will not print itself; `.reveal()` is the one way to get the value.

    Not a dataclass on purpose: `dataclasses.asdict()` of a settings object would otherwise
    turn it into a plain dict holding the key.
    """

    __slots__ = ("_value",)
    _value: str

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)
        register_secret(value)  # whatever the tool repeats from elsewhere is scrubbed of it

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

    def __reduce__(self) -> tuple[type[Secret], tuple[str]]:
        """Picklable, so a `Connection` passed to an engine reaches its tasks (slots and a
        refusing `__setattr__` would break pickle's default)."""
        return (Secret, (self._value,))

    def reveal(self) -> str:
        """The real value, for the one place that needs it: the Authorization header."""
        return self._value

    def __str__(self) -> str:
        return mask(self._value)

    def __repr__(self) -> str:
        return f"Secret({mask(self._value)!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __copy__(self) -> Secret:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Secret:
        return self


def check_header_value(value: str, what: str) -> str:
    """Refuse what would break the HTTP header or is a copy-paste slip, without echoing it."""
    if not value:
        raise ConfigError(f"{what} is empty")
    if any(c.isspace() for c in value):
        raise ConfigError(
            f"{what} contains whitespace: give the value alone (for the key, no 'Bearer ' prefix)"
        )
    if not (value.isascii() and value.isprintable()):
        raise ConfigError(f"{what} has characters other than printable ASCII")
    if len(value) > 1 and value[0] in "\"'" and value[-1] == value[0]:
        raise ConfigError(f"{what} is wrapped in quotes: remove them")
    return value


def _read_key_file(
    text: str, origin: str, env: Mapping[str, str], stdin: IO[str] | None,
    warnings: list[str], base_dir: Path | None = None,
) -> tuple[Secret, str]:  # fmt: skip
    """First line of the file (or stdin for `-`), stripped; returns the key and its source."""
    if text == "-":
        line = (stdin if stdin is not None else sys.stdin).readline(4096)
        where = "stdin"
    else:
        path = expand(text, env, base_dir)
        where = str(path)
        try:
            with open(path, encoding="utf-8-sig") as f:
                warnings += permission_warning(where, os.fstat(f.fileno()).st_mode, "key file")
                line = f.readline(4096)
        except FileNotFoundError:
            if _looks_like_a_key(text):  # the key itself, given where its file's path goes
                raise ConfigError(
                    f"key file {mask(text)} ({origin}) does not exist, and the value looks like "
                    "a key: pass a key with --api-key or REVBRIDGE_API_KEY, a file's path "
                    "with --api-key-file"
                ) from None
            raise ConfigError(f"key file {where} ({origin}) does not exist") from None
        except OSError as e:
            raise ConfigError(f"cannot read key file {where} ({origin}): {e.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"key file {where} ({origin}) is not UTF-8 text") from None
    key = line.strip()
    if not key:
        raise ConfigError(f"key file {where} ({origin}) is empty: put the key on its first line")
    return Secret(check_header_value(key, f"API key from {where}")), f"{origin} {where}"


def resolve_key(
    flags: Mapping[str, Any], env: Mapping[str, str], table: Mapping[str, Any],
    where: str, config_dir: Path | None, stdin: IO[str] | None, warnings: list[str],
) -> tuple[Secret | None, str | None]:  # fmt: skip
    """The key from the first level that has one: flag, environment, profile."""
    if "api_key" in flags and "api_key_file" in flags:
        raise ConfigError("give either --api-key or --api-key-file, not both")
    if env.get(ENV_API_KEY) and env.get(ENV_API_KEY_FILE):
        raise ConfigError(f"set either {ENV_API_KEY} or {ENV_API_KEY_FILE}, not both")
    if "api_key" in flags:
        warnings.append(
            "--api-key puts the key in shell history and `ps` output: "
            f"prefer --api-key-file PATH or {ENV_API_KEY}"
        )
        return Secret(check_header_value(str(flags["api_key"]), "--api-key")), "flag --api-key"
    if "api_key_file" in flags:
        return _read_key_file(
            str(flags["api_key_file"]), "flag --api-key-file", env, stdin, warnings
        )
    if env.get(ENV_API_KEY):
        key = check_header_value(env[ENV_API_KEY], ENV_API_KEY)
        return Secret(key), f"env {ENV_API_KEY}"
    if env.get(ENV_API_KEY_FILE):
        return _read_key_file(env[ENV_API_KEY_FILE], f"env {ENV_API_KEY_FILE}", env, None, warnings)
    if "api_key" in table:
        return Secret(check_header_value(table["api_key"], f"api_key in {where}")), where
    if "api_key_file" in table:
        origin = f"{where} api_key_file"
        return _read_key_file(table["api_key_file"], origin, env, None, warnings, config_dir)
    return None, None
