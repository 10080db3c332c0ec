"""A run's send side: a queue and a worker per lane between the packer and the sender, each
batch's verdict to the ledger (and with --state to the journal), and how a send stops.

A stop (a signal, a fatal answer such as 401) must end waits at once, let requests in flight
finish within the grace period, and still account for every batch: sent, or abandoned to the
rejected file, or (with --state) left pending for the next run. That is a job of its own, apart
from reading. It is a mixin of `pipeline.Run` rather than an object of its own because both
halves share one run's state and its stop; the read loop, the hottest code of the tool, keeps
reading `self.stopping` as a plain attribute, with no indirection per record.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Iterable

import httpx

from revbridge_cli import __version__
from revbridge_cli.batch import Batch
from revbridge_cli.deliver import AdaptiveLimit, Attempt, Outcome, Sender
from revbridge_cli.ledger import Ledger
from revbridge_cli.pack import Packer
from revbridge_cli.process import install_signals, remove_signals
from revbridge_cli.reporter import Reporter
from revbridge_cli.resume import Durable
from revbridge_cli.settings import SendSettings
from revbridge_cli.summary import Summary


class SendSide:
    """The send half of `pipeline.Run`; what it uses of the run is declared here."""

    settings: SendSettings
    summary: Summary
    ledger: Ledger
    reporter: Reporter
    durable: Durable | None
    packer: Packer
    sender: Sender | None
    stopping: str | None
    interrupt_signal: int
    _stopped: asyncio.Event
    _produce: Callable[[Callable[[Batch], object]], Awaitable[None]]
    _report_progress: Callable[[], None]
    request_stop: Callable[[str], None]

    async def _send_all(self) -> None:
        s = self.settings
        headers = {
            "authorization": f"Bearer {s.api_key.reveal() if s.api_key else ''}",
            "x-customer-id": s.customer_id or "",
            "user-agent": f"revbridge-cli/{__version__}",
        }
        limits = httpx.Limits(
            max_connections=s.concurrency, max_keepalive_connections=s.concurrency
        )
        loop = asyncio.get_running_loop()
        install_signals(loop, self._on_signal)
        async with httpx.AsyncClient(timeout=httpx.Timeout(s.timeout), limits=limits) as client:
            self.sender = Sender(
                client,
                s.base_url,
                headers,
                s.retry,
                AdaptiveLimit(s.concurrency),
                on_attempt=self._on_attempt,
            )
            queues: list[asyncio.Queue[Batch | None]] = [
                asyncio.Queue(maxsize=2) for _ in range(max(1, s.concurrency))
            ]
            workers = [asyncio.create_task(self._worker(q)) for q in queues]
            try:
                await self._produce(lambda b: self._put(queues[b.lane], b, reading=True))
                for batch in self.packer.flush():
                    await self._put(queues[batch.lane], batch)
                for q in queues:
                    if not await self._put(q, None):
                        q.put_nowait(None)  # _put drained it: there is room
                await self._finish_workers(workers)
            finally:
                for w in workers:
                    w.cancel()
                remove_signals(loop)
        self.summary.concurrency_lowest = self.sender.limit.lowest
        if self.packer.grown:
            self.summary.grouping_buffer_mb = round(self.packer.peak_held / 1e6, 1)
        if self.sender.fatal is not None:
            self.summary.fatal = self.sender.fatal.message

    async def _put(
        self, queue: asyncio.Queue[Batch | None], batch: Batch | None, reading: bool = False
    ) -> bool:
        """Hand a batch to its lane; a stop while waiting for room ends the wait at once
        (the lane may sit behind a hung request) and the lane's queue is emptied. A wait
        while reading means requests are the bottleneck: the packer may then hold more."""
        if self.stopping is None and not queue.full():
            queue.put_nowait(batch)
            return True
        if self.stopping is None:
            if reading:
                self.packer.grow()
            put = asyncio.ensure_future(queue.put(batch))
            stop = asyncio.ensure_future(self._stopped.wait())
            await asyncio.wait({put, stop}, return_when=asyncio.FIRST_COMPLETED)
            stop.cancel()
            if put.done():
                return True
            put.cancel()
        while not queue.empty():
            queued = queue.get_nowait()
            if queued is not None:
                self._abandon([queued], f"not sent: {self.stopping}")
        if batch is not None:
            self._abandon([batch], f"not sent: {self.stopping}")
        return False

    async def _finish_workers(self, workers: list[asyncio.Task[None]]) -> None:
        """Wait for the lanes to finish; after a stop, only for the grace period."""
        running: set[asyncio.Future[object]] = set(workers)
        if self.stopping is None:
            stop = asyncio.ensure_future(self._stopped.wait())
            while running and not stop.done():
                done, running = await asyncio.wait(
                    running | {stop}, return_when=asyncio.FIRST_COMPLETED
                )
                running.discard(stop)
                for task in done - {stop}:
                    task.result()  # a bug in a worker must not pass silently
            stop.cancel()
            if not running:
                return
        _, pending = await asyncio.wait(running, timeout=self.settings.grace_seconds)
        for task in pending:
            task.cancel()
        await asyncio.gather(*pending, return_exceptions=True)

    async def _worker(self, queue: asyncio.Queue[Batch | None]) -> None:
        assert self.sender is not None
        while True:
            batch = await queue.get()
            if batch is None:
                return
            if self.stopping is not None:
                self._abandon([batch], f"not sent: {self.stopping}")
                continue
            if self.durable:
                self.durable.batch_out(batch)
            try:
                outcomes = await self.sender.send(batch)
            except asyncio.CancelledError:
                self._abandon(
                    [batch],
                    f"{self.stopping or 'stopped'} while the request was in "
                    "flight: it may have been stored",
                )
                raise
            stop = self.stopping or (self.sender.fatal and self.sender.fatal.message)
            if self.durable and stop and any(o.undelivered for o in outcomes):
                self._abandon([batch], f"not sent: {stop}")  # the next run sends it
            else:
                for outcome in outcomes:
                    self._record(outcome)
                if self.durable:
                    self.ledger.rejected.flush()
                    self.durable.batch_done(batch)
                    self.durable.commit()
            if self.sender.fatal is not None:
                self.request_stop(self.sender.fatal.message)

    def _abandon(self, batches: Iterable[Batch], why: str) -> None:
        """Batches a stop kept from their verdict: with --state the next run sends them, so
        they stay unsettled in the journal; without it they go to the rejected file."""
        for batch in batches:
            if self.durable:
                self.summary.events_pending += batch.n_events
            else:
                self._record(Outcome(batch, undelivered=why))

    def _on_attempt(self, attempt: Attempt) -> None:
        self.ledger.attempt(attempt)
        self.reporter.attempt(attempt)

    def _record(self, outcome: Outcome) -> None:
        self.ledger.outcome(outcome)
        self._report_progress()

    # ---- signals ------------------------------------------------------------------------

    def _on_signal(self, signum: int, name: str) -> None:
        if self.summary.interrupted:  # the second one: quit at once
            os.write(2, f"\n{name} again: quitting now\n".encode())
            os._exit(128 + signum)
        self.summary.interrupted = (
            f"{name}: stopped reading; run the same command again to send the rest"
            if self.durable
            else f"{name}: stopped reading; see the rejected file for what was not sent"
        )
        self.interrupt_signal = signum
        self.reporter.notice(f"{name}: finishing requests in flight (press again to quit now)")
        self.request_stop(name)
