"""One settings object for a send or validate run: what the CLI parsed, nothing else."""

from __future__ import annotations

from dataclasses import dataclass, field

from revbridge_cli import contract
from revbridge_cli.records import ShapeOptions
from revbridge_cli.retry import RetryPolicy


@dataclass(frozen=True)
class SendSettings:
    inputs: list[str]
    base_url: str = contract.PRODUCTION_URL
    api_key: str | None = field(default=None, repr=False)  # never in a repr or a traceback
    customer_id: str | None = None
    fmt: str | None = None
    concurrency: int = 4
    max_users: int = contract.MAX_USERS
    max_bytes: int = contract.MAX_BODY_BYTES
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
