"""One settings object for a send or validate run: what the CLI and the profile settled."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from revbridge_cli import contract
from revbridge_cli.config import bounds as option_bounds
from revbridge_cli.config.bounds import BOUNDS
from revbridge_cli.config.credentials import Secret
from revbridge_cli.config.resolve import Connection
from revbridge_cli.config.retry import RetryPolicy
from revbridge_cli.errors import ConfigError
from revbridge_cli.pack.packer import DEFAULT_BUFFER_BYTES
from revbridge_cli.shape.near_miss import Tally
from revbridge_cli.shape.parts import ShapeOptions
from revbridge_cli.shape.window import Window


@dataclass(frozen=True)
class SendSettings:
    inputs: list[str]
    base_url: str = contract.PRODUCTION_URL
    api_key: Secret | None = None  # masked in any repr, log or traceback; revealed for the header
    customer_id: str | None = None
    fmt: str | None = None
    concurrency: int = 4
    max_users: int = contract.MAX_USERS
    max_bytes: int = contract.MAX_BODY_BYTES
    buffer_mb: int = DEFAULT_BUFFER_BYTES // 1_000_000  # the grouping buffer, all lanes
    timeout: float = 30.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    shape: ShapeOptions = field(default_factory=ShapeOptions)
    rejected: str | None = None
    state: str | None = None
    restart_changed: bool = False
    dry_run: bool = False
    send: bool = True  # False for `validate`: read, shape and check only
    grace_seconds: float = 5.0
    log_file: str | None = None
    event_id_property: str | None = None  # stamp each event with a stable id (event_ids.py)
    profile_event: str | None = None  # send left-over profile updates as events of this name
    window: Window | None = None  # --since/--until
    limit: int | None = None  # --limit: read at most this many records
    strict: bool = False  # --strict: the look-ahead's warnings stop the run before any request


def build_settings(
    inputs: list[str],
    connection: Connection | None,
    options: Mapping[str, Any],
    **fixed: Any,
) -> SendSettings:
    """Settings from resolved options (flag > env > profile); absent ones keep the defaults.

    Raises ValueError for values outside `bounds.BOUNDS` (the table the flags and the
    profiles use), so a program building settings gets the same limits as the command line.
    """
    given = {k: v for k, v in options.items() if v is not None}
    for name, value in {**given, **fixed}.items():
        if name in BOUNDS and value is not None:  # None: not given (--limit's default)
            option_bounds.check(name, value)
    defaults = RetryPolicy()
    retry = RetryPolicy(
        max_retries=given.pop("max_retries", defaults.max_retries),
        initial_delay=given.pop("retry_initial_delay", defaults.initial_delay),
        max_delay=given.pop("retry_max_delay", defaults.max_delay),
    )
    mapping = fixed.pop("mapping", None)
    stamps = given.pop("timestamps", None) or (mapping.timestamps if mapping else None)
    if stamps not in (None, "strict", "lenient"):
        raise ConfigError(f"timestamps must be strict or lenient, not {stamps!r}")
    shape = ShapeOptions(
        require_timestamp=bool(given.pop("require_timestamp", False)),
        epoch_timestamps=bool(given.pop("epoch_timestamps", False)),
        lenient_timestamps=stamps == "lenient",
        drop_nulls=bool(given.pop("drop_nulls", False)) or bool(mapping and mapping.drop_nulls),
        mapping=mapping,
        near_miss=None if mapping else Tally(),
        keep_rows=bool(fixed.pop("keep_rows", False)),
    )
    if connection is not None:
        given.update(
            base_url=connection.base_url,
            api_key=connection.api_key,
            customer_id=connection.customer_id,
        )
    return SendSettings(inputs=list(inputs), retry=retry, shape=shape, **given, **fixed)
