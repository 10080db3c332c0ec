"""The run: read -> shape -> pack -> deliver -> report, composed from its parts.

The stages themselves are pure (records, pack) or edges of their own (reader, the sender and
its lanes, the rejected file); this module owns the order of things and the bookkeeping that
ties an input record to its fate, so that every record read ends accepted, in the rejected
file, or (with --state) still pending in the journal for the next run. Nothing is dropped.

How the parts talk, all of it visible here:
- reading hands each closed batch to the lanes (`Lanes.put`); when a lane had no room the
  run tells the packer to hold more (`Packer.grow`): requests are the bottleneck;
- the lanes hand every verdict back (`_settle`), or a batch they could not send (`_abandon`),
  or a failure of their own (`_lane_failed`), which stops the run;
- the first request goes out alone (slow start): reading waits for its verdict, so a wrong key
  or a dead server costs one request's worth of records, not the whole read-ahead.

Nothing process-global happens here (no signal handlers, no GC tuning, no exit): the CLI
installs those around a run, so a program, a notebook or a worker thread can run one too.
"""

from __future__ import annotations

import asyncio
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
    RefusedInput,
    RevbridgeError,
    UnreachableError,
    UsageError,
    exit_for_signal,
)
from revbridge_cli.input import reader
from revbridge_cli.input.iterable import SOURCE_NAME, IterableSource
from revbridge_cli.input.paths import check_resumable
from revbridge_cli.input.streams import ReadGate, ReadInterrupted
from revbridge_cli.pack.batch import Batch
from revbridge_cli.pack.packer import PIECE_COST, Packed, Packer
from revbridge_cli.report import notices
from revbridge_cli.report.books import Books
from revbridge_cli.report.distinct import DistinctUsers
from revbridge_cli.report.file_counts import FileCounts
from revbridge_cli.report.ledger import Ledger, RejectedSink
from revbridge_cli.report.reporter import NullReporter, Reporter
from revbridge_cli.report.summary import Summary
from revbridge_cli.shape.event_ids import stamp
from revbridge_cli.shape.parts import Invalid, Origin, UserPart, fast_flat_event, shape
from revbridge_cli.state import runlog
from revbridge_cli.state.journal import Journal
from revbridge_cli.state.resume import Durable, FilePlan
from revbridge_cli.state.settlement import RECORD_COST, Tracker

_YIELD_EVERY = 256  # records between two chances for the sender to run


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
        self.stopping: str | None = None  # why reading stopped early; read once per record
        self.packer = self._packer()
        self.books = self._books()
        self._lanes: Lanes | None = None
        self._error: RevbridgeError | None = None  # what stopped the run, by family
        self._signal: int | None = None
        self._verdicts = 0
        # The first request goes alone (a dry run packs the same way: its counts are a send's)
        self._probing = True
        self._bytes_done = 0  # bytes of the files read to the end
        self._bytes_in_file = 0  # of the file being read
        self._current_size = 0
        self._total_bytes: int | None = 0
        self._run_row: int | None = None  # this run's row in the state's `runs` table
        self._limit_left = settings.limit  # --limit: records this run may still read
        self.users = DistinctUsers()  # distinct users among the parts packed (distinct.py)

    # ---- entry points -------------------------------------------------------------------

    def prepare(self) -> None:
        """Everything that can fail before a single request: exit 2 comes from here."""
        if self._records is not None:
            if self.settings.state:
                raise UsageError("--state needs files: records from a program cannot be resumed")
            self.files = self.ledger.files = [SOURCE_NAME]
            self._total_bytes = None
            return
        self.files = self.ledger.files = reader.expand_inputs(self.settings.inputs)
        for path in self.files:
            reader.check_input(path)
            if not self.settings.state and reader.is_empty(path):  # with --state: not written yet
                raise reader.InputError(path, "empty file: no records to read")
        sizes = [None if p == "-" else os.path.getsize(p) for p in self.files]
        self._total_bytes = None if None in sizes else sum(s for s in sizes if s is not None)
        if self.settings.state and self.settings.send and not self.settings.dry_run:
            check_resumable(self.files)  # stdin, FIFOs, <(...): refused without reading
            journal = Journal.open(self.settings.state)  # LockedError: another run holds it
            self.durable = Durable(
                journal, self.files, self.settings.restart_changed, self.settings.grace_seconds
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
        try:
            if self.settings.send and not self.settings.dry_run:
                await self._send_all()
            else:
                await self._read_all()
                for batch in self.packer.flush(merge=self._probing):
                    await self._dispatch(batch)
        except OutputError as exc:
            self._fail(exc)
        finally:
            self._close_books(started)
        return self.summary

    def request_stop(self, why: str, error: RevbridgeError | None = None) -> None:
        """Stop reading, send nothing new, let requests in flight finish within the grace
        period. The first reason wins; `error` says which family stopped the run."""
        if self._error is None and error is not None:
            self._error = error
            self.summary.fatal = self.summary.fatal or str(error)
        if self.stopping is None:
            self.stopping = why
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

    # ---- the send side ------------------------------------------------------------------

    async def _send_all(self) -> None:
        async with open_lanes(
            self.settings,
            on_attempt=self._on_attempt,
            before_send=self.books.before_send,
            settle=self._settle,
            abandon=self.books.abandon,
            on_failure=self._lane_failed,
        ) as self._lanes:
            if self.stopping is not None:  # a signal before the lanes existed
                self._lanes.stop(self.stopping)
            await self._read_all()
            for batch in self.packer.flush(merge=self._probing):
                await self._dispatch(batch)
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
        self.summary.batches += 1
        if self._lanes is None:
            self.ledger.would_send(batch)
            self._probing = False
            return
        handoff = await self._lanes.put(batch)
        if self._probing and handoff is not Handoff.STOPPED:
            self._probing = False
            await self._lanes.first_verdict()
        elif handoff is Handoff.WAITED:
            self.packer.grow()

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
        self.books.settle(batch, outcomes, self.stopping)

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

    # ---- reading ------------------------------------------------------------------------

    def _books(self) -> Books:
        return Books(
            self.summary,
            self.ledger,
            self.durable,
            fail=self._fail,
            progress=self._report_progress,
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

    async def _read_all(self) -> None:
        for file_no in range(len(self.files)):
            if self.stopping or self._limit_left == 0:
                return
            plan = self.durable.plan(file_no) if self.durable else FilePlan()
            counts = FileCounts(self.summary, self.durable, self._name(file_no))
            if plan.error:
                self.summary.input_errors.append(plan.error)
                counts.done(error=plan.error)
                continue
            if plan.skip:
                self.reporter.notice(plan.skip)
                counts.done(notice=plan.skip)
                continue
            try:
                await self._read_file(file_no, plan)
            except RefusedInput as exc:  # stdin's first bytes: reading ends, what was read is sent
                counts.done(error=str(exc))
                self._error, self.summary.fatal = exc, str(exc)
                return
            except reader.InputError as exc:
                self.summary.input_errors.append(str(exc))
                counts.done(error=str(exc))
            else:
                counts.done()
            self._bytes_done += self._current_size
            self._bytes_in_file = 0
            self._report_progress()

    async def _read_file(self, file_no: int, plan: FilePlan) -> None:
        """Read one file to the packer. The loop is the hottest code of the tool: a valid flat
        event takes the fast lane (`fast_flat_event`, a packer `add` that allocates nothing);
        anything else goes through `_shape_and_pack`, which handles every case."""
        s, summary, durable = self.settings, self.summary, self.durable
        tracker = durable.tracker if durable else None
        settled = plan.settled or None
        in_doubt = plan.in_doubt or None
        general = s.shape.general_only or s.event_id_property or s.window
        fast = None if general else fast_flat_event
        limit = self._limit_left
        add = self.packer.add
        seen = self.users.seen.add
        records: reader.Reader | IterableSource
        if self._records is not None:
            records = IterableSource(self._records)
        else:
            records = reader.Reader(
                self.files[file_no],
                s.fmt,
                start_offset=plan.start_offset,
                start_line=plan.start_line,
                hold_partial_last_line=durable is not None,
                gate=self.gate,
            )
        self._current_size = records.total_bytes or 0
        name, kept = self._name(file_no), durable is not None  # for the notices of a stop
        read = untimed = events = 0
        line = plan.start_line
        try:
            for record in records:
                line = record.line
                origin = (file_no, line, record.end_offset)
                if settled is not None and line in settled:
                    durable.skip(origin)  # type: ignore[union-attr]
                    continue
                read += 1
                value = record.value
                part = fast(value, origin) if fast and type(value) is dict else None
                if part is not None and in_doubt is None:
                    untimed += part.untimed
                    events += 1
                    seen(hash(part.key))
                    packed = add(part)
                    if packed is None:
                        if tracker is not None:
                            tracker.read(origin, 1)  # in one open batch
                        if self._probing and self.packer.holds_a_request():
                            await self._packed(self.packer.close_first(), None, None)
                    else:
                        await self._packed(packed, origin, tracker)
                else:
                    await self._shape_and_pack(record, origin, part, in_doubt)
                if not read & (_YIELD_EVERY - 1):
                    summary.records_read += read
                    summary.events_without_timestamp += untimed
                    summary.events_read += events
                    read = untimed = events = 0
                    self._bytes_in_file = records.bytes_read
                    self.users.check()
                    self._report_progress()
                    await asyncio.sleep(0)
                if self.stopping:
                    summary.notices.append(notices.stopped_after(f"{name}:{line}", kept))
                    return
                if limit is not None:
                    limit -= 1
                    if not limit:  # not the file's end: the journal must not note one
                        self._limit_left = 0
                        reached = notices.limit_reached(s.limit or 0, f"{name}:{line}", kept)
                        summary.notices.append(reached)
                        return
        except ReadInterrupted:  # a stop cut a wait on the input short (a quiet pipe)
            summary.notices.append(notices.stopped_after(f"{name}:{line}", kept))
            return
        finally:
            summary.records_read += read
            summary.events_without_timestamp += untimed
            summary.events_read += events
        self._limit_left = limit
        if durable:
            durable.file_read(file_no, records.lines, records.end_offset)
        held = records.held_back_bytes
        if held:
            summary.notices.append(
                f"{self._name(file_no)}: the last line has no newline yet ({held:,} bytes); "
                "it is left for the next run"
            )

    async def _shape_and_pack(
        self,
        record: reader.RawRecord,
        origin: Origin,
        part: UserPart | None,
        in_doubt: dict[int, int] | None,
    ) -> None:
        """Every record the fast lane did not take: errors, other shapes, options, --state.

        With --state the record holds one reference of its own while its parts are packed,
        and each part's references are counted before its batches are dispatched, so that
        no batch's verdict can settle the record while a piece of it is still unpacked."""
        tracker = self.durable.tracker if self.durable else None
        if tracker:
            tracker.read(origin, 1)  # held while its parts are packed
        if type(record.value) is dict and "userIndex" in record.value:  # a row sent back
            self.ledger.note_lineage(origin, record.value)
        if record.error is not None:
            where = f"{self._name(origin[0])}:{record.line}"
            self.books.set_aside(Invalid(f"{where}: {record.error}", raw=record.raw), origin)
        else:
            items = [part] if part is not None else shape(record.value, origin, self.settings.shape)
            window, outside = self.settings.window, 0
            for item in items:
                if isinstance(item, Invalid):
                    self.books.set_aside(item, origin)
                    continue
                if window is not None:
                    kept, left_out, untimed = window.select(item)
                    self.summary.events_read += left_out
                    self.summary.events_outside_window += left_out
                    self.summary.untimed_outside_window += untimed
                    outside += kept is None
                    if kept is None:
                        continue
                    item = kept
                if self.settings.event_id_property:
                    item = stamp(item, self.settings.event_id_property)
                self.summary.events_without_timestamp += item.untimed
                self.summary.events_read += len(item.events)
                self.users.seen.add(hash(item.key))
                if in_doubt is not None and record.line in in_doubt:  # counted once settled
                    self.durable.resending(origin, len(item.events))  # type: ignore[union-attr]
                packed = self.packer.add(item)
                if packed is None:
                    if tracker:
                        tracker.add_refs(origin, 1)
                    if self._probing and self.packer.holds_a_request():
                        await self._packed(self.packer.close_first(), None, None)
                else:
                    if tracker:
                        tracker.add_refs(origin, packed.placed)
                    await self._packed(packed, origin, None)
            if outside and outside == len(items):
                self.summary.records_outside_window += 1
        if tracker:
            tracker.release(origin)

    async def _packed(self, packed: Packed, origin: Origin | None, tracker: Tracker | None) -> None:
        """What a packer call closed: set-asides to the file, batches to their lanes. With a
        tracker, the record is registered before its batches can finish."""
        for invalid, too_big_origin in packed.too_big:
            self.summary.events_too_big += 1
            self.books.set_aside(invalid, too_big_origin)
        if tracker is not None and origin is not None:
            tracker.read(origin, packed.placed)
        for batch in packed.batches:
            await self._dispatch(batch)

    # ---- the end ------------------------------------------------------------------------

    def _close_books(self, started: float) -> None:
        """Flush and close the outputs, then settle the exit code: even after a failure."""
        self.books.close()
        self.summary.elapsed_seconds = time.monotonic() - started
        self.summary.users_distinct = self.users.count
        self.summary.users_distinct_estimated = self.users.estimated
        self.summary.exit_code = int(self._exit_code())
        if self._run_row is not None and self.settings.state:
            try:  # only what `state show` reports: the run's outcome stands either way
                runlog.end(self.settings.state, self._run_row, self.summary)
            except (OSError, sqlite3.Error) as exc:
                self.summary.notices.append(f"the run's end could not be noted in the state: {exc}")

    def _exit_code(self) -> Exit:
        """A family that stopped the run wins over the signal that may have come with it."""
        if self._error is not None:
            return self._error.exit_code
        if self._signal is not None:
            return exit_for_signal(self._signal)
        return Exit.OK if self.summary.complete else Exit.INCOMPLETE

    def _name(self, file_no: int) -> str:
        return reader.display_name(self.files[file_no])

    def _report_progress(self) -> None:
        done = self._bytes_done + self._bytes_in_file
        self.reporter.progress(self.summary, done, self._total_bytes)
