"""The lanes between the packer and the sender: a bounded queue and a supervised worker each.

A user's batches always go through the same lane, one request at a time, so they never
overtake each other. The run talks to the lanes through three calls: `put` a batch (which
says whether it had to wait: the feedback that lets the packer hold more), `close` at the end
of input, and `stop`. Everything a worker learns goes back through the callbacks it was built
with; a worker never reaches into the run.

Supervision: a worker that fails (a bug, or an output such as the rejected file that cannot be
written) reports the exception to `on_failure` at once, gives its batch and its queue up to
`abandon`, and the run stops. No batch is ever dropped: each ends settled or abandoned, and an
abandoned batch is the run's to account for (undelivered rows, or pending with --state).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from enum import Enum
from typing import Any

from revbridge_cli.config.settings import SendSettings
from revbridge_cli.delivery.http_client import open_client
from revbridge_cli.delivery.limit import AdaptiveLimit
from revbridge_cli.delivery.sender import Attempt, Outcome, Sender
from revbridge_cli.pack.batch import Batch
from revbridge_cli.version import __version__

QUEUE_DEPTH = 2  # batches waiting per lane: enough to keep the wire busy, little memory


class Handoff(Enum):
    """What became of a batch handed to the lanes."""

    QUEUED = "queued"  # there was room at once
    WAITED = "waited"  # the lane was full: requests are the bottleneck
    STOPPED = "stopped"  # the run is stopping: the batch was abandoned


class Lanes:
    def __init__(
        self,
        sender: Sender,
        count: int,
        *,
        before_send: Callable[[Batch], None],
        settle: Callable[[Batch, list[Outcome]], None],
        abandon: Callable[[Batch, str], None],
        on_failure: Callable[[BaseException], None],
    ) -> None:
        self.sender = sender
        self.stopping: str | None = None
        self._before_send = before_send
        self._settle = settle
        self._abandon = abandon
        self._on_failure = on_failure
        self._queues: list[asyncio.Queue[Batch | None]] = [
            asyncio.Queue(maxsize=QUEUE_DEPTH) for _ in range(count)
        ]
        self._stopped = asyncio.Event()
        self._verdicts = 0
        self._verdict = asyncio.Event()  # set at each verdict (and at a stop), for `first_verdict`
        self._workers = [asyncio.create_task(self._work(q)) for q in self._queues]

    # ---- the run's side -----------------------------------------------------------------

    async def put(self, batch: Batch) -> Handoff:
        """Hand a batch to its lane. A stop while waiting for room ends the wait at once (the
        lane may sit behind a hung request); the batch is then abandoned, never lost."""
        queue = self._queues[batch.lane]
        if self.stopping is None and not queue.full():
            queue.put_nowait(batch)
            return Handoff.QUEUED
        if self.stopping is None and await self._wait_or_stop(queue.put(batch)):
            return Handoff.WAITED
        self._abandon(batch, f"not sent: {self.stopping}")
        return Handoff.STOPPED

    async def first_verdict(self) -> None:
        """Wait until some batch has its verdict, or the run stops: the slow start's gate."""
        if self._verdicts or self.stopping is not None:
            return
        self._verdict.clear()
        await self._verdict.wait()

    def stop(self, why: str) -> None:
        """No new request after this; waits end at once. Requests in flight may finish."""
        if self.stopping is None:
            self.stopping = why
            self._stopped.set()
            self._verdict.set()
            self.sender.halt(why)
            for queue in self._queues:  # an idle worker wakes and ends; a busy one ends after
                if not queue.full():
                    queue.put_nowait(None)

    async def close(self, grace_seconds: float) -> None:
        """End of input: let every lane finish its queue; after a stop, wait only the grace
        period for requests in flight, then give up on them (they are abandoned as in doubt).
        Whatever is still queued is abandoned, so every batch put is accounted for."""
        for queue in self._queues:
            if self.stopping is None:
                await self._wait_or_stop(queue.put(None))
        running: set[asyncio.Future[Any]] = {w for w in self._workers if not w.done()}
        if running and self.stopping is None:
            stop: asyncio.Future[Any] = asyncio.ensure_future(self._stopped.wait())
            while running and not stop.done():
                _, running = await asyncio.wait(
                    running | {stop}, return_when=asyncio.FIRST_COMPLETED
                )
                running.discard(stop)
            stop.cancel()
        if running:
            _, pending = await asyncio.wait(running, timeout=grace_seconds)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        for queue in self._queues:
            self._give_up(queue)

    # ---- the workers --------------------------------------------------------------------

    async def _work(self, queue: asyncio.Queue[Batch | None]) -> None:
        batch: Batch | None = None
        try:
            while True:
                batch = await queue.get()
                if batch is None:
                    return
                if self.stopping is not None:
                    self._abandon(batch, f"not sent: {self.stopping}")
                    batch = None
                    if queue.empty():
                        return
                    continue
                self._before_send(batch)
                try:
                    outcomes = await self.sender.send(batch)
                except asyncio.CancelledError:
                    self._abandon(
                        batch,
                        f"{self.stopping or 'stopped'} while the request was in flight: "
                        "it may have been stored",
                    )
                    batch = None
                    raise
                current, batch = batch, None  # from here on the verdict owns the batch
                self._settle(current, outcomes)
                self._verdicts += 1
                self._verdict.set()
                if self.stopping is not None and queue.empty():
                    return
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # supervised: the run hears of it at once and stops
            if batch is not None:
                with contextlib.suppress(Exception):
                    self._abandon(batch, f"not sent: {exc}")
            self._on_failure(exc)
            self._give_up(queue)

    def _give_up(self, queue: asyncio.Queue[Batch | None]) -> None:
        while not queue.empty():
            queued = queue.get_nowait()
            if queued is not None:
                self._abandon(queued, f"not sent: {self.stopping or 'stopped'}")

    async def _wait_or_stop(self, put: Coroutine[Any, Any, None]) -> bool:
        """Await a queue put unless the run stops first; True when the put went through."""
        task = asyncio.ensure_future(put)
        stop: asyncio.Future[Any] = asyncio.ensure_future(self._stopped.wait())
        await asyncio.wait({task, stop}, return_when=asyncio.FIRST_COMPLETED)
        stop.cancel()
        if task.done() and not task.cancelled():
            return True
        task.cancel()
        return False


@contextlib.asynccontextmanager
async def open_lanes(
    settings: SendSettings,
    *,
    on_attempt: Callable[[Attempt], None],
    before_send: Callable[[Batch], None],
    settle: Callable[[Batch, list[Outcome]], None],
    abandon: Callable[[Batch, str], None],
    on_failure: Callable[[BaseException], None],
) -> AsyncIterator[Lanes]:
    """The send side of a run, wired: one HTTP client, one sender with its retry policy and
    concurrency limit, a lane per request in flight. On leaving, the lanes are closed (within
    the grace period after a stop), so every batch put has been settled or abandoned."""
    s = settings
    headers = {
        "authorization": f"Bearer {s.api_key.reveal() if s.api_key else ''}",
        "x-customer-id": s.customer_id or "",
        "user-agent": f"revbridge-cli/{__version__}",
    }
    count = max(1, s.concurrency)
    async with open_client(s.base_url, count, s.timeout) as client:
        sender = Sender(
            client,
            s.base_url,
            headers,
            s.retry,
            AdaptiveLimit(s.concurrency),
            on_attempt=on_attempt,
        )
        lanes = Lanes(
            sender,
            count,
            before_send=before_send,
            settle=settle,
            abandon=abandon,
            on_failure=on_failure,
        )
        try:
            yield lanes
        finally:
            await lanes.close(s.grace_seconds)
