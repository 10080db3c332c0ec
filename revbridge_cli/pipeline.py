"""The run: read -> shape -> pack -> deliver -> report, wired together.

The stages themselves are pure (records, pack) or edges of their own (reader, deliver,
rejected); this module owns the order of things and the bookkeeping that ties an input record
to its fate, so that every record read ends accepted, in the rejected file, or (with --state)
still pending in the journal for the next run. Nothing is dropped on the floor.

Reading is here, with the loop that runs once per record; the lanes that take the packed
batches to the server, and how a send stops, are `send_side.SendSide`, a part of `Run`.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable

from revbridge_cli import reader
from revbridge_cli.batch import Batch
from revbridge_cli.deliver import Sender
from revbridge_cli.errors import Exit, UsageError, exit_for_signal
from revbridge_cli.journal import Journal
from revbridge_cli.ledger import Ledger
from revbridge_cli.pack import PIECE_COST, Packed, Packer
from revbridge_cli.process import throughput_gc
from revbridge_cli.records import Invalid, Origin, UserPart, fast_flat_event, shape
from revbridge_cli.reporter import NullReporter, Reporter
from revbridge_cli.resume import Durable, FilePlan
from revbridge_cli.send_side import SendSide
from revbridge_cli.settings import SendSettings
from revbridge_cli.summary import Summary
from revbridge_cli.tracker import RECORD_COST, Tracker

_YIELD_EVERY = 256  # records between two chances for the sender to run


class Run(SendSide):
    """One send (or validate) run over its inputs."""

    def __init__(self, settings: SendSettings, reporter: Reporter | None = None) -> None:
        self.settings = settings
        self.reporter = reporter or NullReporter()
        self.summary = Summary(sent=settings.send, dry_run=settings.dry_run)
        self.ledger = Ledger(self.summary, settings.rejected)
        self.files: list[str] = []
        self.stopping: str | None = None  # why reading stopped early (signal, fatal answer)
        self.sender: Sender | None = None
        self._bytes_done = 0  # bytes of the files read to the end
        self._bytes_in_file = 0  # of the file being read
        self._current_size = 0
        self._total_bytes: int | None = 0
        self.durable: Durable | None = None
        self.interrupt_signal = 2
        self._stopped = asyncio.Event()  # set with `stopping`, for waits that must end early

    # ---- entry points -------------------------------------------------------------------

    def prepare(self) -> None:
        """Everything that can fail before a single request: exit 2 comes from here."""
        self.files = self.ledger.files = reader.expand_inputs(self.settings.inputs)
        for path in self.files:
            reader.check_input(path)
            if not self.settings.state and reader.is_empty(path):  # with --state: not written yet
                raise reader.InputError(path, "empty file: no records to read")
        sizes = [None if p == "-" else os.path.getsize(p) for p in self.files]
        self._total_bytes = None if None in sizes else sum(s for s in sizes if s is not None)
        if self.settings.state and self.settings.send and not self.settings.dry_run:
            if "-" in self.files:
                raise UsageError("--state needs files: standard input cannot be resumed")
            journal = Journal.open(self.settings.state)  # LockedError: another run holds it
            self.durable = Durable(journal, self.files, self.settings.restart_changed)

    async def execute(self) -> Summary:
        started = time.monotonic()
        with throughput_gc():
            return await self._execute(started)

    async def _execute(self, started: float) -> Summary:
        try:
            if self.settings.send and not self.settings.dry_run:
                await self._send_all()
            else:
                await self._produce(self.ledger.would_send)
                for batch in self.packer.flush():
                    self.ledger.would_send(batch)
        finally:
            self.ledger.rejected.flush()  # before the journal says those records are done
            if self.durable is not None:
                self.summary.records_skipped = self.durable.skipped_records
                self.durable.close()
            self.ledger.close()
            self.summary.elapsed_seconds = time.monotonic() - started
        return self.summary

    def request_stop(self, why: str) -> None:
        if self.stopping is None:
            self.stopping = why
            self._stopped.set()
            if self.sender is not None:
                self.sender.halt(why)

    def exit_code(self) -> Exit:
        """The run's outcome as the CLI's exit code (the table is `errors.Exit`)."""
        if self.sender is not None and self.sender.fatal is not None:
            return Exit(self.sender.fatal.exit_code)
        if self.summary.interrupted:
            return exit_for_signal(self.interrupt_signal)
        return Exit.OK if self.summary.complete else Exit.INCOMPLETE

    # ---- reading ------------------------------------------------------------------------

    async def _produce(self, dispatch: Callable[[Batch], object]) -> None:
        s = self.settings
        self.packer = Packer(
            lanes=max(1, s.concurrency),
            max_users=s.max_users,
            max_bytes=s.max_bytes,
            buffer_bytes=s.buffer_mb * 1_000_000,
            # with --state every held record is also tracked until settled: count that too
            piece_cost=PIECE_COST + (RECORD_COST if self.durable else 0),
        )
        for file_no in range(len(self.files)):
            plan = self.durable.plan(file_no) if self.durable else FilePlan()
            if plan.error:
                self.summary.input_errors.append(plan.error)
                continue
            if plan.skip:
                self.reporter.notice(plan.skip)
                continue
            try:
                await self._read_file(file_no, plan, dispatch)
            except reader.InputError as exc:
                self.summary.input_errors.append(str(exc))
            self._bytes_done += self._current_size
            self._bytes_in_file = 0
            self._report_progress()
            if self.stopping:
                return

    async def _read_file(
        self, file_no: int, plan: FilePlan, dispatch: Callable[[Batch], object]
    ) -> None:
        """Read one file to the packer. The loop is the hottest code of the tool: a valid flat
        event takes the fast lane (`fast_flat_event`, a packer `add` that allocates nothing);
        anything else goes through `_shape_and_pack`, which handles every case."""
        s, summary, durable = self.settings, self.summary, self.durable
        tracker = durable.tracker if durable else None
        settled = plan.settled or None
        in_doubt = plan.in_doubt or None
        fast = None if s.shape.epoch_timestamps or s.shape.require_timestamp else fast_flat_event
        add = self.packer.add
        records = reader.Reader(
            self.files[file_no],
            s.fmt,
            start_offset=plan.start_offset,
            start_line=plan.start_line,
            hold_partial_last_line=durable is not None,
        )
        self._current_size = records.total_bytes or 0
        read = untimed = 0
        try:
            for record in records:
                origin = (file_no, record.line, record.end_offset)
                if settled is not None and record.line in settled:
                    durable.skip(origin)  # type: ignore[union-attr]
                    continue
                read += 1
                value = record.value
                part = fast(value, origin) if fast and type(value) is dict else None
                if part is not None and in_doubt is None:
                    untimed += part.untimed
                    packed = add(part)
                    if packed is None:
                        if tracker is not None:
                            tracker.read(origin, 1)  # in one open batch
                    else:
                        await self._packed(packed, origin, tracker, dispatch)
                else:
                    await self._shape_and_pack(record, origin, part, in_doubt, dispatch)
                if not read & (_YIELD_EVERY - 1):
                    summary.records_read += read
                    summary.events_without_timestamp += untimed
                    read = untimed = 0
                    self._bytes_in_file = records.bytes_read
                    self._report_progress()
                    await asyncio.sleep(0)
                if self.stopping:
                    summary.notices.append(self._stopped_after(file_no, record.line))
                    return
        finally:
            summary.records_read += read
            summary.events_without_timestamp += untimed
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
        in_doubt: set[int] | None,
        dispatch: Callable[[Batch], object],
    ) -> None:
        """Every record the fast lane did not take: errors, other shapes, options, --state."""
        tracker = self.durable.tracker if self.durable else None
        if tracker:
            tracker.read(origin, 1)  # held while its parts are packed
        if record.error is not None:
            where = f"{self._name(origin[0])}:{record.line}"
            self.ledger.set_aside(Invalid(f"{where}: {record.error}", raw=record.raw), origin)
        else:
            items = [part] if part is not None else shape(record.value, origin, self.settings.shape)
            for item in items:
                if isinstance(item, Invalid):
                    self.ledger.set_aside(item, origin)
                    continue
                self.summary.events_without_timestamp += item.untimed
                if in_doubt is not None and record.line in in_doubt:
                    self.summary.possible_duplicate_events += len(item.events)
                packed = self.packer.add(item)
                if packed is None:
                    if tracker:
                        tracker.add_refs(origin, 1)
                else:
                    await self._packed(packed, origin, None, dispatch)
                    if tracker:
                        tracker.add_refs(origin, packed.placed)
        if tracker:
            tracker.release(origin)

    async def _packed(
        self,
        packed: Packed,
        origin: Origin,
        tracker: Tracker | None,
        dispatch: Callable[[Batch], object],
    ) -> None:
        """What a packer call closed: set-asides to the file, batches to their lanes. With a
        tracker, the record is registered before its batches can finish."""
        for invalid, too_big_origin in packed.too_big:
            self.ledger.set_aside(invalid, too_big_origin)
        if tracker is not None:
            tracker.read(origin, packed.placed)
        for batch in packed.batches:
            await self._await(dispatch(batch))

    def _stopped_after(self, file_no: int, line: int) -> str:
        where = f"{self._name(file_no)}:{line}"
        if self.durable:
            return (
                f"reading stopped after {where}; run the same command again to continue "
                "(the state file knows what was done)"
            )
        return (
            f"reading stopped after {where}: every record up to it was accepted or is in "
            "the rejected file; nothing after it was read"
        )

    @staticmethod
    async def _await(result: object) -> None:
        if asyncio.iscoroutine(result):
            await result

    def _name(self, file_no: int) -> str:
        return self.files[file_no]

    def _report_progress(self) -> None:
        done = self._bytes_done + self._bytes_in_file
        self.reporter.progress(self.summary, done, self._total_bytes)
