"""The range of every numeric `send` option, in one table.

A value reaches the run by three roads: a flag (checked by Typer), a profile key (checked when
the config file is read, since a profile value never passes Typer), and a program calling the
packer or the retry policy directly. The bounds once had a home on each road and the homes
disagreed (a profile's `max_bytes = 10` passed the profile check and crashed in the packer), so
all three read this table. Pure data and arithmetic: no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from revbridge_cli.contract import MAX_BODY_BYTES, MAX_USERS


@dataclass(frozen=True, slots=True)
class Bound:
    """`kind` is int or float; `low` and `high` are inclusive; `high` None means no ceiling."""

    kind: type
    low: float
    high: float | None = None

    def problem(self, value: float) -> str | None:
        """Why `value` is out of range (to follow the option's name), or None if it is fine."""
        if value != value:  # NaN (a TOML profile can hold one) passes every comparison below
            return "must be a number, not NaN"
        if value < self.low:
            return f"must be at least {_show(self.low)}"
        if self.high is not None and value > self.high:
            return f"must be at most {_show(self.high)}"
        return None

    def typer(self) -> dict[str, Any]:
        """`min`/`max` for `typer.Option`, so the flag is refused with the same range."""
        out: dict[str, Any] = {"min": self.kind(self.low)}
        if self.high is not None:
            out["max"] = self.kind(self.high)
        return out


def _show(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)


# The smallest body any user fits in: a 1-event user with a short identifier is about 100
# bytes, and the packer needs room for the body's own brackets; 1 KiB keeps it meaningful.
MIN_BODY_BYTES: Final = 1024

BOUNDS: Final[dict[str, Bound]] = {
    "concurrency": Bound(int, 1, 64),
    "max_users": Bound(int, 1, MAX_USERS),
    "max_bytes": Bound(int, MIN_BODY_BYTES, MAX_BODY_BYTES),
    "buffer_mb": Bound(int, 1, 100_000),
    "max_retries": Bound(int, 0, 1_000),
    "retry_initial_delay": Bound(float, 0.0, 3_600.0),
    "retry_max_delay": Bound(float, 0.0, 3_600.0),
    "timeout": Bound(float, 0.1, 3_600.0),
    "grace_seconds": Bound(float, 0.0, 3_600.0),
    "limit": Bound(int, 1),
}

# Options a profile cannot set: the grace period is the command's, and a profile's `limit`
# would quietly make every run of it a trial.
NOT_IN_PROFILES: Final = frozenset(("grace_seconds", "limit"))


# The packer itself, called from a program or a test, works down to this: room for the body's
# brackets and one tiny user. Settings (flags, profiles) are held to MIN_BODY_BYTES above.
PACKER_MIN_BYTES: Final = 64


def check_packer(max_users: int, max_bytes: int) -> None:
    """The packer's own limits: `max_users` as the option's, `max_bytes` down to 64."""
    check("max_users", max_users)
    if max_bytes < PACKER_MIN_BYTES:
        raise ValueError(f"max_bytes {max_bytes} is too small for any request")


def check(name: str, value: float) -> None:
    """Raise ValueError naming the option when `value` is outside its bounds."""
    problem = BOUNDS[name].problem(value)
    if problem is not None:
        raise ValueError(f"{name} {problem} (got {value})")
