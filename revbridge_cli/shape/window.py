"""`--since` / `--until`: send only the events whose timestamp falls in a window (pure).

The window is half-open, `since <= timestamp < until`, so consecutive windows
(`--since 2026-01-01 --until 2026-02-01`, then `--since 2026-02-01 ...`) neither overlap nor
leave a gap. A bound is an ISO 8601 date (midnight UTC of that day) or date and time; a bound
or a timestamp without an offset is UTC, as the API reads it.

An event outside the window is not an error: it is counted (`events_outside_window`), never
set aside, and with `--state` its record is settled like a sent one, so a rerun with another
window does not see it again. An event without a timestamp cannot be placed in any window:
it is left out too and counted (`untimed_outside_window`), since the server would stamp it
with the time of arrival, which is no event's real time. Events with an invalid timestamp are
set aside as before (the contract's check comes first).

The Python API passes its `since=`/`until=` here too, as the CLI's strings or as `date` and
`datetime` objects: a date is midnight UTC, a naive datetime is UTC (as a naive string is, and
as the API reads a timestamp without an offset), not the caller's local time.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, date, datetime
from typing import Any, TypeAlias

from revbridge_cli.errors import UsageError
from revbridge_cli.shape.parts import UserPart

WindowBound: TypeAlias = str | date  # a datetime is a date too
_EXPECTED = "an ISO 8601 date or date and time, such as 2026-01-15 or 2026-01-15T14:30:00Z"


def parse_bound(value: WindowBound, flag: str) -> datetime:
    """A `--since`/`--until` value as an aware datetime (UsageError, exit 2, if unreadable)."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime(value.year, value.month, value.day)
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            raise UsageError(f"{flag}: expected {_EXPECTED}, not {value!r}") from None
    else:
        kind = type(value).__name__
        raise UsageError(f"{flag}: expected {_EXPECTED} (a str, date or datetime), not {kind}")
    return moment if moment.utcoffset() is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Window:
    since: datetime | None = None
    until: datetime | None = None

    @classmethod
    def of(
        cls,
        since: WindowBound | None,
        until: WindowBound | None,
        names: tuple[str, str] = ("--since", "--until"),
    ) -> Window | None:
        """The window the flags (or the API's `since=`/`until=`, `names` to say so in an
        error) ask for, or None when neither is given."""
        if since is None and until is None:
            return None
        window = cls(
            parse_bound(since, names[0]) if since is not None else None,
            parse_bound(until, names[1]) if until is not None else None,
        )
        if window.since and window.until and window.since >= window.until:
            raise UsageError(f"{names[0]} {since} is not before {names[1]} {until}: no event fits")
        return window

    def contains(self, timestamp: Any) -> bool:
        """Whether an event's (already checked) timestamp falls in the window."""
        if not isinstance(timestamp, str):
            return False
        moment = datetime.fromisoformat(timestamp)
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=UTC)
        if self.since is not None and moment < self.since:
            return False
        return self.until is None or moment < self.until

    def select(self, part: UserPart) -> tuple[UserPart | None, int, int]:
        """The part with only its events in the window (None if none is), how many events
        were left out, and how many of those had no timestamp."""
        kept = [event for event in part.events if self.contains(event.get("timestamp"))]
        outside = len(part.events) - len(kept)
        if not outside:
            return part, 0, 0
        untimed = sum(1 for event in part.events if "timestamp" not in event)
        if not kept:
            return None, outside, untimed
        return replace(part, events=kept, untimed=0), outside, untimed
