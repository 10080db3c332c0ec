"""The run: read -> shape -> pack -> deliver -> report, composed from its parts.

The stages themselves are pure (shape, pack) or edges of their own (the reader, the sender and
its lanes, the rejected file); this module owns the order of things and the bookkeeping that
ties an input record to its fate, so that every record read ends accepted, in the rejected
file, or (with --state) still pending in the journal for the next run. Nothing is dropped.

How the parts talk, all of it visible here:
- reading is the feed's (`feed.py`): the run builds it when it starts, from its parts, and
  the feed hands each closed batch back (`_dispatch`); what the two share is a `Control`
  (the run's `stopping`, the slow start's `probing`) and the bytes read (`ReadProgress`);
- `_dispatch` hands the batch to the lanes (`Lanes.put`); when a lane had no room the run
  tells the packer to hold more (`Packer.grow`): requests are the bottleneck;
- the lanes hand every verdict back (`_settle`), or a batch they could not send (`Books.abandon`),
  or a failure of their own (`_lane_failed`), which stops the run;
- the first request goes out alone (slow start): reading waits for its verdict, so a wrong key
  or a dead server costs one request's worth of records, not the whole read-ahead;
- a stop (`request_stop`: a signal, a fatal answer, a failed output) sets `Control.stopping`,
  which the feed reads once a record, and stops the lanes;
- before the first batch is dispatched (or once the look-ahead's sample is full, or the input
  ended) the look-ahead's warnings are said (`_close_lookahead`): with --strict they stop the
  run there, exit 2, before any request.

Nothing process-global happens here (no signal handlers, no GC tuning, no exit): the CLI
installs those around a run, so a program, a notebook or a worker thread can run one too.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from revbridge_cli.config.credentials import Secret
from revbridge_cli.config.settings import SendSettings
from revbridge_cli.delivery.lanes import Handoff, Lanes, open_lanes
from revbridge_cli.delivery.sender import Attempt, Outcome
from revbridge_cli.errors import (
    Exit,
    InternalError,
    OutputError,
    RevbridgeError,
    UnreachableError,
    UsageError,
    exit_for_signal,
)
from revbridge_cli.feed import Control, Feed, ReadProgress
from revbridge_cli.input import reader
from revbridge_cli.input.iterable import SOURCE_NAME
from revbridge_cli.input.paths import check_resumable
from revbridge_cli.input.streams import ReadGate
from revbridge_cli.pack.batch import Batch
from revbridge_cli.pack.packer import PIECE_COST, Packer
from revbridge_cli.report.books import Books
from revbridge_cli.report.ledger import Ledger, RejectedSink
from revbridge_cli.report.lookahead import Lookahead
from revbridge_cli.report.reporter import NullReporter, Reporter
from revbridge_cli.report.summary import Summary
from revbridge_cli.state import runlog
from revbridge_cli.state.journal import Journal
from revbridge_cli.state.resume import Durable
from revbridge_cli.state.settlement import RECORD_COST


class Run:
    """One send (or validate) run over its inputs."""

    def __init__(
        self,
        settings: SendSettings,
        reporter: Reporter | None = None,
        *,
        records: Iterable[Any] | None = None,
        rejected_sink: RejectedSink | None = None,
    ) -> None:
        """`records`: read these instead of `settings.inputs` (the Python API's
        `send_records`); `rejected_sink`: where set-aside rows go instead of a file."""
        self.settings = settings
        self.reporter = reporter or NullReporter()
        self.summary = Summary(sent=settings.send, dry_run=settings.dry_run)
        self.ledger = Ledger(self.summary, settings.rejected, rejected_sink)
        self._records = records
        self.files: list[str] = []
        self.durable: Durable | None = None
        self.gate = ReadGate()  # for a stop that must cut a read of a quiet pipe short
        self.control = Control()  # why reading stops, and the slow start: shared with the feed
        self.progress = ReadProgress(self.reporter, self.summary)
        self.packer = self._packer()
        self.books = self._books()
        self._lanes: Lanes | None = None
        self._error: RevbridgeError | None = None  # what stopped the run, by family
        self._signal: int | None = None
        self._verdicts = 0
        self._run_row: int | None = None  # this run's row in the state's `runs` table
        # what the first records predict, said before the first request (a send or dry run)
        self.lookahead = Lookahead(settings.shape.mapping) if settings.send else None

    # ---- entry points -------------------------------------------------------------------

    def prepare(self) -> None:
        """Everything that can fail before a single request: exit 2 comes from here."""
        if self._records is not None:
            if self.settings.state:
                raise UsageError("--state needs files: records from a program cannot be resumed")
            self.files = self.ledger.files = [SOURCE_NAME]
            self.progress.total = None
            return
        self.files = reader.expand_inputs(self.settings.inputs)
        self.ledger.files = [reader.display_name(p) for p in self.files]  # `-`: <stdin>
        for path in self.files:
            reader.check_input(path)
            if not self.settings.state and reader.is_empty(path):  # with --state: not written yet
                raise reader.InputError(path, "empty file: no records to read")
        sizes = [None if p == "-" else os.path.getsize(p) for p in self.files]
        self.progress.total = None if None in sizes else sum(s for s in sizes if s is not None)
        if self.settings.state and self.settings.send and not self.settings.dry_run:
            check_resumable(self.files)  # stdin, FIFOs, <(...): refused without reading
            journal = Journal.open(self.settings.state)  # LockedError: another run holds it
            self.durable = Durable(
                journal,
                self.files,
                self.settings.restart_changed,
                self.settings.grace_seconds,
                self.settings.fmt,
            )
            self._run_row = runlog.begin(journal.db)
            self.packer = self._packer()  # held records cost more: the journal tracks them
            self.books = self._books()  # with the journal now

    def use_server(self, base_url: str, api_key: Secret, customer_id: str) -> None:
        """Send to this server instead (`send --sandbox` starts one after `prepare`)."""
        self.settings = replace(
            self.settings, base_url=base_url, api_key=api_key, customer_id=customer_id
        )

    async def execute(self) -> Summary:
        """Run to the end or to a stop; the summary says which, with the exit code."""
        started = time.monotonic()
        feed = self._feed()
        try:
            if self.settings.send and not self.settings.dry_run:
                await self._send_all(feed)
            else:
                await self._read(feed)
        except OutputError as exc:
            self._fail(exc)
        finally:
            self._close_books(started, feed)
        return self.summary

    def request_stop(self, why: str, error: RevbridgeError | None = None) -> None:
        """Stop reading, send nothing new, let requests in flight finish within the grace
        period. The first reason wins; `error` says which family stopped the run."""
        if self._error is None and error is not None:
            self._error = error
            self.summary.fatal = self.summary.fatal or str(error)
        if self.control.stopping is None:
            self.control.stopping = why
            if self._lanes is not None:
                self._lanes.stop(why)

    def interrupt(self, signum: int, name: str) -> None:
        """A signal asked the run to stop (the CLI's handler calls this on the loop)."""
        if self._signal is not None:
            return
        self._signal = signum
        self.summary.interrupted = (
            f"{name}: stopped reading; run the same command again to send the rest"
            if self.durable
            else f"{name}: stopped reading; see the rejected file for what was not sent"
        )
        self.reporter.notice(f"{name}: finishing requests in flight (press again to quit now)")
        self.request_stop(name)

    # ---- reading, then the send side ----------------------------------------------------

    async def _read(self, feed: Feed) -> None:
        """Read every input, then dispatch what the packer still holds (merged into one
        request if the first has not gone yet: a short input is one request)."""
        refused = await feed.read_all()
        self._close_lookahead()  # an input shorter than the sample: read whole
        if refused is not None:
            self._error, self.summary.fatal = refused, str(refused)
        await feed.finish_updates()  # left-over profile updates: before the last batches
        for batch in self.packer.flush(merge=self.control.probing):
            await self._dispatch(batch)

    async def _send_all(self, feed: Feed) -> None:
        async with open_lanes(
            self.settings,
            on_attempt=self._on_attempt,
            before_send=self.books.before_send,
            settle=self._settle,
            abandon=self.books.abandon,
            on_failure=self._lane_failed,
        ) as self._lanes:
            if self.control.stopping is not None:  # a signal before the lanes existed
                self._lanes.stop(self.control.stopping)
            await self._read(feed)
        sender = self._lanes.sender
        self.summary.concurrency_lowest = sender.limit.lowest
        if self.packer.grown:
            self.summary.grouping_buffer_mb = round(self.packer.peak_held / 1e6, 1)
        if sender.fatal is not None:
            self._error = self._error or sender.fatal.error()
            self.summary.fatal = sender.fatal.message

    async def _dispatch(self, batch: Batch) -> None:
        """A closed batch to its lane. After a wait the packer may hold more (only once the
        first request was answered: slow start); the first batch waits for its verdict."""
        self._close_lookahead()
        self.summary.batches += 1
        if self._lanes is None:
            self.ledger.would_send(batch)
            self.control.probing = False
            return
        handoff = await self._lanes.put(batch)
        if self.control.probing and handoff is not Handoff.STOPPED:
            self.control.probing = False
            await self._lanes.first_verdict()
        elif handoff is Handoff.WAITED:
            self.packer.grow()

    def _close_lookahead(self) -> None:
        """Say what the sample shows, once, before the first request; with --strict, stop:
        nothing has been sent, and what was read is abandoned to the books as any stop's."""
        look = self.lookahead
        if look is None or not look.open:
            return
        look.open = False
        found = look.warnings(self.settings.shape.near_miss)
        self.summary.warnings_before_send = found
        for text in found:
            self.reporter.warning(text)
        if found and self.settings.strict:
            many = f"{len(found)} warnings" if len(found) > 1 else "a warning"
            why = f"--strict: {many} before the first request; nothing was sent"
            self.request_stop(why, UsageError(why))

    def _settle(self, batch: Batch, outcomes: list[Outcome]) -> None:
        """A batch's verdict: first whether it stops the run (the first request never
        answered, a fatal answer), then to the books."""
        self._verdicts += 1
        if self._verdicts == 1 and self._unreachable(outcomes):
            why = f"the server could not be reached: {outcomes[0].undelivered}"
            self.request_stop(why, UnreachableError(why))
        fatal = self._lanes.sender.fatal if self._lanes else None
        if fatal is not None:
            self.request_stop(fatal.message, fatal.error())
        self.books.settle(batch, outcomes, self.control.stopping)

    @staticmethod
    def _unreachable(outcomes: list[Outcome]) -> bool:
        """The first request used up its retries and the server never answered (refused
        connections, timeouts): nothing else would pass. A 503 is an answer: reading goes on."""
        return len(outcomes) == 1 and outcomes[0].unanswered

    def _lane_failed(self, exc: BaseException) -> None:
        if isinstance(exc, RevbridgeError):
            self._fail(exc)
        else:
            self._fail(InternalError(f"internal error in a lane: {type(exc).__name__}: {exc}"))

    def _fail(self, exc: RevbridgeError) -> None:
        self.request_stop(str(exc), exc)

    def _on_attempt(self, attempt: Attempt) -> None:
        self.books.attempted(attempt)
        self.reporter.attempt(attempt)

    # ---- the parts ----------------------------------------------------------------------

    def _books(self) -> Books:
        return Books(
            self.summary,
            self.ledger,
            self.durable,
            fail=self._fail,
            progress=self.progress.report,
        )

    def _packer(self) -> Packer:
        s = self.settings
        return Packer(
            lanes=max(1, s.concurrency),
            max_users=s.max_users,
            max_bytes=s.max_bytes,
            buffer_bytes=s.buffer_mb * 1_000_000,
            # with --state every held record is also tracked until settled: count that too
            piece_cost=PIECE_COST + (RECORD_COST if self.durable else 0),
        )

    def _feed(self) -> Feed:
        """The read side, from the parts `prepare` settled on (the packer and the books are
        made again there once --state has a journal); every edge to the run is named here."""
        return Feed(
            self.settings,
            self.files,
            self._records,
            gate=self.gate,
            packer=self.packer,
            books=self.books,
            durable=self.durable,
            summary=self.summary,
            dispatch=self._dispatch,
            control=self.control,
            progress=self.progress,
            notice=self.reporter.notice,
            lookahead=self.lookahead,
            close_lookahead=self._close_lookahead,
        )

    # ---- the end ------------------------------------------------------------------------

    def _close_books(self, started: float, feed: Feed) -> None:
        """Flush and close the outputs, then settle the exit code: even after a failure."""
        self.books.close()
        self.summary.elapsed_seconds = time.monotonic() - started
        self.summary.users_distinct = feed.users.count
        self.summary.users_distinct_estimated = feed.users.estimated
        self.summary.exit_code = int(self._exit_code())
        if self._run_row is not None and self.settings.state:
            try:  # only what `state show` reports: the run's outcome stands either way
                counts = {name: getattr(self.summary, name) for name in runlog.COUNTS}
                runlog.end(self.settings.state, self._run_row, self.summary.exit_code, counts)
            except (OSError, sqlite3.Error) as exc:
                self.summary.notices.append(f"the run's end could not be noted in the state: {exc}")

    def _exit_code(self) -> Exit:
        """A family that stopped the run wins over the signal that may have come with it."""
        if self._error is not None:
            return self._error.exit_code
        if self._signal is not None:
            return exit_for_signal(self._signal)
        return Exit.OK if self.summary.complete else Exit.INCOMPLETE
