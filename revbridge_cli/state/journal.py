"""The state file (`--state`): a durable journal of how far each input file is done.

SQLite, because it gives atomic commits in one file with no server: a run killed at any
instant (`kill -9` included) leaves either the old or the new state, never half of one.
What it keeps, per input file: its identity (to notice a replaced or truncated file, and with
the head fingerprint of rotation.py, a rotated one), the watermark (every record up to that
line is settled, and how many records that is), settled records beyond it, and a
fingerprint of the content before the watermark (so that a re-export, a new file with the old
rows first, reads as grown). Per batch in flight: its records, and how many copies of it the
server may hold (`sends`: 1 while its first request is out, one more for every request that
went unanswered), so that a rerun knows which records may already be stored, and how many
times. A rerun moves those records to the `doubt` table with that count (batch numbers start
again at 1 in every run), where they stay until they are settled, however many runs that takes.
`meta.carried_duplicates` holds the possible duplicate events of batches that were settled by
a run that died before printing its summary, for the next run to report.

A state file that SQLite cannot read, or whose rows are not what this code wrote, is a
`StateError` naming the file (exit 2) when it is opened, before anything is sent; a write that
fails mid-run (disk full, I/O error) is an `OutputError` naming it.

One run per state: an exclusive `flock` on `STATE.lock`, which the kernel releases when the
holder dies, so a lock left by a dead run never blocks.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from revbridge_cli.errors import LockedError, OutputError, StateError
from revbridge_cli.state.ownership import check_state_path
from revbridge_cli.state.rows import (
    check_identity,
    decode_refs,
    encode_refs,
    pack_lines,
    unpack_lines,
)

SCHEMA = """
create table if not exists meta (key text primary key, value text not null);
create table if not exists files (
    path text primary key,
    identity text not null,        -- JSON: device, inode, size, mtime_ns, head_len, head_sha, fp
    done_line integer not null,    -- watermark: every record up to this line is settled
    done_offset integer not null,  -- byte offset just past that line (decompressed stream)
    end_offset integer,            -- where the stream ended when this identity was read to its end
    fingerprint text,              -- JSON: offset, sha of the content before the watermark
    done_records integer,          -- records up to the watermark
    updated_at text not null default (strftime('%Y-%m-%dT%H:%M:%SZ', 'now'))
);
create table if not exists settled (path text not null, lines blob not null);
create table if not exists inflight (
    batch integer primary key, lines blob not null, sends integer not null default 1,
    users integer, events integer  -- what the batch carries, for `revbridge state show`
);
create table if not exists doubt (
    path text not null, line integer not null, times integer not null default 1,
    primary key (path, line)
) without rowid;
"""
SCHEMA_VERSION = "4"  # 4: files.done_records
# Columns later schemas added, for a state written by an older version: table, column, type.
_ADDED = (
    ("files", "end_offset", "integer"),
    ("files", "fingerprint", "text"),
    ("inflight", "sends", "integer not null default 1"),
    ("doubt", "times", "integer not null default 1"),
    ("inflight", "users", "integer"),  # for `revbridge state show`
    ("inflight", "events", "integer"),
    ("files", "done_records", "integer"),  # records up to the watermark; null: not counted yet
)


@dataclass(slots=True)
class FileState:
    """What the journal knows of one input path."""

    identity: dict[str, Any]
    done_line: int
    done_offset: int
    settled: set[int]
    end_offset: int | None = None  # the end of the stream, once a run read this identity whole
    fingerprint: dict[str, Any] | None = None  # of the content before a watermark
    done_records: int | None = None  # records up to the watermark (None: an older journal)


class Journal:
    """Open with `Journal.open(path)`; every write is one short transaction."""

    def __init__(self, path: str, db: sqlite3.Connection, lock_fd: int) -> None:
        self.path = path
        self.db = db
        self._lock_fd = lock_fd

    @classmethod
    def open(cls, path: str) -> Journal:
        check_state_path(path, int(SCHEMA_VERSION))  # another program's file: left untouched
        try:
            lock_fd = os.open(path + ".lock", os.O_RDWR | os.O_CREAT, 0o600)
        except OSError as exc:
            raise StateError(f"cannot create the lock {path}.lock: {exc.strerror or exc}") from None
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
        db: sqlite3.Connection | None = None
        try:
            db = sqlite3.connect(path, isolation_level=None)
            journal = cls(path, db, lock_fd)
            journal._prepare()
        except (sqlite3.Error, ValueError, orjson.JSONDecodeError) as exc:
            if db is not None:
                db.close()
            os.close(lock_fd)
            raise StateError(
                f"state file {path} is damaged or not a revbridge state ({_why(exc)}); move it "
                "aside to start over (every input would then be read as new)"
            ) from None
        with contextlib.suppress(OSError):
            os.chmod(path, 0o600)
        return journal

    def _prepare(self) -> None:
        """Schema, upgrade, and a full check of what earlier runs left (raises when damaged)."""
        db = self.db
        db.execute("pragma journal_mode=wal")
        db.execute("pragma synchronous=normal")
        db.executescript(SCHEMA)
        for table, column, kind in _ADDED:
            columns = {row[1] for row in db.execute(f"pragma table_info({table})")}
            if column not in columns:
                db.execute(f"alter table {table} add column {column} {kind}")
        (check,) = db.execute("pragma quick_check").fetchone()
        if check != "ok":
            raise ValueError(str(check))
        self._verify()
        db.execute("insert or replace into meta values ('schema', ?)", (SCHEMA_VERSION,))

    def _verify(self) -> None:
        """Every row decodes as this code wrote it: a damaged row is found now, not mid-run."""
        for path, identity, line, offset, fingerprint, records in self.db.execute(
            "select path, identity, done_line, done_offset, fingerprint, done_records from files"
        ):
            if not isinstance(path, str) or type(line) is not int or type(offset) is not int:
                raise ValueError("a file row has the wrong types")
            if records is not None and type(records) is not int:
                raise ValueError("a file row's record count is not a number")
            check_identity(identity)
            if fingerprint is not None and not isinstance(orjson.loads(fingerprint), dict):
                raise ValueError("a fingerprint is not an object")
        for (blob,) in self.db.execute("select lines from settled"):
            if not isinstance(blob, bytes) or len(blob) % 8:
                raise ValueError("a settled row is not a list of line numbers")
        for blob, sends in self.db.execute("select lines, sends from inflight"):
            decode_refs(blob)
            if type(sends) is not int:
                raise ValueError("an in-flight row has no send count")
        for path, line, times in self.db.execute("select path, line, times from doubt"):
            if not isinstance(path, str) or type(line) is not int or type(times) is not int:
                raise ValueError("a doubt row has the wrong types")
        carried = self._meta("carried_duplicates", "0")
        if not carried.isdigit():
            raise ValueError("carried_duplicates is not a count")

    def close(self) -> None:
        try:
            self.db.close()
        finally:
            os.close(self._lock_fd)  # releases the lock

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One write: its failure (disk full, I/O error) is an `OutputError` naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise OutputError(f"cannot write the state file {self.path}: {_why(exc)}") from None

    def _meta(self, key: str, default: str) -> str:
        row = self.db.execute("select value from meta where key = ?", (key,)).fetchone()
        return str(row[0]) if row is not None else default

    # ---- reading what earlier runs left -----------------------------------------------------

    def file_state(self, path: str) -> FileState | None:
        row = self.db.execute(
            "select identity, done_line, done_offset, end_offset, fingerprint, done_records"
            " from files where path = ?",
            (path,),
        ).fetchone()
        if row is None:
            return None
        settled: set[int] = set()
        for (blob,) in self.db.execute("select lines from settled where path = ?", (path,)):
            settled.update(line for line in unpack_lines(blob) if line > row[1])
        fingerprint = orjson.loads(row[4]) if row[4] is not None else None
        return FileState(orjson.loads(row[0]), row[1], row[2], settled, row[3], fingerprint, row[5])

    def known_paths(self) -> list[str]:
        return [path for (path,) in self.db.execute("select path from files order by path")]

    def in_doubt(self) -> set[tuple[str, int]]:
        """Records that may already be stored: in batches a dead run had in flight, or in
        doubt since an earlier run and not settled yet."""
        return set(self.doubt_counts())

    def doubt_counts(self) -> dict[tuple[str, int], int]:
        """`in_doubt`, with how many copies of each record the server may hold."""
        out: dict[tuple[str, int], int] = {
            (path, line): times for path, line, times in self.db.execute("select * from doubt")
        }
        for blob, sends in self.db.execute("select lines, sends from inflight"):
            for ref in decode_refs(blob):
                out[ref] = out.get(ref, 0) + sends
        return out

    def carried_duplicates(self) -> int:
        return int(self._meta("carried_duplicates", "0"))

    # ---- writing ------------------------------------------------------------------------

    def start_file(
        self,
        path: str,
        identity: dict[str, Any],
        line: int,
        offset: int,
        end_offset: int | None = None,
        records: int | None = 0,
    ) -> None:
        """Record (or re-record, after a reset) where this file starts being read.

        `end_offset` is kept only for an unchanged file; line 0 forgets all that was known.
        `records`: how many records are up to `line` (None: not known).
        """
        with self._writing(), self.db:
            self.db.execute("begin immediate")
            self.db.execute(
                "insert into files (path, identity, done_line, done_offset, end_offset,"
                " done_records) values (?, ?, ?, ?, ?, ?)"
                " on conflict (path) do update set identity = excluded.identity,"
                " done_line = excluded.done_line, done_offset = excluded.done_offset,"
                " end_offset = excluded.end_offset, done_records = excluded.done_records,"
                " updated_at = strftime('%Y-%m-%dT%H:%M:%SZ', 'now')",
                (path, orjson.dumps(identity).decode(), line, offset, end_offset, records),
            )
            if line == 0:
                self.db.execute("update files set fingerprint = null where path = ?", (path,))
                self.db.execute("delete from settled where path = ?", (path,))
                self.db.execute("delete from doubt where path = ?", (path,))

    def move_file(self, old: str, new: str) -> None:
        """The file once at `old` is now at `new` (log rotation): all that is known moves."""
        with self._writing(), self.db:
            self.db.execute("begin immediate")
            for table in ("files", "settled", "doubt"):
                self.db.execute(f"delete from {table} where path = ?", (new,))
                self.db.execute(f"update {table} set path = ? where path = ?", (new, old))

    def hand_over(
        self, old: str | None, new: str, identity: dict[str, Any], doubt: dict[int, int]
    ) -> None:
        """`new` may hold what `old` held (a rotation that cannot be told; `old` None: a copy,
        and the original stays known): `old` is forgotten and `new` starts at line 0 with
        `doubt`'s records in doubt, in one transaction, so a kill never loses the doubt."""
        with self._writing(), self.db:
            self.db.execute("begin immediate")
            for table in ("files", "settled", "doubt"):
                self.db.execute(f"delete from {table} where path in (?, ?)", (old, new))
            self.db.execute(
                "insert into files (path, identity, done_line, done_offset, done_records)"
                " values (?, ?, 0, 0, 0)",
                (new, orjson.dumps(identity).decode()),
            )
            self.db.executemany(
                "insert into doubt (path, line, times) values (?, ?, ?)",
                [(new, line, times) for line, times in doubt.items()],
            )

    def end_file(self, path: str, end_offset: int) -> None:
        """This run read the file to its end, at `end_offset` of the (decompressed) stream."""
        with self._writing():
            self.db.execute("update files set end_offset = ? where path = ?", (end_offset, path))

    def set_fingerprint(self, path: str, fingerprint: dict[str, Any]) -> None:
        with self._writing():
            self.db.execute(
                "update files set fingerprint = ? where path = ?",
                (orjson.dumps(fingerprint).decode(), path),
            )

    def begin_batch(
        self,
        batch: int,
        refs: list[tuple[str, int]],
        users: int | None = None,
        events: int | None = None,
    ) -> None:
        """Before a batch goes out: if we die now, these records are in doubt."""
        with self._writing():
            self.db.execute(
                "insert or replace into inflight (batch, lines, sends, users, events)"
                " values (?, ?, 1, ?, ?)",
                (batch, encode_refs(refs), users, events),
            )

    def batch_sends(self, batch: int, sends: int) -> None:
        """How many copies of an unsettled batch the server may hold (0: none, forget it)."""
        with self._writing():
            if sends:
                self.db.execute("update inflight set sends = ? where batch = ?", (sends, batch))
            else:
                self.db.execute("delete from inflight where batch = ?", (batch,))

    def commit(
        self,
        done_batches: list[int],
        marks: dict[str, tuple[int, int]],
        settled: dict[str, list[int]],
        carried: int = 0,
        fingerprints: dict[str, dict[str, Any]] | None = None,
        records: dict[str, int | None] | None = None,
    ) -> None:
        """Batches got their verdicts: move watermarks, keep records settled beyond them.

        `carried` adds possible duplicate events no printed summary has counted yet;
        `fingerprints` are of the content before the new watermarks; `records` how many
        records are up to them.
        """
        with self._writing(), self.db:
            self.db.execute("begin immediate")
            self.db.executemany(
                "delete from inflight where batch = ?", [(b,) for b in done_batches]
            )
            for path, lines in settled.items():
                self.db.execute("insert into settled values (?, ?)", (path, pack_lines(lines)))
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
            for path, count in (records or {}).items():
                self.db.execute("update files set done_records = ? where path = ?", (count, path))
            for path, fingerprint in (fingerprints or {}).items():
                self.db.execute(
                    "update files set fingerprint = ? where path = ?",
                    (orjson.dumps(fingerprint).decode(), path),
                )
            if carried:
                self._add_carried(carried)

    def _add_carried(self, events: int) -> None:
        total = self.carried_duplicates() + events
        self.db.execute(
            "insert or replace into meta values ('carried_duplicates', ?)", (str(total),)
        )

    def reported_duplicates(self) -> None:
        """A summary is about to count what was carried: the next run must not count it again."""
        with self._writing():
            self.db.execute("delete from meta where key = 'carried_duplicates'")

    def adopt_in_doubt(self) -> None:
        """A new run starts: what dead runs had in flight stays in doubt until it is settled.

        Moved out of `inflight` because the new run numbers its batches from 1 again; each
        record's count grows by the copies its batch may have left on the server.
        """
        with self._writing(), self.db:
            self.db.execute("begin immediate")
            rows = self.db.execute("select lines, sends from inflight").fetchall()
            self.db.executemany(
                "insert into doubt (path, line, times) values (?, ?, ?)"
                " on conflict (path, line) do update set times = times + excluded.times",
                [(path, line, sends) for blob, sends in rows for path, line in decode_refs(blob)],
            )
            self.db.execute("delete from inflight")

    def compact(self) -> None:
        """Drop settled rows the watermarks have passed (keeps the file small on long runs)."""
        with self._writing(), self.db:
            self.db.execute("begin immediate")
            rows = self.db.execute(
                "select s.rowid, s.lines, f.done_line from settled s join files f using (path)"
            ).fetchall()
            stale = [
                (rowid,) for rowid, blob, mark in rows if max(unpack_lines(blob), default=0) <= mark
            ]
            self.db.executemany("delete from settled where rowid = ?", stale)


def _why(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
