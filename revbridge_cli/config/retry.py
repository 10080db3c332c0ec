"""The retry policy as a value: which answers to retry, how many times, and how long to wait.

Borrowed from urllib3's `Retry`: the sender asks the policy and the policy never sleeps or
sends, so the arithmetic is tested alone. It is configuration (flags and profiles set it, the
settings carry it), so it lives in config/, below delivery, which only follows it. The rules
are the vendor's (docs/contract.md, "Client duties"): 1 s, doubling, capped at 60 s; plus the
project's: 429/502/504 like 503, and jitter that only ever shortens a wait, by at most half,
so the vendor's minimum spacing is kept on average while many clients stop retrying in
lockstep.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

RETRYABLE_STATUSES = frozenset({429, 502, 503, 504})


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """`max_retries` is exactly that: 0 means one attempt and no retry, never a hidden default."""

    max_retries: int = 8
    initial_delay: float = 1.0
    max_delay: float = 60.0
    jitter: float = 0.5
    statuses: frozenset[int] = RETRYABLE_STATUSES

    def __post_init__(self) -> None:
        if self.max_retries < 0:
            raise ValueError("max_retries must be 0 or more")
        if self.initial_delay < 0 or self.max_delay < 0:
            raise ValueError("retry delays must be 0 or more")
        if not 0 <= self.jitter <= 0.5:
            raise ValueError("jitter may shorten a wait by at most half")

    def is_retryable(self, status: int) -> bool:
        return status in self.statuses

    def may_retry(self, retries_done: int) -> bool:
        return retries_done < self.max_retries

    def backoff(self, retries_done: int, rand: float = 0.0) -> float:
        """Wait before retry number `retries_done + 1`; `rand` in [0, 1) drives the jitter."""
        base = min(self.max_delay, self.initial_delay * 2.0 ** min(retries_done, 62))
        return base * (1 - self.jitter * rand)

    def delay(
        self,
        retries_done: int,
        retry_after: str | None = None,
        rand: float = 0.0,
        now: datetime | None = None,
    ) -> float:
        """The wait: the server's `Retry-After` when it gives one, capped at `max_delay` so a
        cron run cannot be parked for an hour, otherwise the exponential backoff."""
        asked = parse_retry_after(retry_after, now) if retry_after else None
        if asked is not None:
            return min(asked, self.max_delay)
        return self.backoff(retries_done, rand)


def parse_retry_after(value: str, now: datetime | None = None) -> float | None:
    """Seconds from a `Retry-After` header (delta-seconds or HTTP date); None if unreadable."""
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
