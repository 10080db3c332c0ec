"""The run's read side: every input's records, shaped and packed, each closed batch to the run.

It owns what reading is: the inputs in order (with --state, where each resumes or whether it
is skipped), `--limit`, the per-record work (the fast lane for valid flat events, `shape` for
everything else, --since/--until, --event-id-property), the read counters of the summary, the
distinct users, and the bytes read for progress. It sends nothing and decides no stop.

How it talks to the run, every edge passed in when the run starts reading (`Run._feed`):
- `dispatch(batch)`: the run's coroutine for a closed batch (to its lane, or a dry run's count);
- `control`: the only state the two share: the run sets `stopping` (reading ends at the next
  record) and clears `probing` once the first request is out (slow start: until then the
  first request is closed as soon as the packer holds one); the feed reads both;
- the parts it writes to: the packer, the books (set-asides, and a row's lineage in their
  ledger), `Durable` with --state (skipped, held and fully read records), the summary;
- `progress`: the bytes read, which the books also report after each verdict;
- `notice`: the reporter's, for an input the journal says is already done;
- `lookahead`, `close_lookahead`: while the look-ahead is open (report/lookahead.py) every
  record is noted there, on either path; a full sample calls `close_lookahead`,
  the run's, which says the warnings before any request (the run also calls it before its
  first dispatch, whichever comes first).
What ends reading as the run's failure (a refused stdin) is `read_all`'s return value, so the
run alone sets its outcome.

Why a module of its own: it crosses the stages (input, shape, pack, state) as the run does,
so it sits beside `run.py`, not in one stage's package; and `_read_file` is the hottest code
of the tool, easier to keep fast where it is the only thing in view.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from revbridge_cli.config.settings import SendSettings
from revbridge_cli.errors import RefusedInput
from revbridge_cli.input import reader
from revbridge_cli.input.iterable import IterableSource
from revbridge_cli.input.streams import ReadGate, ReadInterrupted
from revbridge_cli.pack.batch import Batch
from revbridge_cli.pack.carry import Carrier
from revbridge_cli.pack.packer import Packed, Packer
from revbridge_cli.report import notices
from revbridge_cli.report.books import Books
from revbridge_cli.report.distinct import DistinctUsers
from revbridge_cli.report.file_counts import FileCounts
from revbridge_cli.report.lookahead import Lookahead
from revbridge_cli.report.reporter import Reporter
from revbridge_cli.report.summary import Summary
from revbridge_cli.shape.event_ids import stamp
from revbridge_cli.shape.parts import (
    Invalid,
    Origin,
    ProfileUpdate,
    UserPart,
    fast_flat_event,
    shape,
    user_key,
)
from revbridge_cli.state.resume import Durable, FilePlan
from revbridge_cli.state.settlement import Tracker

_YIELD_EVERY = 256  # records between two chances for the sender to run


class Control:
    """What the run and its feed both look at while reading, and nothing else.

    `stopping` is why reading must end (the run's `request_stop` sets it; the feed reads it
    once a record). `probing` is the slow start: the first request goes out alone, so the
    feed closes it as soon as the packer holds one, and the run's dispatch clears it when
    that request is out (a dry run packs the same way, so its counts are a send's)."""

    __slots__ = ("probing", "stopping")

    def __init__(self) -> None:
        self.stopping: str | None = None
        self.probing = True


class ReadProgress:
    """Bytes of the inputs read so far, for the reporter: the feed moves it on as it reads,
    the books report it after each verdict (so the display moves while reading waits)."""

    __slots__ = ("_reporter", "_summary", "done", "in_file", "total")

    def __init__(self, reporter: Reporter, summary: Summary) -> None:
        self._reporter, self._summary = reporter, summary
        self.total: int | None = 0  # of every input; None when one is a pipe or a program's
        self.done = 0  # bytes of the inputs read to the end
        self.in_file = 0  # of the input being read

    def report(self) -> None:
        self._reporter.progress(self._summary, self.done + self.in_file, self.total)


class Feed:
    """Reads the run's inputs into the packer, once (`read_all`); see the module docstring."""

    def __init__(
        self,
        settings: SendSettings,
        files: list[str],
        records: Iterable[Any] | None,
        *,
        gate: ReadGate,
        packer: Packer,
        books: Books,
        durable: Durable | None,
        summary: Summary,
        dispatch: Callable[[Batch], Awaitable[None]],
        control: Control,
        progress: ReadProgress,
        notice: Callable[[str], None],
        lookahead: Lookahead | None = None,
        close_lookahead: Callable[[], None] = lambda: None,
    ) -> None:
        """`records`: the program's records (`send_records`) in place of the one file
        `files` then names; `gate`: handed to each reader, so a stop cuts a quiet pipe short."""
        self._settings = settings
        self._files = files
        self._records = records
        self._gate = gate
        self._packer = packer
        self._books = books
        self._durable = durable
        self._summary = summary
        self._dispatch = dispatch
        self._control = control
        self._progress = progress
        self._notice = notice
        self._lookahead = lookahead
        self._close_lookahead = close_lookahead
        self._limit_left = settings.limit  # --limit: records this run may still read
        self._size = 0  # of the input being read, added to the progress at its end
        self.users = DistinctUsers()  # distinct users among the parts packed (distinct.py)
        self.carrier = Carrier(packer)  # profile updates waiting for their person's events

    async def read_all(self) -> RefusedInput | None:
        """Every input in turn, to a stop or `--limit`. A refused stdin ends reading and is
        returned: what the inputs before it held is still sent; the run makes it its outcome."""
        summary, durable = self._summary, self._durable
        for file_no in range(len(self._files)):
            if self._control.stopping or self._limit_left == 0:
                return None
            counts = FileCounts(summary, durable, self._name(file_no))  # before the plan counts
            plan = durable.plan(file_no) if durable else FilePlan()
            if plan.error:
                summary.input_errors.append(plan.error)
                counts.done(error=plan.error)
                continue
            if plan.note:
                summary.notices.append(plan.note)
            if plan.info:
                self._notice(plan.info)
            if plan.skip:
                self._notice(plan.skip)
                counts.done(notice=plan.skip)
                continue
            try:
                await self._read_file(file_no, plan)
            except RefusedInput as exc:  # stdin's first bytes: reading ends, what was read is sent
                counts.done(error=str(exc))
                return exc
            except reader.InputError as exc:
                summary.input_errors.append(str(exc))
                counts.done(error=str(exc))
            else:
                counts.done()
            progress = self._progress
            progress.done += self._size
            progress.in_file = 0
            progress.report()
        return None

    async def _read_file(self, file_no: int, plan: FilePlan) -> None:
        """Read one file to the packer. The loop is the hottest code of the tool: a valid flat
        event takes the fast lane (`fast_flat_event`, a packer `add` that allocates nothing);
        anything else goes through `_shape_and_pack`, which handles every case. What the loop
        touches is bound to locals first: an attribute lookup a record is measurable here."""
        s, summary, durable = self._settings, self._summary, self._durable
        control, packer, progress = self._control, self._packer, self._progress
        tracker = durable.tracker if durable else None
        settled = plan.settled or None
        in_doubt = plan.in_doubt or None
        general = s.shape.general_only or s.event_id_property or s.window
        fast = None if general else fast_flat_event
        limit = self._limit_left
        add = packer.add if not self.carrier.active else self._carry_add
        users = self.users
        seen = users.seen.add
        look = self._lookahead
        looking = look is not None and look.open  # the sample: each record noted there
        records: reader.Reader | IterableSource
        if self._records is not None:
            records = IterableSource(self._records)
        else:
            records = reader.Reader(
                self._files[file_no],
                s.fmt,
                start_offset=plan.start_offset,
                start_line=plan.start_line,
                hold_partial_last_line=durable is not None,
                gate=self._gate,
            )
        self._size = records.total_bytes or 0
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
                    if looking:  # noted before its batch can close the sample
                        looking = look.open  # type: ignore[union-attr]
                        if looking and look.note(value, part.untimed, 1):  # type: ignore[union-attr]
                            self._close_lookahead()
                            looking = False
                    untimed += part.untimed
                    events += 1
                    seen(hash(part.key))
                    packed = add(part)
                    if packed is None:
                        if tracker is not None:
                            tracker.read(origin, 1)  # in one open batch
                        if control.probing and packer.holds_a_request():
                            await self._packed(packer.close_first(), None, None)
                    else:
                        await self._packed(packed, origin, tracker)
                else:
                    await self._shape_and_pack(record, origin, part, in_doubt)
                    if self.carrier.active:  # from the first update on, events index here
                        add = self._carry_add
                    if looking:
                        looking = look.open  # type: ignore[union-attr]
                if not read & (_YIELD_EVERY - 1):
                    summary.records_read += read
                    summary.events_without_timestamp += untimed
                    summary.events_read += events
                    read = untimed = events = 0
                    progress.in_file = records.bytes_read
                    users.check()
                    progress.report()
                    await asyncio.sleep(0)
                if control.stopping:
                    summary.notices.append(notices.stopped_after(f"{name}:{line}", kept))
                    self._size = records.bytes_read  # the bar shows what was read, not the file
                    return
                if limit is not None:
                    limit -= 1
                    if not limit:  # not the file's end: the journal must not note one
                        self._limit_left = 0
                        reached = notices.limit_reached(s.limit or 0, f"{name}:{line}", kept)
                        summary.notices.append(reached)
                        self._size = records.bytes_read
                        return
        except ReadInterrupted:  # a stop cut a wait on the input short (a quiet pipe)
            summary.notices.append(notices.stopped_after(f"{name}:{line}", kept))
            self._size = records.bytes_read
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
                f"{name}: the last line has no newline yet ({held:,} bytes); "
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

        With --state the record holds a reference of its own while its parts are packed, so no
        verdict settles it while a piece is unpacked; the batches go out once the hold is gone
        (as in the fast lane), or a verdict's commit could miss the record (docs/durable-runs)."""
        s, summary, books, packer = self._settings, self._summary, self._books, self._packer
        durable = self._durable
        tracker = durable.tracker if durable else None
        if tracker:
            tracker.read(origin, 1)  # held while its parts are packed
        if type(record.value) is dict and "userIndex" in record.value:  # a row sent back
            books.ledger.note_lineage(origin, record.value)
        look = self._lookahead
        full, batches = False, list[Batch]()
        if record.error is not None:
            if look is not None and look.open:
                full = look.note(None, 0, 0)
            where = f"{self._name(origin[0])}:{record.line}"
            books.set_aside(Invalid(f"{where}: {record.error}", raw=record.raw), origin)
        else:
            items = [part] if part is not None else shape(record.value, origin, s.shape)
            if look is not None and look.open:  # noted before a batch can close the sample
                parts = [i for i in items if isinstance(i, UserPart)]
                untimed = sum(p.untimed for p in parts)
                full = look.note(record.value, untimed, sum(len(p.events) for p in parts))
            window, outside = s.window, 0
            for item in items:
                if isinstance(item, Invalid):
                    books.set_aside(item, origin)
                    continue
                if isinstance(item, ProfileUpdate):
                    summary.profile_updates_read += 1
                    merged = self.carrier.update(item)
                    if tracker:  # held by each object it joined, or by the carrier
                        tracker.add_refs(origin, merged or 1)
                    continue
                if window is not None:
                    kept, left_out, untimed = window.select(item)
                    summary.events_read += left_out
                    summary.events_outside_window += left_out
                    summary.untimed_outside_window += untimed
                    outside += kept is None
                    if kept is None:
                        continue
                    item = kept
                if s.event_id_property:
                    item = stamp(item, s.event_id_property)
                summary.events_without_timestamp += item.untimed
                summary.events_read += len(item.events)
                self.users.seen.add(hash(item.key))
                if in_doubt is not None and record.line in in_doubt:  # counted once settled
                    durable.resending(origin, len(item.events))  # type: ignore[union-attr]
                packed = packer.add(item)
                if self.carrier.active:
                    self.carrier.event(item)
                if packed is None:
                    if tracker:
                        tracker.add_refs(origin, 1)
                    if self._control.probing and packer.holds_a_request():
                        batches += packer.close_first().batches  # never sets aside
                else:
                    if tracker:
                        tracker.add_refs(origin, packed.placed)
                    batches += packed.batches  # dispatched after the release, below
                    packed.batches = []
                    await self._packed(packed, None, None)  # its set-asides, now
            if outside and outside == len(items):
                summary.records_outside_window += 1
        if tracker:
            tracker.release(origin)
        for batch in batches:
            await self._dispatch(batch)
        if full:
            self._close_lookahead()

    def _carry_add(self, part: UserPart) -> Packed | None:
        """The fast lane's `add` once the run has seen a profile update (pack/carry.py)."""
        packed = self._packer.add(part)
        self.carrier.event(part)
        return packed

    async def finish_updates(self) -> None:
        """The updates no event took, once reading is over: sent as events with
        --profile-event (after a whole read only), kept unsettled in the state with --state
        (the next run reads them again, so one of its events can carry them), otherwise
        held rows in the rejected file. Before the packer's flush."""
        summary, tracker = self._summary, self._durable.tracker if self._durable else None
        left = self.carrier.left_over()
        summary.profile_updates_carried = self.carrier.carried
        name = self._settings.profile_event
        for update in left:
            if name and not self._control.stopping:  # the carrier's ref goes with the event
                summary.profile_updates_as_events += 1
                await self._send_as_event(update, name)
            elif tracker is None:
                self._books.hold(update)
            elif self._control.stopping:  # its record stays unsettled: read again next run
                summary.profile_updates_pending += 1
            else:
                summary.profile_updates_held += 1

    async def _send_as_event(self, update: ProfileUpdate, name: str) -> None:
        user = update.as_event(name)
        part = UserPart(
            user_key(update.identifiers),
            user["identifiers"],
            user["user_properties"],
            user["events"],
            update.origin,
            0 if update.timestamp else 1,
        )
        self._summary.events_read += 1
        self._summary.events_without_timestamp += part.untimed
        self.users.seen.add(hash(part.key))
        packed = self._packer.add(part)
        if packed is not None:
            await self._packed(packed, None, None)

    async def _packed(self, packed: Packed, origin: Origin | None, tracker: Tracker | None) -> None:
        """A packer call's set-asides to the file, the record to the tracker, then batches."""
        for invalid, too_big_origin in packed.too_big:
            self._summary.events_too_big += 1
            self._books.set_aside(invalid, too_big_origin)
        for unsendable in packed.unsendable:
            self._books.unsendable(*unsendable)
        if tracker is not None and origin is not None:
            tracker.read(origin, packed.placed)
        for batch in packed.batches:
            await self._dispatch(batch)

    def _name(self, file_no: int) -> str:
        return reader.display_name(self._files[file_no])
