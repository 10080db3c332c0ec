"""The rules a base URL must pass before the API key is sent to it.

The base URL decides where the bearer key travels, so it is checked on its own, whichever
level (flag, environment, profile, default) it came from: the key must not go out in clear,
and a pasted full endpoint must fail here, clearly, rather than later as a confusing 404.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final
from urllib.parse import urlsplit

from revbridge_cli.contract import DEVELOPMENT_URL, PRODUCTION_URL
from revbridge_cli.errors import ConfigError
from revbridge_cli.loopback import is_loopback

URL_WORDS: Final[Mapping[str, str]] = {"production": PRODUCTION_URL, "development": DEVELOPMENT_URL}


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
    if scheme == "http" and not is_loopback(parts.hostname):
        raise ConfigError(
            f"base URL {url!r} uses http:// for a host that is not loopback, so the API key "
            "would travel in clear: use https:// (http:// is only for 127.0.0.0/8, ::1, localhost)"
        )
    return f"{scheme}://{parts.netloc}"
