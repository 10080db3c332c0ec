"""The state file (`--state`): a durable journal of how far each input file is done.

SQLite, because it gives atomic commits in one file with no server: a run killed at any
instant (`kill -9` included) leaves either the old or the new state, never half of one.
What it keeps, per input file: its identity (to notice a replaced or truncated file), the
watermark (every record up to that line is settled), and settled records beyond it. Per
batch in flight: its records, so that a rerun knows which records may already be stored and
reports them as possible duplicates when it resends them. A rerun moves those records to the
`doubt` table (batch numbers start again at 1 in every run), where they stay until they are
settled, however many runs that takes.

One run per state: an exclusive `flock` on `STATE.lock`, which the kernel releases when the
holder dies, so a lock left by a dead run never blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from array import array
from dataclasses import dataclass
from typing import Any

import orjson

from revbridge_cli.errors import LockedError

SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists files (
    path text primary key,
    identity text not null,        -- JSON: device, inode, size, mtime_ns, head_sha
    done_line integer not null,    -- watermark: every record up to this line is settled
    done_offset integer not null,  -- byte offset just past that line (decompressed stream)
    end_offset integer,            -- where the stream ended when this identity was read to its end
    updated_at text not null default (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
create table if not exists settled (path text not null, lines blob not null);
create table if not exists inflight (batch integer primary key, lines blob not null);
create table if not exists doubt (
    path text not null, line integer not null, primary key (path, line)
) without rowid;
"""
SCHEMA_VERSION = "2"


@dataclass(slots=True)
class FileState:
    """What the journal knows of one input path."""

    identity: dict[str, Any]
    done_line: int
    done_offset: int
    settled: set[int]
    end_offset: int | None = None  # the end of the stream, once a run read this identity whole


def _pack_lines(lines: list[int]) -> bytes:
    return array("q", lines).tobytes()


def _unpack_lines(blob: bytes) -> list[int]:
    out = array("q")
    out.frombytes(blob)
    return out.tolist()


def _encode_refs(refs: list[tuple[str, int]]) -> bytes:
    return orjson.dumps(refs)


class Journal:
    """Open with `Journal.open(path)`; every write is one short transaction."""

    def __init__(self, path: str, db: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self.db = db
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: str) -> Journal:
        lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(lock_fd, 64, 0).decode(errors="replace").strip() or "another"
            os.close(lock_fd)
            raise LockedError(
                f"state {path} is in use by a running revbridge (pid {holder}); this run did "
                "not start. It will be free when that run ends."
            ) from None
        os.ftruncate(lock_fd, 0)
        os.pwrite(lock_fd, str(os.getpid()).encode(), 0)
        try:
            db = sqlite3.connect(path, isolation_level=None)
            db.execute("pragma journal_mode=wal")
            db.execute("pragma synchronous=normal")
            db.executescript(SCHEMA)
            columns = {row[1] for row in db.execute("pragma table_info(files)")}
            if "end_offset" not in columns:  # a state written by schema 1
                db.execute("alter table files add column end_offset integer")
            db.execute("insert or replace into meta values ('schema', ?)", (SCHEMA_VERSION,))
        except sqlite3.Error as exc:
            os.close(lock_fd)
            raise OSError(f"cannot use {path} as a state file: {exc}") from exc
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
        return cls(path, db, lock_fd)

    def close(self) -> None:
        self.db.close()
        os.close(self._lock_fd)  # releases the lock

    # ---- reading what earlier runs left -----------------------------------------------------

    def file_state(self, path: str) -> FileState | None:
        row = self.db.execute(
            "select identity, done_line, done_offset, end_offset from files where path = ?",
            (path,),
        ).fetchone()
        if row is None:
            return None
        settled: set[int] = set()
        for (blob,) in self.db.execute("select lines from settled where path = ?", (path,)):
            settled.update(line for line in _unpack_lines(blob) if line > row[1])
        return FileState(orjson.loads(row[0]), row[1], row[2], settled, row[3])

    def in_doubt(self) -> set[tuple[str, int]]:
        """Records that may already be stored: in batches a dead run had in flight, or in
        doubt since an earlier run and not settled yet."""
        out: set[tuple[str, int]] = set(self.db.execute("select path, line from doubt"))
        for (blob,) in self.db.execute("select lines from inflight"):
            out.update((path, line) for path, line in orjson.loads(blob))
        return out

    # ---- writing ------------------------------------------------------------------------

    def start_file(
        self,
        path: str,
        identity: dict[str, Any],
        line: int,
        offset: int,
        end_offset: int | None = None,
    ) -> None:
        """Record (or re-record, after a reset) where this file starts being read.

        `end_offset` is kept only for an unchanged file; line 0 forgets all that was known.
        """
        with self.db:
            self.db.execute("begin immediate")
            self.db.execute(
                "insert into files (path, identity, done_line, done_offset, end_offset)"
                " values (?, ?, ?, ?, ?)"
                " on conflict (path) do update set identity = excluded.identity,"
                " done_line = excluded.done_line, done_offset = excluded.done_offset,"
                " end_offset = excluded.end_offset,"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                (path, orjson.dumps(identity).decode(), line, offset, end_offset),
            )
            if line == 0:
                self.db.execute("delete from settled where path = ?", (path,))
                self.db.execute("delete from doubt where path = ?", (path,))

    def end_file(self, path: str, end_offset: int) -> None:
        """This run read the file to its end, at `end_offset` of the (decompressed) stream."""
        self.db.execute("update files set end_offset = ? where path = ?", (end_offset, path))

    def begin_batch(self, batch: int, refs: list[tuple[str, int]]) -> None:
        """Before a batch goes out: if we die now, these records are in doubt."""
        self.db.execute(
            "insert or replace into inflight values (?, ?)", (batch, _encode_refs(refs))
        )

    def commit(
        self,
        done_batches: list[int],
        marks: dict[str, tuple[int, int]],
        settled: dict[str, list[int]],
    ) -> None:
        """Batches got their verdicts: move watermarks, keep records settled beyond them."""
        with self.db:
            self.db.execute("begin immediate")
            self.db.executemany(
                "delete from inflight where batch = ?", [(b,) for b in done_batches]
            )
            for path, lines in settled.items():
                self.db.execute("insert into settled values (?, ?)", (path, _pack_lines(lines)))
                self.db.executemany(
                    "delete from doubt where path = ? and line = ?", [(path, n) for n in lines]
                )
            for path, (line, offset) in marks.items():
                self.db.execute("delete from doubt where path = ? and line <= ?", (path, line))
                self.db.execute(
                    "update files set done_line = ?, done_offset = ?,"
                    " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now') where path = ?",
                    (line, offset, path),
                )

    def adopt_in_doubt(self) -> None:
        """A new run starts: what dead runs had in flight stays in doubt until it is settled.

        Moved out of `inflight` because the new run numbers its batches from 1 again.
        """
        with self.db:
            self.db.execute("begin immediate")
            rows = self.db.execute("select lines from inflight").fetchall()
            self.db.executemany(
                "insert or ignore into doubt values (?, ?)",
                [(path, line) for (blob,) in rows for path, line in orjson.loads(blob)],
            )
            self.db.execute("delete from inflight")

    def compact(self) -> None:
        """Drop settled rows the watermarks have passed (keeps the file small on long runs)."""
        with self.db:
            self.db.execute("begin immediate")
            rows = self.db.execute(
                "select s.rowid, s.lines, f.done_line from settled s join files f using (path)"
            ).fetchall()
            stale = [
                (rowid,)
                for rowid, blob, mark in rows
                if max(_unpack_lines(blob), default=0) <= mark
            ]
            self.db.executemany("delete from settled where rowid = ?", stale)
