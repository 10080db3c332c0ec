"""Durable runs: what `--state` adds to a run, between the journal and the pipeline.

For each input it decides where reading starts (a file that grew continues where the last run
settled; a file already done is skipped without being opened; a re-export whose content up to
the watermark is unchanged counts as grown; a rotated file, under a name the journal does not
know, takes the row of the file it was (rotation.py); a replaced or truncated file is reported
and left alone unless `--restart-changed`), and it carries the tracker's settlements to the
journal as batches get their verdicts.

It also keeps the duplicate count honest across runs. The journal says, per unsettled batch,
how many copies of it the server may hold; every request's fate comes here (`attempted`), so a
request that was answered (a 503, 429 or 5xx, a refused connection) does not count, and one
that went unanswered counts once more. Possible duplicates of batches settled by a run that
died before printing its summary are carried in the journal to the next run's summary.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from typing import Any

from revbridge_cli.delivery.sender import Attempt
from revbridge_cli.input import reader
from revbridge_cli.input.paths import GZIP_MAGIC, content_fingerprint
from revbridge_cli.pack.batch import Batch
from revbridge_cli.shape.parts import Origin
from revbridge_cli.state.journal import FileState, Journal
from revbridge_cli.state.rotation import HEAD_WINDOW, find_rotations, head_print
from revbridge_cli.state.settlement import Tracker

HEAD_NOTE = f"{HEAD_WINDOW:,} bytes"
UNCERTAIN_TAIL = "its records up to where that file was done count as possible duplicates"


@dataclass(slots=True)
class FilePlan:
    """Where to read one input file from, and what in it is already done or in doubt.

    `in_doubt` maps a line to the number of copies of that record the server may hold.
    """

    start_line: int = 0
    start_offset: int = 0
    settled: set[int] = field(default_factory=set)
    in_doubt: dict[int, int] = field(default_factory=dict)
    skip: str | None = None  # why the file is not read at all
    error: str | None = None  # skip, and the run is not complete
    note: str | None = None  # a warning for the summary (a rotation that cannot be told)
    info: str | None = None  # a notice (a rotated file recognised)


@dataclass(slots=True)
class _Out:
    """A batch of this run that went out and has no verdict yet."""

    n_events: int
    out_at: float
    unanswered: int = 0  # requests that got no answer (the server may hold a copy each)
    last_end: float | None = None
    last_status: int | None = None
    last_answered: bool = True
    last_final: bool = False  # the sender's last word on it: no request followed
    retry_in: float | None = None


class Durable:
    """The journal and the tracker, keyed by the run's file numbers.

    `grace` is the run's grace period after a stop: a request can be cut off unanswered only
    that long after the stop, which is how `close` tells a batch that was waiting to retry
    (not in doubt) from one whose request was cancelled in flight (in doubt).
    """

    def __init__(
        self,
        journal: Journal,
        files: list[str],
        restart_changed: bool,
        grace: float = 0.0,
        fmt: str | None = None,
    ) -> None:
        self.journal = journal
        self.tracker = Tracker()
        self.paths = [os.path.realpath(p) for p in files]
        self.restart_changed = restart_changed
        self.grace = grace
        self.fmt = fmt  # --format, to count the records before an older journal's watermark
        self.skipped_records = 0  # done by earlier runs: before the watermarks, and beyond
        journal.adopt_in_doubt()
        self._in_doubt = journal.doubt_counts()
        self._rotations = find_rotations(journal, self.paths, self._in_doubt)
        for new, was in self._rotations.moved.items():
            journal.move_file(was, new)
            self._rekey_doubt(was, new)
        for new, maybe in self._rotations.uncertain.items():
            try:
                identity = self._identity(reader.file_identity(new), new)
            except reader.InputError:
                continue  # the run reports it when it comes to it
            journal.hand_over(None if maybe.copy else maybe.was, new, identity, maybe.in_doubt)
            if not maybe.copy:
                self._rekey_doubt(maybe.was, None)
            self._in_doubt.update({(new, line): n for line, n in maybe.in_doubt.items()})
        self._carried_at_start = journal.carried_duplicates()
        self._carry = 0  # to add to the journal's carried count at the next commit
        self._done_batches: list[int] = []
        self._out: dict[int, _Out] = {}
        self._gzip: dict[int, bool] = {}
        self._fingerprinted: dict[int, int] = {}  # file -> offset its stored fingerprint is of
        self._doubt_times: dict[int, dict[int, int]] = {}  # file -> line -> copies it may have
        self._resent: dict[tuple[int, int], int] = {}  # in-doubt records read: possible dups
        self._settled_dups = 0  # of those, settled by this run
        self._read_whole: set[int] = set()  # files this run read to their end

    def _rekey_doubt(self, was: str, new: str | None) -> None:
        for key in [k for k in self._in_doubt if k[0] == was]:
            times = self._in_doubt.pop(key)
            if new is not None:
                self._in_doubt[(new, key[1])] = times

    # ---- where each file starts ------------------------------------------------------------

    def plan(self, file_no: int) -> FilePlan:
        path = self.paths[file_no]
        self._gzip[file_no] = self._is_gzip(path)
        known = self.journal.file_state(path)
        in_doubt = {line: n for (p, line), n in self._in_doubt.items() if p == path}
        self._doubt_times[file_no] = in_doubt
        if known is None:
            self._start(file_no, self._identity(reader.file_identity(path), path), 0, 0)
            return FilePlan(in_doubt=in_doubt)
        verdict: str
        verdict, identity = reader.compare_identity(known.identity, path)
        identity = self._identity(identity, path)
        was = self._rotations.moved.get(path)
        if verdict in ("replaced", "truncated") and (was or self._re_exported(path, known)):
            verdict = "re-exported"  # a rotated file was checked as a re-export is
        if verdict in ("replaced", "truncated"):
            if not self.restart_changed:
                return FilePlan(
                    error=f"{path} was {verdict} since the last run (state "
                    f"{self.journal.path}): not read. If it holds new data, run "
                    "again with --restart-changed to read it from the start"
                )
            self._start(file_no, identity, 0, 0)
            return FilePlan(skip=None)
        # The end of the stream is known only for an unchanged file; compare offsets with it,
        # not with the file's size, which for gzip is compressed bytes.
        end = known.end_offset if verdict == "same" else None
        done = end is not None and known.done_offset >= end
        records = known.done_records
        if records is None:  # an older journal did not count them: once, by reading them
            records = self._count_records(path, known.done_line)
        self.skipped_records += records
        if known.identity == identity and known.done_records is not None:
            self.tracker.open_file(file_no, known.done_line, known.done_offset, records)
        else:
            self._start(file_no, identity, known.done_line, known.done_offset, end, records)
        if known.fingerprint is not None:
            self._fingerprinted[file_no] = known.fingerprint.get("offset", -1)
        rotated = f"{path} is {was} rotated: " if was else ""
        if done and not known.settled and not in_doubt:
            return FilePlan(skip=f"{rotated or path + ': '}nothing new since the last run")
        info = f"{rotated}read from line {known.done_line + 1:,}" if was else None
        plan = FilePlan(known.done_line, known.done_offset, known.settled, in_doubt, info=info)
        maybe = self._rotations.uncertain.get(path)
        if maybe is not None:  # read whole: its records up to the old watermark are in doubt
            what = (
                f"{path} holds what {maybe.was} held up to where it was done (a copy?)"
                if maybe.copy
                else f"{path} may be {maybe.was} rotated (it starts with the same "
                f"{maybe.head_len:,} bytes, fewer than the {HEAD_NOTE} needed to tell)"
            )
            plan.note = f"{what}: read whole; {UNCERTAIN_TAIL}"
        return plan

    @staticmethod
    def _identity(identity: dict[str, Any], path: str) -> dict[str, Any]:
        """The file's identity with the fingerprint of its head (rotation.py)."""
        fp = head_print(path)
        return {**identity, "fp": fp} if fp is not None else identity

    @staticmethod
    def _is_gzip(path: str) -> bool:
        try:
            with open(path, "rb") as f:
                return f.read(2) == GZIP_MAGIC
        except OSError:
            return False

    @staticmethod
    def _re_exported(path: str, known: FileState) -> bool:
        """Another file now has the name, but its content up to the watermark is the same
        (a re-export, old rows first): it has only grown. Only a fingerprint taken at the
        watermark itself can say so."""
        fingerprint = known.fingerprint
        if fingerprint is None or fingerprint.get("offset") != known.done_offset:
            return False
        if known.done_offset == 0:
            return False
        again = content_fingerprint(path, known.done_offset)
        return again is not None and again["sha"] == fingerprint.get("sha")

    def _start(
        self,
        file_no: int,
        identity: dict[str, Any],
        line: int,
        offset: int,
        end_offset: int | None = None,
        records: int = 0,
    ) -> None:
        self.journal.start_file(self.paths[file_no], identity, line, offset, end_offset, records)
        self.tracker.open_file(file_no, line, offset, records)

    def _count_records(self, path: str, done_line: int) -> int:
        """The records up to line `done_line` of `path`, read (nothing is sent) for a journal
        written before the count was kept; a file that cannot be read counts what was read."""
        count = 0
        if done_line <= 0:
            return 0
        try:
            for record in reader.Reader(path, self.fmt):
                if record.line > done_line:
                    break
                count += 1
        except reader.InputError:
            pass
        return count

    def file_read(self, file_no: int, line: int, offset: int) -> None:
        """Reading reached the end of the file (not a stop): its stream ends at `offset`."""
        self.tracker.finish(file_no, line, offset)
        self.journal.end_file(self.paths[file_no], offset)
        self._read_whole.add(file_no)

    # ---- batches and their requests --------------------------------------------------------

    def batch_out(self, batch: Batch) -> None:
        refs = sorted({(self.paths[f], line) for f, line, _ in batch.origins()})
        self.journal.begin_batch(batch.seq, refs, batch.n_users, batch.n_events)
        self._out[batch.seq] = _Out(batch.n_events, time.monotonic())

    def attempted(self, attempt: Attempt) -> None:
        """Every request of a batch, answered or not (the sender's `on_attempt`).

        An unanswered request may have left a copy on the server: the journal counts it at
        once (one more for the request that may follow), so that a kill -9 loses nothing.
        """
        out = self._out.get(attempt.batch_seq)
        if out is None:
            return
        out.last_end = time.monotonic()
        out.last_status = attempt.status
        out.retry_in = attempt.retry_in
        out.last_final = attempt.final
        out.last_answered = not attempt.in_doubt  # the sender's word: no second guess here
        if not out.last_answered:
            out.unanswered += 1
            self.journal.batch_sends(attempt.batch_seq, out.unanswered + 1)

    def batch_done(self, batch: Batch) -> None:
        for origin in batch.origins():
            self.tracker.release(origin)
        self._done_batches.append(batch.seq)
        out = self._out.pop(batch.seq, None)
        if out is None:
            return
        # Requests resent after going unanswered each may have stored a copy. The ledger counts
        # them all (Outcome.resent_in_doubt); the journal carries them too until this run's
        # summary is printed, in case it never is.
        resent = out.unanswered - (0 if out.last_answered else 1)
        if resent > 0:
            self._carry += resent * out.n_events

    def resending(self, origin: Origin, events: int) -> None:
        """A record in doubt since an earlier run is read again (part by part): once it is
        settled, each copy the server may hold is a possible duplicate of its events."""
        file_no, line, _ = origin
        key = (file_no, line)
        times = self._doubt_times.get(file_no, {}).get(line, 1)
        self._resent[key] = self._resent.get(key, 0) + events * times

    def _settled_resends(
        self, marks: dict[int, tuple[int, int]], settled: dict[int, list[int]]
    ) -> int:
        """Possible duplicates of in-doubt records that this commit settles."""
        if not self._resent:
            return 0
        beyond = {(f, line) for f, lines in settled.items() for line in lines}
        found = 0
        for key in list(self._resent):
            f, line = key
            if key in beyond or (f in marks and line <= marks[f][0]):
                found += self._resent.pop(key)
        return found

    def skip(self, origin: Origin) -> None:
        self.skipped_records += 1
        self.tracker.read(origin, 0, note=False)

    @property
    def unreported_duplicates(self) -> int:
        """Possible duplicate events this run's summary must add to what the ledger counted:
        those carried from runs that died before reporting and the copies of in-doubt records
        this run settled (the ledger counts this run's own resends, one per copy)."""
        return self._carried_at_start + self._settled_dups

    # ---- commits ---------------------------------------------------------------------------

    def commit(self) -> None:
        """Persist settlements; the rejected file must already be on disk (fsync) by now."""
        marks, settled = self.tracker.take_changes()
        resent = self._settled_resends(marks, settled)
        self._settled_dups += resent
        self._carry += resent
        fingerprints: dict[str, dict[str, Any]] = {}
        for f, (_, offset) in marks.items():
            if self._gzip.get(f, False):  # decompressing costs: once, at the end of the run
                continue
            fp = content_fingerprint(self.paths[f], offset) if offset else None
            if fp is not None:
                fingerprints[self.paths[f]] = fp
                self._fingerprinted[f] = offset
        self.journal.commit(
            self._done_batches,
            {self.paths[f]: mark for f, mark in marks.items()},
            {self.paths[f]: lines for f, lines in settled.items()},
            carried=self._carry,
            fingerprints=fingerprints,
            records={self.paths[f]: self.tracker.done_records(f) for f in marks},
        )
        self._carry = 0
        self._done_batches = []

    def _stale_gzip_fingerprints(self) -> dict[str, dict[str, Any]]:
        """Gzip files read to their end whose watermark moved since their fingerprint.

        Only those: fingerprinting decompresses up to the watermark, which a run that was
        stopped halfway through a big file must not spend its grace period on."""
        out: dict[str, dict[str, Any]] = {}
        for f, gz in self._gzip.items():
            if not gz or f not in self._read_whole:
                continue
            state = self.journal.file_state(self.paths[f])
            if state is None or not state.done_offset:
                continue
            if self._fingerprinted.get(f) == state.done_offset:
                continue
            fp = content_fingerprint(self.paths[f], state.done_offset)
            if fp is not None:
                out[self.paths[f]] = fp
        return out

    def _settle_unanswered(self) -> None:
        """Batches this run sent and left without a verdict (a stop): how many copies of each
        the server may hold. A batch whose requests were all answered holds none, unless a
        further request may have gone out and been cut off by the grace period."""
        now = time.monotonic()
        for seq, out in self._out.items():
            if out.last_end is None:
                flying = now - out.out_at >= self.grace
            elif out.last_final:
                flying = False  # the sender's last word on it: no request followed
            else:
                flying = now >= out.last_end + (out.retry_in or 0.0) + self.grace
            self.journal.batch_sends(seq, out.unanswered + int(flying))
        self._out = {}

    def close(self) -> None:
        """At the end of a run that prints its summary (an orderly end, a stop, an error)."""
        try:
            self._settle_unanswered()
            self.commit()
            for path, fp in self._stale_gzip_fingerprints().items():
                self.journal.set_fingerprint(path, fp)
            self.journal.compact()
            self.journal.reported_duplicates()
        finally:
            self.journal.close()
