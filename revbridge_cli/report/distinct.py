"""How many distinct users a run read: not the user objects it sent (pure, no I/O).

The summary's "user objects" count one per user per request: a user whose events went in
three requests counts three times there, so 100,000 events of 20,000 people read as "33,449
users". This counts each user once, by the same key the packer groups on (the primary
identifiers, `records.user_key`).

At scale, exactly up to `EXACT_UP_TO` users: a set of the keys' 64-bit hashes (about 70 bytes
a user; a collision among a few hundred thousand is about one in 10^9). Past it the set is
folded into a HyperLogLog sketch of 2^14 one-byte registers (16 KiB, a standard error of about
0.8%) and the count is an estimate, which the summary says (`~`, `users_distinct_estimated`).
"""

from __future__ import annotations

import math

EXACT_UP_TO = 200_000
_P = 14  # register index bits: 2^14 registers
_M = 1 << _P
_REST = 64 - _P
_REST_MASK = (1 << _REST) - 1
_MASK = (1 << 64) - 1
_ALPHA = 0.7213 / (1 + 1.079 / _M)
_BUFFER = 50_000  # once estimating: keys held before they are folded into the sketch


class DistinctUsers:
    """The read loop adds `hash(key)` to `seen` itself (a set's own `add`, the cheapest call
    there is on the hot path) and calls `check()` now and then; `count` at the end.

    `seen` is the exact set until it passes `EXACT_UP_TO`; from then on it is a buffer,
    folded into the sketch whenever it grows past `_BUFFER` (a sketch takes the same key any
    number of times, so folding a key again changes nothing)."""

    __slots__ = ("_registers", "seen")

    def __init__(self) -> None:
        self.seen: set[int] = set()
        self._registers: bytearray | None = None

    def add(self, key: bytes) -> None:
        """For callers off the hot path."""
        self.seen.add(hash(key))
        self.check()

    def check(self) -> None:
        limit = EXACT_UP_TO if self._registers is None else _BUFFER
        if len(self.seen) > limit:
            self._fold()

    def _fold(self) -> None:
        if self._registers is None:
            self._registers = bytearray(_M)
        registers = self._registers
        for h in self.seen:
            # Python's hash of bytes is SipHash; one multiply spreads it into the index bits.
            h = ((h & _MASK) * 0x9E3779B97F4A7C15) & _MASK
            index = h >> _REST
            rank = _REST - (h & _REST_MASK).bit_length() + 1
            if rank > registers[index]:
                registers[index] = rank
        self.seen.clear()

    @property
    def estimated(self) -> bool:
        return self._registers is not None

    @property
    def count(self) -> int:
        if self._registers is None:
            return len(self.seen)
        self._fold()
        registers = self._registers
        raw = _ALPHA * _M * _M / sum(2.0**-r for r in registers)
        zeros = registers.count(0)
        if raw <= 2.5 * _M and zeros:  # small range: linear counting is the better estimate
            return round(_M * math.log(_M / zeros))
        return round(raw)
