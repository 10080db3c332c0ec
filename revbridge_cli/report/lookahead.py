"""The look-ahead: what the first records already predict, said before the first request.

A warning that comes with the final summary comes after the events were stored under the wrong
identity or stamped with their arrival time; the server keeps them so. The first records of an
input almost always show the same thing as the whole of it (a column is named one way on every
row), so the run reads a bounded sample first, at most `RECORDS` records, fewer when the first
request fills (the slow start closes it once the packer holds one request) or the input ends
(a small input is read whole), and says here what that sample shows, with the fix. With
`--strict` the run stops on them, before any request, with exit 2.

Pure: it is fed the records and what they shaped into, and gives the warnings as text.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

from revbridge_cli.shape.mapping import Mapping, lookup
from revbridge_cli.shape.near_miss import Tally

RECORDS = 1_000  # the most records the look-ahead reads before the first request goes

# Column names that hold an event's time in exports and warehouse tables (lower case, no `_`).
_TIME_NAMES = frozenset(
    ("time", "ts", "occurredat", "eventtime", "eventtimestamp", "createdat", "datetime", "date",
     "sentat", "receivedat", "originaltimestamp", "loggedat", "happenedat", "recordedat",
     "eventdate", "clienttime", "servertime", "when")
)  # fmt: skip


def time_like(key: str) -> bool:
    """A column that probably holds the event's time, by its name."""
    folded = key.lower().replace("_", "").replace("-", "")
    if folded == "timestamp":
        return False  # the API's own name: present means the event has one
    return folded in _TIME_NAMES or key.endswith(("_at", "At", "_time", "Time", "_ts"))


class Lookahead:
    """Tallies of the first records, and the warnings they make (`warnings`)."""

    def __init__(self, mapping: Mapping | None = None, limit: int = RECORDS) -> None:
        self.open = True  # until the first request is about to go (the run closes it)
        self.limit = limit
        self.records = 0
        self.events = 0
        self.untimed = 0  # events the server would stamp with their arrival time
        self.time_keys: Counter[str] = Counter()  # time-like columns of the records of those
        preset = mapping is not None and mapping.name.startswith("preset ")
        self._preset = mapping if preset else None
        self._id_paths = self._identifier_paths(self._preset)
        self.unlike_preset = 0  # records with none of the preset's identifier fields
        self.first_keys: list[str] | None = None

    @staticmethod
    def _identifier_paths(preset: Mapping | None) -> tuple[str, ...]:
        if preset is None:
            return ()
        rules = [f for f in preset.fields if f.target.startswith("identifiers.")]
        return tuple(p for f in rules for p in f.paths)

    def note(self, value: Any, untimed: int, events: int) -> bool:
        """One record read: its source value, and how many of the events it shaped into have
        no timestamp. True once the sample is full."""
        self.records += 1
        self.events += events
        if isinstance(value, dict):
            if self.first_keys is None:
                self.first_keys = [str(k) for k in list(value)[:8]]
            if untimed:
                self.untimed += untimed
                found = (k for k, v in value.items() if v not in (None, "") and time_like(k))
                self.time_keys.update(found)
            if self._preset is not None and not any(
                _present(lookup(value, p)) for p in self._id_paths
            ):
                self.unlike_preset += 1
        return self.records >= self.limit

    def warnings(self, near_miss: Tally | None) -> list[str]:
        """One line each, with the fix. `near_miss`: the run's tally, which at this point has
        seen exactly the records of the sample."""
        out: list[str] = []
        where = f"in the first {self.records:,} records"
        if near_miss is not None and (text := near_miss.warning()) is not None:
            out.append(f"{where}: {text}")
        if self.untimed:
            fix = "--require-timestamp sets such events aside"
            if self.time_keys:
                key = self.time_keys.most_common(1)[0][0]
                fix = f"if {key} is the event's time: --rename {key}=timestamp; or {fix}"
            out.append(
                f"{where}: {self.untimed:,} of {self.events:,} events have no timestamp: the "
                f"server stamps them with the time of arrival ({fix})"
            )
        if self._preset is not None and self.unlike_preset * 2 > self.records:
            name = self._preset.name.removeprefix("preset ")
            fields = ", ".join(self._id_paths)
            seen = ", ".join(self.first_keys or []) or "none"
            out.append(
                f"{where}: {self.unlike_preset:,} have none of the fields a {name} export "
                f"identifies users by ({fields}): does this data come from {name}? (the first "
                f"record's keys: {seen}); without --preset the API's own names are read as they are"
            )
        return out


def _present(value: Any) -> bool:
    """An identifier's value (a path that is absent looks up as the mapping's own marker)."""
    return isinstance(value, str | int | float) and value != ""
