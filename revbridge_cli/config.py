"""Connection settings and profile defaults, each with the place it came from.

`send` needs a base URL, an API key and a customer id, and cron lines stay short when the rest
of its options can come from a named profile. This module settles every setting once, with
the precedence flag > environment > profile > built-in default, and records where each value
came from so that `revbridge config` can answer "why is it using that?".

File reading (config file, key file, stdin) happens only inside `resolve`; everything it is
given (flags, environment) is passed in, so tests need no monkeypatching of the process.

The API key is held in a `Secret` from the moment it is read: its `str()` and `repr()` are
masked, so a traceback, a log line or a printed settings object cannot leak it. No error
message in this module quotes a value that could be the key.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import sys
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Final
from urllib.parse import urlsplit

from revbridge_cli.contract import DEVELOPMENT_URL, MAX_BODY_BYTES, MAX_USERS, PRODUCTION_URL
from revbridge_cli.errors import UsageError

ENV_API_KEY: Final = "REVBRIDGE_API_KEY"
ENV_API_KEY_FILE: Final = "REVBRIDGE_API_KEY_FILE"
ENV_CUSTOMER_ID: Final = "REVBRIDGE_CUSTOMER_ID"
ENV_BASE_URL: Final = "REVBRIDGE_BASE_URL"
ENV_PROFILE: Final = "REVBRIDGE_PROFILE"
ENV_CONFIG: Final = "REVBRIDGE_CONFIG"

URL_WORDS: Final[Mapping[str, str]] = {"production": PRODUCTION_URL, "development": DEVELOPMENT_URL}
CONNECTION_KEYS: Final = ("base_url", "api_key", "api_key_file", "customer_id")


class ConfigError(UsageError):
    """A setting that cannot be used; the message is one line saying what to fix.

    A UsageError, so the CLI's one mapping of error families to exit codes gives it 2.
    """


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

    def __init__(self, value: str) -> None:
        object.__setattr__(self, "_value", value)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("Secret is immutable")

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


@dataclass(frozen=True)
class Connection:
    """Where to send and as whom: the three things every request needs."""

    base_url: str
    api_key: Secret | None
    customer_id: str | None


@dataclass(frozen=True)
class Resolved:
    """The outcome of `resolve`: settings, the source of each, and warnings for the caller.

    `options` holds the other `send` options given by flag or by the profile (already
    type-checked); an option absent from it takes the command's own default.
    """

    connection: Connection
    options: dict[str, Any]
    sources: dict[str, str]
    profile: str | None
    config_path: str | None
    warnings: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class _Option:
    kind: type
    low: float | None = None
    high: float | None = None


# Profile defaults for the other `send` options: type and bounds, checked when the file is read
# because Typer's own checks only see flags. Path options (`str`) expand `~` and are taken
# relative to the config file's folder, so a cron job's working directory does not matter.
OPTIONS: Final[Mapping[str, _Option]] = {
    "concurrency": _Option(int, 1),
    "max_retries": _Option(int, 0),
    "timeout": _Option(float, 0.001),
    "retry_initial_delay": _Option(float, 0),
    "retry_max_delay": _Option(float, 0),
    "max_users": _Option(int, 1, MAX_USERS),
    "max_bytes": _Option(int, 1, MAX_BODY_BYTES),
    "buffer_mb": _Option(int, 1),
    "require_timestamp": _Option(bool),
    "epoch_timestamps": _Option(bool),
    "state": _Option(str),
    "rejected": _Option(str),
    "log_file": _Option(str),
}
_PROFILE_KEYS: Final = (*CONNECTION_KEYS, *OPTIONS)
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


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_base_url(url: str) -> str:
    """The base URL, normalised to `scheme://host[:port]`, or ConfigError saying what is wrong.

    `production` / `development` stand for the vendor URLs. A path is refused rather than
    kept as a prefix: the client appends `/ingest/events`, and the likely reason for a path is
    that someone pasted the full endpoint, which would then fail as a confusing 404.
    `http://` is refused unless the host is loopback: the bearer key would travel in clear.
    """
    url = URL_WORDS.get(url.strip().lower(), url.strip())
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in url):
        raise ConfigError(
            f"base URL {url!r} is not a URL: give https://HOST[:PORT], production or development"
        )
    if "@" in parts.netloc:
        raise ConfigError("base URL must not carry a user name or password; remove the 'user@'")
    try:
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ConfigError(f"base URL {url!r} has an invalid port") from None
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise ConfigError(
            f"base URL {url!r} must be only scheme://host[:port], without a path or query "
            "(the client adds /ingest/events itself)"
        )
    if scheme == "http" and not _is_loopback(parts.hostname):
        raise ConfigError(
            f"base URL {url!r} uses http:// for a host that is not loopback, so the API key "
            "would travel in clear: use https:// (http:// is only for 127.0.0.0/8, ::1, localhost)"
        )
    return f"{scheme}://{parts.netloc}"


def _check_header_value(value: str, what: str) -> str:
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


def _permission_warning(path: str, mode: int, what: str) -> list[str]:
    """Group/other access to a file holding or pointing at credentials deserves a nudge."""
    if os.name != "posix" or not mode & 0o077:
        return []
    return [
        f"{what} {path} can be read by group or others (mode {mode & 0o777:04o}); "
        f"fix with: chmod 600 {path}"
    ]


def _expand(path: str, env: Mapping[str, str], base_dir: Path | None = None) -> Path:
    """`~` from the given environment's HOME; relative paths against `base_dir` when given."""
    if (path == "~" or path.startswith("~/")) and env.get("HOME"):
        result = Path(env["HOME"]) / path[2:]
    else:
        result = Path(os.path.expanduser(path))
    if base_dir is not None and not result.is_absolute():
        result = base_dir / result
    return result


def default_config_path(env: Mapping[str, str]) -> Path:
    """`$XDG_CONFIG_HOME/revbridge/config.toml`, else `~/.config/revbridge/config.toml`.

    A relative XDG_CONFIG_HOME is ignored, as the XDG specification requires.
    """
    xdg = env.get("XDG_CONFIG_HOME", "")
    base = Path(xdg) if os.path.isabs(xdg) else _expand("~/.config", env)
    return base / "revbridge" / "config.toml"


def _load_document(path: Path, explicit: bool, warnings: list[str]) -> dict[str, Any] | None:
    """The parsed file, None for a missing default file; a named file must exist."""
    try:
        with open(path, "rb") as f:
            warnings += _permission_warning(str(path), os.fstat(f.fileno()).st_mode, "config file")
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


def _check_profile(
    table: dict[str, Any], where: str, config_dir: Path, env: Mapping[str, str]
) -> dict[str, Any]:
    """Type-check one profile; unknown keys are refused so a typo cannot silently do nothing."""
    checked: dict[str, Any] = {}
    for key, value in table.items():
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
        if kind is str and not value.strip():
            raise ConfigError(f"{where}: {key} is empty")
        spec = OPTIONS.get(key)
        if spec is not None and spec.low is not None and value < spec.low:
            raise ConfigError(f"{where}: {key} must be at least {spec.low}")
        if spec is not None and spec.high is not None and value > spec.high:
            raise ConfigError(f"{where}: {key} must be at most {spec.high}")
        if kind is str and key in OPTIONS:
            value = str(_expand(value, env, config_dir))
        checked[key] = value
    if "api_key" in checked and "api_key_file" in checked:
        raise ConfigError(f"{where}: give api_key or api_key_file, not both")
    if checked.get("api_key_file") == "-":
        raise ConfigError(f"{where}: api_key_file cannot be '-' (stdin) in a profile")
    return checked


def _read_key_file(
    text: str, origin: str, env: Mapping[str, str], stdin: IO[str] | None,
    warnings: list[str], base_dir: Path | None = None,
) -> tuple[Secret, str]:  # fmt: skip
    """First line of the file (or stdin for `-`), stripped; returns the key and its source."""
    if text == "-":
        line = (stdin if stdin is not None else sys.stdin).readline(4096)
        where = "stdin"
    else:
        path = _expand(text, env, base_dir)
        where = str(path)
        try:
            with open(path, encoding="utf-8-sig") as f:
                warnings += _permission_warning(where, os.fstat(f.fileno()).st_mode, "key file")
                line = f.readline(4096)
        except FileNotFoundError:
            raise ConfigError(f"key file {where} ({origin}) does not exist") from None
        except OSError as e:
            raise ConfigError(f"cannot read key file {where} ({origin}): {e.strerror}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"key file {where} ({origin}) is not UTF-8 text") from None
    key = line.strip()
    if not key:
        raise ConfigError(f"key file {where} ({origin}) is empty: put the key on its first line")
    return Secret(_check_header_value(key, f"API key from {where}")), f"{origin} {where}"


def _resolve_key(
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
        return Secret(_check_header_value(str(flags["api_key"]), "--api-key")), "flag --api-key"
    if "api_key_file" in flags:
        return _read_key_file(
            str(flags["api_key_file"]), "flag --api-key-file", env, stdin, warnings
        )
    if env.get(ENV_API_KEY):
        key = _check_header_value(env[ENV_API_KEY], ENV_API_KEY)
        return Secret(key), f"env {ENV_API_KEY}"
    if env.get(ENV_API_KEY_FILE):
        return _read_key_file(env[ENV_API_KEY_FILE], f"env {ENV_API_KEY_FILE}", env, None, warnings)
    if "api_key" in table:
        return Secret(_check_header_value(table["api_key"], f"api_key in {where}")), where
    if "api_key_file" in table:
        origin = f"{where} api_key_file"
        return _read_key_file(table["api_key_file"], origin, env, None, warnings, config_dir)
    return None, None


def resolve(
    *,
    flags: Mapping[str, Any],
    env: Mapping[str, str],
    config_path: str | None = None,
    profile: str | None = None,
    stdin: IO[str] | None = None,
) -> Resolved:
    """Settle every setting: flag > environment > profile > built-in default.

    `flags` holds the flags the user gave (None means not given) under the keys of
    CONNECTION_KEYS and the `send` option names; any other non-None flag is passed through
    into `options` untouched. Empty environment variables count as unset, so `VAR= revbridge`
    switches one off. Raises ConfigError with a one-line message.
    """
    flags = {k: v for k, v in flags.items() if v is not None}
    env = {k: v for k, v in env.items() if v}
    warnings: list[str] = []
    sources: dict[str, str] = {}

    if config_path is not None:
        path, explicit, sources["config"] = _expand(config_path, env), True, "flag --config"
    elif ENV_CONFIG in env:
        path, explicit, sources["config"] = _expand(env[ENV_CONFIG], env), True, f"env {ENV_CONFIG}"
    else:
        path, explicit, sources["config"] = default_config_path(env), False, "default"
    path = path.absolute()  # relative paths in the profile then mean the same from any cwd
    document = _load_document(path, explicit, warnings)
    if document is None:
        sources["config"] = f"default (no file at {path})"

    name = profile or env.get(ENV_PROFILE) or (document or {}).get("default_profile") or None
    table: dict[str, Any] = {}
    where = ""
    if name is not None:
        sources["profile"] = (
            "flag --profile" if profile
            else f"env {ENV_PROFILE}" if env.get(ENV_PROFILE)
            else f"default_profile in {path}"
        )  # fmt: skip
        profiles = (document or {}).get("profiles", {})
        if document is None:
            raise ConfigError(f"profile {name!r} is selected but there is no config file at {path}")
        if name not in profiles:
            known = ", ".join(sorted(profiles)) or "none defined"
            raise ConfigError(f"profile {name!r} is not in {path} (profiles: {known})")
        where = f"profile {name} ({path})"
        table = _check_profile(profiles[name], where, path.parent, env)

    def pick(key: str, env_name: str, default: str | None) -> tuple[str | None, str]:
        if key in flags:
            return str(flags[key]), f"flag --{key.replace('_', '-')}"
        if env_name in env:
            return env[env_name], f"env {env_name}"
        if key in table:
            return table[key], where
        return default, "default"

    base_url, sources["base_url"] = pick("base_url", ENV_BASE_URL, PRODUCTION_URL)
    try:
        base_url = check_base_url(base_url or "")
    except ConfigError as e:
        raise ConfigError(f"{e} (from {sources['base_url']})") from None
    customer_id, sources["customer_id"] = pick("customer_id", ENV_CUSTOMER_ID, None)
    if customer_id is not None:
        _check_header_value(customer_id, f"customer id (from {sources['customer_id']})")
    api_key, key_source = _resolve_key(flags, env, table, where, path.parent, stdin, warnings)
    sources["api_key"] = key_source or "not given"

    options = {k: v for k, v in table.items() if k in OPTIONS}
    sources.update({k: where for k in options})
    for key, value in flags.items():
        if key not in CONNECTION_KEYS:
            options[key] = value
            sources[key] = f"flag --{key.replace('_', '-')}"
    return Resolved(
        connection=Connection(base_url, api_key, customer_id),
        options=options,
        sources=sources,
        profile=name,
        config_path=str(path) if document is not None else None,
        warnings=warnings,
    )


def require_credentials(conn: Connection) -> None:
    """Before sending: name every way to supply what is missing, in one message."""
    missing = []
    if conn.api_key is None:
        missing.append(
            f"no API key (set {ENV_API_KEY}, or pass --api-key-file PATH or --api-key, "
            "or set api_key_file in a profile)"
        )
    if conn.customer_id is None:
        missing.append(
            f"no customer id (set {ENV_CUSTOMER_ID}, or pass --customer-id, "
            "or set customer_id in a profile)"
        )
    if missing:
        raise ConfigError("; ".join(missing))


def _show(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def describe(resolved: Resolved) -> list[tuple[str, str, str]]:
    """Rows (setting, value with the key masked, source) for `revbridge config`."""
    conn, src = resolved.connection, resolved.sources
    rows = [
        ("config", resolved.config_path or "(none)", src.get("config", "default")),
        ("profile", resolved.profile or "(none)", src.get("profile", "-")),
        ("base_url", conn.base_url, src.get("base_url", "default")),
        ("api_key", str(conn.api_key) if conn.api_key else "(not set)", src.get("api_key", "-")),
        ("customer_id", conn.customer_id or "(not set)", src.get("customer_id", "-")),
    ]
    for key in sorted(resolved.options):
        rows.append((key, _show(resolved.options[key]), src.get(key, "-")))
    return rows


def render(resolved: Resolved) -> str:
    """Plain-text table of `describe`, then one `warning:` line each, for `revbridge config`."""
    rows = [("setting", "value", "source"), *describe(resolved)]
    widths = [max(len(row[i]) for row in rows) for i in range(2)]
    lines = [f"{s:<{widths[0]}}  {v:<{widths[1]}}  {src}" for s, v, src in rows]
    lines += [f"warning: {w}" for w in resolved.warnings]
    return "\n".join(lines)
