"""Durable runs: what `--state` adds to a run, between the journal and the pipeline.

For each input it decides where reading starts (a file that grew continues where the last run
settled; a file already done is skipped without being opened; a replaced or truncated file is
reported and left alone unless `--restart-changed`), and it carries the tracker's settlements
to the journal as batches get their verdicts.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from revbridge_cli import reader
from revbridge_cli.batch import Batch
from revbridge_cli.journal import Journal
from revbridge_cli.records import Origin
from revbridge_cli.tracker import Tracker


@dataclass(slots=True)
class FilePlan:
    """Where to read one input file from, and what in it is already done or in doubt."""

    start_line: int = 0
    start_offset: int = 0
    settled: set[int] = field(default_factory=set)
    in_doubt: set[int] = field(default_factory=set)
    skip: str | None = None  # why the file is not read at all
    error: str | None = None  # skip, and the run is not complete


class Durable:
    """The journal and the tracker, keyed by the run's file numbers."""

    def __init__(self, journal: Journal, files: list[str], restart_changed: bool) -> None:
        self.journal = journal
        self.tracker = Tracker()
        self.paths = [os.path.realpath(p) for p in files]
        self.restart_changed = restart_changed
        self.skipped_records = 0
        journal.adopt_in_doubt()
        self._in_doubt = journal.in_doubt()
        self._done_batches: list[int] = []

    def plan(self, file_no: int) -> FilePlan:
        path = self.paths[file_no]
        known = self.journal.file_state(path)
        in_doubt = {line for p, line in self._in_doubt if p == path}
        if known is None:
            self._start(file_no, reader.file_identity(path), 0, 0)
            return FilePlan(in_doubt=in_doubt)
        verdict, identity = reader.compare_identity(known.identity, path)
        if verdict in ("replaced", "truncated"):
            if not self.restart_changed:
                return FilePlan(
                    error=f"{path} was {verdict} since the last run (state "
                    f"{self.journal.path}): not read. If it holds new data, run "
                    "again with --restart-changed to read it from the start"
                )
            self._start(file_no, identity, 0, 0)
            return FilePlan(skip=None, in_doubt=set())
        # The end of the stream is known only for an unchanged file; compare offsets with it,
        # not with the file's size, which for gzip is compressed bytes.
        end = known.end_offset if verdict == "same" else None
        done = end is not None and known.done_offset >= end
        if known.identity == identity:
            self.tracker.open_file(file_no, known.done_line, known.done_offset)  # no write
        else:
            self._start(file_no, identity, known.done_line, known.done_offset, end)
        if done and not known.settled and not in_doubt:
            return FilePlan(skip=f"{path}: nothing new since the last run")
        return FilePlan(known.done_line, known.done_offset, known.settled, in_doubt)

    def _start(
        self,
        file_no: int,
        identity: dict[str, Any],
        line: int,
        offset: int,
        end_offset: int | None = None,
    ) -> None:
        self.journal.start_file(self.paths[file_no], identity, line, offset, end_offset)
        self.tracker.open_file(file_no, line, offset)

    def file_read(self, file_no: int, line: int, offset: int) -> None:
        """Reading reached the end of the file (not a stop): its stream ends at `offset`."""
        self.tracker.finish(file_no, line, offset)
        self.journal.end_file(self.paths[file_no], offset)

    def batch_out(self, batch: Batch) -> None:
        refs = sorted({(self.paths[f], line) for f, line, _ in batch.origins()})
        self.journal.begin_batch(batch.seq, refs)

    def batch_done(self, batch: Batch) -> None:
        for origin in batch.origins():
            self.tracker.release(origin)
        self._done_batches.append(batch.seq)

    def skip(self, origin: Origin) -> None:
        self.skipped_records += 1
        self.tracker.read(origin, 0, note=False)

    def commit(self) -> None:
        """Persist settlements; the rejected file must already be on disk (fsync) by now."""
        marks, settled = self.tracker.take_changes()
        self.journal.commit(
            self._done_batches,
            {self.paths[f]: mark for f, mark in marks.items()},
            {self.paths[f]: lines for f, lines in settled.items()},
        )
        self._done_batches = []

    def close(self) -> None:
        try:
            self.commit()
            self.journal.compact()
        finally:
            self.journal.close()
