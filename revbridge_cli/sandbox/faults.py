"""Injected faults: one immutable policy value and a pure, seeded decision per request.

A decision depends only on the seed, the fault settings and the request number, never on
timing or on which thread asked first, so a test that says "request 3 fails" or "30% fail with
seed 7" sees the same requests fail on every run, even with concurrent clients. The one
exception is `capacity`, which is about timing by nature: a server that can work on only N
requests at once refuses the N+1st that arrives while N are in progress.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from http import HTTPStatus

from revbridge_cli.contract import ERR_UNAVAILABLE, MAX_BODY_BYTES

FAIL_STATUSES: frozenset[int] = frozenset({429, 500, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class Decision:
    """What the server does to one numbered request, after authentication."""

    revoked: bool = False
    reset: bool = False
    fail: bool = False
    hang: bool = False


REJECTED_USER_MESSAGE = "user_id is blocked (sandbox fault)"


@dataclass(frozen=True)
class Faults:
    """The whole fault policy; replace it (`Sandbox.faults = ...`) to change faults at runtime.

    Request numbers are 1-based and count authenticated POSTs to the ingest path, the same
    numbering `fail_requests`, `hang_requests`, `reset_requests` and `revoke_after` use.
    """

    seed: int = 0
    latency: float = 0.0
    fail_rate: float = 0.0
    fail_requests: tuple[int, ...] = ()
    fail_status: int = 503
    retry_after: int | None = None
    hang_rate: float = 0.0
    hang_requests: tuple[int, ...] = ()
    hang_seconds: float = 15.0
    reset_rate: float = 0.0
    reset_requests: tuple[int, ...] = ()
    reset_after_store: bool = False
    max_body_bytes: int = MAX_BODY_BYTES
    revoke_after: int | None = None
    # Users the server refuses although the contract's rules pass them, by user_id: the
    # importer checks the same rules before sending, so only this shows server-side rejections.
    reject_user_ids: tuple[str, ...] = ()
    # At most `capacity` requests in progress at once (the others get 503 at once, after
    # `latency`), for `capacity_seconds` from the first request this policy sees (None: always).
    capacity: int | None = None
    capacity_seconds: float | None = None
    _fail_set: frozenset[int] = field(init=False, repr=False, compare=False)
    _hang_set: frozenset[int] = field(init=False, repr=False, compare=False)
    _reset_set: frozenset[int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        for name in ("fail_rate", "hang_rate", "reset_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, got {value}")
        for name in ("latency", "hang_seconds"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must not be negative")
        if self.capacity is not None and self.capacity < 1:
            raise ValueError("capacity must be at least 1 request in flight")
        if self.capacity_seconds is not None and self.capacity_seconds < 0:
            raise ValueError("capacity_seconds must not be negative")
        if self.fail_status not in FAIL_STATUSES:
            allowed = ", ".join(str(s) for s in sorted(FAIL_STATUSES))
            raise ValueError(f"fail_status must be one of {allowed}, got {self.fail_status}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must not be negative")
        if self.max_body_bytes < 0:
            raise ValueError("max_body_bytes must not be negative")
        if self.revoke_after is not None and self.revoke_after < 0:
            raise ValueError("revoke_after must not be negative")
        # Frozen, so the lookup sets are attached once here rather than rebuilt per request.
        object.__setattr__(self, "_fail_set", frozenset(self.fail_requests))
        object.__setattr__(self, "_hang_set", frozenset(self.hang_requests))
        object.__setattr__(self, "_reset_set", frozenset(self.reset_requests))

    def draw(self, kind: str, number: int) -> float:
        """A uniform number in [0, 1) fixed by (seed, kind, number): a hash, not a shared RNG."""
        digest = hashlib.blake2b(f"{self.seed}:{kind}:{number}".encode(), digest_size=8).digest()
        return int.from_bytes(digest, "big") / 2**64

    def _hits(self, kind: str, number: int, listed: frozenset[int], rate: float) -> bool:
        return number in listed or (rate > 0.0 and self.draw(kind, number) < rate)

    def decide(self, number: int) -> Decision:
        """Precedence when several apply: revoked, then reset, then fail, then hang."""
        if self.revoke_after is not None and number > self.revoke_after:
            return Decision(revoked=True)
        if self._hits("reset", number, self._reset_set, self.reset_rate):
            return Decision(reset=True)
        if self._hits("fail", number, self._fail_set, self.fail_rate):
            return Decision(fail=True)
        if self._hits("hang", number, self._hang_set, self.hang_rate):
            return Decision(hang=True)
        return Decision()

    def over_capacity(self, in_flight: int, seconds_since_first: float) -> bool:
        """Is a request that finds `in_flight` others in progress refused (503)?"""
        if self.capacity is None:
            return False
        if self.capacity_seconds is not None and seconds_since_first >= self.capacity_seconds:
            return False
        return in_flight >= self.capacity

    def fail_message(self) -> str:
        """The 503 wording comes from the contract; the other statuses use the HTTP phrase."""
        if self.fail_status == 503:
            return ERR_UNAVAILABLE
        return HTTPStatus(self.fail_status).phrase.lower()

    def fail_headers(self) -> dict[str, str]:
        if self.retry_after is None:
            return {}
        return {"Retry-After": str(self.retry_after)}


def parse_numbers(text: str | None) -> tuple[int, ...]:
    """`"3,5"` -> `(3, 5)`: the CLI spelling of a list of request numbers."""
    if not text:
        return ()
    numbers = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        value = int(part)
        if value < 1:
            raise ValueError(f"request numbers are 1-based, got {value}")
        numbers.append(value)
    return tuple(numbers)
