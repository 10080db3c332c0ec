"""Connection settings and profile defaults, each with the place it came from.

`send` needs a base URL, an API key and a customer id, and cron lines stay short when the rest
of its options can come from a named profile. This module settles every setting once, with
the precedence flag > environment > profile > built-in default, and records where each value
came from so that `revbridge config` can answer "why is it using that?".

File reading (config file, key file, stdin) happens only inside `resolve`; everything it is
given (flags, environment) is passed in, so tests need no monkeypatching of the process. The
file itself is read by `profiles`, the key by `credentials` (which keeps it masked), and the
base URL's rules are in `base_url`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import IO, Any, Final

from revbridge_cli.config.base_url import check_base_url
from revbridge_cli.config.credentials import ENV_API_KEY, Secret, check_header_value, resolve_key
from revbridge_cli.config.paths import expand
from revbridge_cli.config.profiles import (
    CONNECTION_KEYS,
    OPTIONS,
    check_profile,
    default_config_path,
    load_document,
)
from revbridge_cli.contract import PRODUCTION_URL
from revbridge_cli.errors import ConfigError

ENV_CUSTOMER_ID: Final = "REVBRIDGE_CUSTOMER_ID"
ENV_BASE_URL: Final = "REVBRIDGE_BASE_URL"
ENV_PROFILE: Final = "REVBRIDGE_PROFILE"
ENV_CONFIG: Final = "REVBRIDGE_CONFIG"


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
        path, explicit, sources["config"] = expand(config_path, env), True, "flag --config"
    elif ENV_CONFIG in env:
        path, explicit, sources["config"] = expand(env[ENV_CONFIG], env), True, f"env {ENV_CONFIG}"
    else:
        path, explicit, sources["config"] = default_config_path(env), False, "default"
    path = path.absolute()  # relative paths in the profile then mean the same from any cwd
    document = load_document(path, explicit, warnings)
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
        table = check_profile(profiles[name], where, path.parent, env)

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
        check_header_value(customer_id, f"customer id (from {sources['customer_id']})")
    api_key, key_source = resolve_key(flags, env, table, where, path.parent, stdin, warnings)
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
