"""How many requests may be in flight: the sender's one shared concurrency limit.

Additive increase, multiplicative decrease (AIMD), as TCP does it, and with TCP's rule for
*when* to decrease: at most once per round trip. A server that takes only 2 requests at once
answers a burst of 16 with 14 refusals that all arrive within one round trip; they are one
signal, not 14, and not "one a second" either (with 100 ms round trips a second is ten
windows of refusals). So each request carries a ticket, the number of requests started
before it, and a congestion signal cuts the limit only when its request was started after the
last cut: only a request sent under the lowered limit can say the lowered limit is still too
high. No clock is involved, so the arithmetic is tested as plain values.
"""

from __future__ import annotations

import asyncio

# Latency this far above the best recent round trip counts as congestion (the server queues).
_SLOW_FACTOR = 3.0
_SLOW_MARGIN = 0.5  # seconds: small absolute jitter on a fast link is no signal


class AdaptiveLimit:
    """Halves when the server struggles (503/429, timeouts, latency well above its usual),
    at most once per round-trip window; grows back by about one per window of successes."""

    def __init__(self, maximum: int, minimum: int = 1) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.limit = float(maximum)
        self.lowest = maximum  # for the summary: how far the server pushed us back
        self.in_flight = 0
        self.started = 0  # requests admitted so far: the next ticket
        self.cuts = 0
        self._cut_mark = -1  # tickets at or below it were in flight at the last cut
        self._cond = asyncio.Condition()
        self._baseline: float | None = None

    async def acquire(self) -> int:
        """Wait for room; the ticket returned goes back with `release`."""
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1
            ticket = self.started
            self.started += 1
            return ticket

    async def release(self, ticket: int, congested: bool, latency: float | None) -> None:
        """`latency` only for a plain success: it feeds the baseline that slowness is judged by."""
        async with self._cond:
            self.in_flight -= 1
            self.adjust(ticket, congested, latency)
            self._cond.notify_all()

    def adjust(self, ticket: int, congested: bool, latency: float | None) -> None:
        if latency is not None and not congested:
            base = self._baseline
            self._baseline = latency if base is None else min(latency, base * 0.99 + latency * 0.01)
            congested = base is not None and latency > _SLOW_FACTOR * base + _SLOW_MARGIN
        if congested:
            if ticket > self._cut_mark:  # sent after the last cut: a new signal
                self.limit = max(float(self.minimum), self.limit / 2)
                self.lowest = min(self.lowest, int(self.limit))
                self._cut_mark = self.started - 1
                self.cuts += 1
        else:
            self.limit = min(float(self.maximum), self.limit + 1 / max(self.limit, 1.0))
