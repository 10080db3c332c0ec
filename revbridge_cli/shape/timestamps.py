"""Times as exports write them, to the one shape the API takes: ISO 8601 in UTC.

`--timestamps lenient` (and every preset) reads `2025-01-01 00:17:35.174+00` (DuckDB and
Postgres), `2023-10-15 14:30:00.123456` (Amplitude, no zone: UTC), offsets `Z`, `+00`, `+0000`,
`+00:00`, a trailing ` UTC`, and epoch seconds, milliseconds or microseconds as numbers or
numeric strings. The unit of an epoch number is read from its magnitude unless a mapping
fixes it: below 1e11 seconds (until the year 5138), below 1e14 milliseconds, below 1e17
microseconds, nanoseconds above. `--epoch-timestamps` is the numbers-only case of it. A
mapping's `zone` says in which time zone times without an offset are written, epoch numbers
included (Mixpanel's raw export of an older project writes the project's wall clock as epoch
seconds); without it they are UTC.

Pure functions; a value that is no time raises `ValueError` with the reason, which the caller
puts beside the value in the rejected row's message. That includes a time the calendar cannot
hold once it is moved to UTC (`0001-01-01 00:00:00+01:00` is in year 0): datetime raises
`OverflowError` for it, which is turned into the same `ValueError` here, so no caller (the
shaper, a mapping, the Parquet reader) has to know datetime's other exception.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from revbridge_cli import contract

UNITS = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": 0}  # microseconds per unit (ns: divide)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_TEXT = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?"
    r" ?(Z|z|UTC|GMT|[+-]\d{2}(?::?\d{2})?)?",
    re.ASCII,
)
_NUMBER = re.compile(r"-?\d+(?:\.\d+)?", re.ASCII)
READABLE = "ISO 8601, YYYY-MM-DD HH:MM:SS[.f] with an optional zone, or epoch s/ms/µs"
OUT_OF_RANGE = "out of range: before year 1 or after year 9999 in UTC"


def unit_of(value: float) -> str:
    """The unit an epoch number is most likely in, by its magnitude (module docstring)."""
    size = abs(value)
    if size < 1e11:
        return "s"
    if size < 1e14:
        return "ms"
    if size < 1e17:
        return "us"
    return "ns"


def known_zone(name: Any) -> bool:
    """Whether `name` is an IANA time zone this machine knows (`America/Los_Angeles`)."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        return False
    return True


def _wall(moment: datetime, zone: str | None) -> datetime:
    """A moment read as UTC that was `zone`'s wall clock, as the UTC moment it was."""
    if zone is None:
        return moment
    return moment.replace(tzinfo=ZoneInfo(zone)).astimezone(UTC)


def epoch_to_iso(value: float, unit: str | None = None, zone: str | None = None) -> str:
    """An epoch number as ISO 8601 UTC, with as many fraction digits as it carries (none, 3
    or 6). Integers are converted exactly; `ValueError` before year 1 or after 9999 (NaN and
    infinities included)."""
    unit = unit or unit_of(value)
    per = UNITS[unit]
    try:
        if isinstance(value, int):
            micros = value // 1000 if per == 0 else value * per
        else:
            micros = round(value / 1000) if per == 0 else round(value * per)
        moment = _wall(_EPOCH + timedelta(microseconds=micros), zone)
    except OverflowError:
        raise ValueError(OUT_OF_RANGE) from None
    return _format(moment, moment.microsecond)


def _stamp(moment: datetime) -> str:
    """`YYYY-MM-DDTHH:MM:SS` with a four-digit year (strftime's `%Y` writes year 1 as `1`);
    isoformat is also three times as fast as strftime (the Parquet reader's hot path)."""
    return moment.isoformat(timespec="seconds")[:19]


def _format(moment: datetime, micros: int) -> str:
    text = _stamp(moment)
    if not micros:
        return text + "Z"
    if not micros % 1000:
        return f"{text}.{micros // 1000:03d}Z"
    return f"{text}.{micros:06d}Z"


def _zone(text: str | None) -> timedelta:
    if text is None or text in ("Z", "z", "UTC", "GMT"):
        return timedelta(0)
    sign = -1 if text[0] == "-" else 1
    digits = text[1:].replace(":", "")
    hours, minutes = int(digits[:2]), int(digits[2:4] or 0)
    if hours > 23 or minutes > 59:
        raise ValueError(f"offset {text} is out of range")
    return sign * timedelta(hours=hours, minutes=minutes)


def text_to_iso(text: str, local: str | None = None) -> str:
    """A date and time as exports write them (module docstring) as ISO 8601 UTC; the fraction
    keeps its digits. No zone means `local` (a time zone name), else UTC."""
    match = _TEXT.fullmatch(text.strip())
    if match is None:
        raise ValueError("not a date and time")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), tzinfo=UTC
        )
    except ValueError as e:
        raise ValueError(str(e)) from None
    try:
        moment = _wall(moment, local) if zone is None else moment - _zone(zone)
    except OverflowError:
        raise ValueError(OUT_OF_RANGE) from None
    out = _stamp(moment)
    return f"{out}.{fraction}Z" if fraction else out + "Z"


def normalize(
    value: Any, unit: str | None = None, pattern: str | None = None, zone: str | None = None
) -> str:
    """Any timestamp an export writes as ISO 8601 UTC, or `ValueError` saying why not.

    `unit` fixes the unit of epoch numbers (s, ms, us, ns); `pattern` is a `strptime` format
    for text no rule above reads; `zone` is the time zone of times written without one (naive
    results, epoch numbers included), UTC without it.
    """
    if type(value) is str:
        if contract.is_iso8601(value) and value.endswith("Z") and not pattern:
            return value
        if pattern:
            try:
                moment = datetime.strptime(value, pattern)
            except ValueError:
                raise ValueError(f"does not match the format {pattern!r}") from None
            try:
                if moment.tzinfo is None:
                    moment = _wall(moment.replace(tzinfo=UTC), zone)
                moment = moment.astimezone(UTC)
            except OverflowError:
                raise ValueError(OUT_OF_RANGE) from None
            return _format(moment.replace(microsecond=0), moment.microsecond)
        text = value.strip()
        if _NUMBER.fullmatch(text):
            if len(text) > 40:  # no epoch time has that many digits (and int() stops at 4,300)
                raise ValueError("out of range for an epoch time")
            number: float = float(text) if "." in text else int(text)
            return _epoch(number, unit, zone)
        return text_to_iso(text, zone)
    if contract.is_number(value):
        return _epoch(value, unit, zone)
    raise ValueError(f"a {type(value).__name__ if value is not None else 'null'} is not a time")


def _epoch(value: float, unit: str | None, zone: str | None = None) -> str:
    try:
        return epoch_to_iso(value, unit, zone)
    except ValueError:
        raise ValueError("out of range for an epoch time") from None
