"""Settlement bookkeeping: which input records are done, and how far each file is done.

A record is settled when every batch that holds a piece of it has a verdict (accepted,
rejected into the file, undelivered into the file) or when it was set aside before sending.
Batches finish out of order (lanes run side by side), so each file has a watermark: the last
record before which everything is settled. The journal stores the watermark plus the settled
records beyond it; a rerun skips both. Pure bookkeeping: no I/O, no clock.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from revbridge_cli.shape.parts import Origin


@dataclass(slots=True)
class _File:
    line: int  # watermark: every record up to this line is settled
    offset: int  # byte offset just past that line
    order: deque[tuple[int, int]] = field(default_factory=deque)  # (line, end offset) read
    refs: dict[int, int] = field(default_factory=dict)  # line -> pieces still in batches
    moved: bool = False
    end: tuple[int, int] | None = None  # (line, offset) where reading ended, once it did
    records: int | None = 0  # records up to the watermark (None: unknown, an older journal)


# What an unsettled record costs here while the packer holds it, for the grouping buffer's
# budget: 170 bytes by tracemalloc, 320 by the peak RSS of a real run with --state (the
# allocator's slack), which is the figure a user's memory budget is about.
RECORD_COST = 320


class Tracker:
    def __init__(self) -> None:
        self._files: dict[int, _File] = {}
        self._newly_settled: dict[int, list[int]] = {}

    def open_file(
        self, file_no: int, line: int = 0, offset: int = 0, records: int | None = 0
    ) -> None:
        """Start tracking a file whose `records` records up to `line` (ending at `offset`)
        are done."""
        self._files[file_no] = _File(line, offset, records=records)

    def done_records(self, file_no: int) -> int | None:
        """How many records are up to the watermark: the journal keeps it with the watermark,
        so that a rerun can say how many earlier runs did (its summary must add up)."""
        return self._files[file_no].records

    def read(self, origin: Origin, refs: int, note: bool = True) -> None:
        """A record was read and handed to `refs` batches (0: it is already settled).

        `note=False` for a record an earlier run settled: the journal knows it already.
        """
        file_no, line, offset = origin
        track = self._files[file_no]
        track.order.append((line, offset))
        if refs:
            track.refs[line] = track.refs.get(line, 0) + refs
        else:
            self._settle(file_no, track, line, note)

    def add_refs(self, origin: Origin, refs: int) -> None:
        """More pieces of an already-read record went into batches."""
        track = self._files[origin[0]]
        track.refs[origin[1]] = track.refs.get(origin[1], 0) + refs

    def release(self, origin: Origin) -> None:
        """One piece of the record got its verdict."""
        file_no, line, _ = origin
        track = self._files[file_no]
        left = track.refs.get(line, 0) - 1
        if left > 0:
            track.refs[line] = left
            return
        track.refs.pop(line, None)
        self._settle(file_no, track, line)

    def _settle(self, file_no: int, track: _File, line: int, note: bool = True) -> None:
        if note:
            self._newly_settled.setdefault(file_no, []).append(line)
        self._advance(track)

    def finish(self, file_no: int, line: int, offset: int) -> None:
        """The file was read to its end at (`line`, `offset`), past any trailing blank lines.

        Once every record is settled the watermark moves there, so that a rerun of an
        unchanged file has nothing left to read (not even blank lines in a gzip stream).
        """
        track = self._files[file_no]
        track.end = (line, offset)
        self._advance(track)

    def _advance(self, track: _File) -> None:
        order = track.order
        while order and order[0][0] not in track.refs:
            track.line, track.offset = order.popleft()
            track.moved = True
            if track.records is not None:
                track.records += 1
        end = track.end
        if (
            not order
            and end is not None
            and end[0] >= track.line
            and end != (track.line, track.offset)
        ):
            track.line, track.offset = end
            track.moved = True

    def take_changes(self) -> tuple[dict[int, tuple[int, int]], dict[int, list[int]]]:
        """Watermarks that moved and records settled since the last call, for the journal.

        Settled lines at or below their file's watermark are dropped: the watermark says it.
        """
        marks: dict[int, tuple[int, int]] = {}
        for file_no, track in self._files.items():
            if track.moved:
                marks[file_no] = (track.line, track.offset)
                track.moved = False
        settled: dict[int, list[int]] = {}
        for file_no, lines in self._newly_settled.items():
            mark = self._files[file_no].line
            beyond = [line for line in lines if line > mark]
            if beyond:
                settled[file_no] = beyond
        self._newly_settled = {}
        return marks, settled
