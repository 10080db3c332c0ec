"""The rejected file: one NDJSON row per user set aside, in a form `revbridge send` takes back.

Created only when the first row comes, and a default name never overwrites an existing file:
a cron job that runs every few minutes must not destroy the last run's rows.
"""

from __future__ import annotations

import contextlib
import os
import stat
from datetime import datetime
from typing import Any

import orjson

from revbridge_cli.errors import OutputError
from revbridge_cli.text import clean, scrub_bytes


def default_name(now: datetime) -> str:
    return f"rejected-{now.strftime('%Y%m%dT%H%M%SZ')}.ndjson"


def row(
    message: str,
    *,
    kind: str,
    source: str,
    user: Any = None,
    user_index: int | None = None,
    trace_id: str | None = None,
    raw: str | None = None,
    source_row: dict[str, Any] | None = None,
    origin: str | None = None,
) -> dict[str, Any]:
    """One row. `kind` says who set it aside: `invalid` (our check, or unreadable input),
    `rejected` (the server, by userIndex), `undelivered` (never answered with a verdict) or
    `held` (a profile update no event of its person carried: docs/profiles.md).
    `source` is where this run read it; `origin` where the very first run did, through any
    number of fix-and-resend rounds (the same as `source` the first time). `source_row` is the
    record as read when a mapping could not make a user of it: sent back with the same
    options, it goes through the mapping again."""
    out: dict[str, Any] = {
        "userIndex": user_index,
        "message": clean(message),  # one line, whoever wrote it
        "trace_id": trace_id,
        "kind": kind,
        "user": user,
        "source": source,
        "origin": origin or source,
    }
    if raw is not None:
        out["raw"] = raw
    if source_row is not None:
        out["row"] = source_row
    return out


class RejectedFile:
    """Lazily opened; an explicit `--rejected PATH` is appended to, a default name is new.

    Rows are written whole or not at all: each `write` is one `os.write` loop of complete
    lines straight to the file (no buffer that could be half flushed), and when the disk
    refuses part of it (ENOSPC, EFBIG, EIO) the file is cut back to the end of the last
    complete row and `OutputError` says so. `rows` counts only rows that are in the file, so
    the summary never claims a row the disk did not take.
    """

    def __init__(self, path: str | None, now: datetime) -> None:
        self.explicit = path is not None
        self.path = path or default_name(now)
        self.rows = 0
        self.failed: OutputError | None = None
        self._fd: int | None = None
        self._regular = False
        self._end = 0  # the end of the last complete row (regular files)

    def write(self, data: dict[str, Any]) -> None:
        self.write_rows([data])

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """Append `rows` as one unit: all of them are in the file afterwards, or none."""
        if not rows:
            return
        if self.failed is not None:
            raise self.failed
        # The last guard: no row leaves with a key in it, whatever path its text came by.
        payload = scrub_bytes(b"".join(orjson.dumps(r) + b"\n" for r in rows))
        if self._fd is None:
            self._fd = self._open()
        view = memoryview(payload)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
        except OSError as exc:
            self._cut_back()
            self.failed = OutputError(
                f"cannot write the rejected file {self.path}: {exc.strerror or exc}; "
                f"it holds {self.rows:,} complete rows, none cut in half"
            )
            raise self.failed from None
        self._end += len(payload)
        self.rows += len(rows)

    def _cut_back(self) -> None:
        if self._fd is not None and self._regular:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._end)

    def _open(self) -> int:
        try:
            fd = self._open_fd()
        except OSError as exc:
            self.failed = OutputError(
                f"cannot open the rejected file {self.path}: {exc.strerror or exc}"
            )
            raise self.failed from None
        st = os.fstat(fd)
        self._regular = stat.S_ISREG(st.st_mode)
        self._end = st.st_size if self._regular else 0
        return fd

    def _open_fd(self) -> int:
        if self.explicit:
            return os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        base, ext = os.path.splitext(self.path)
        candidate, n = self.path, 1
        while True:
            try:
                return os.open(candidate, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                n += 1
                candidate = f"{base}-{n}{ext}"
                self.path = candidate

    def flush(self) -> None:
        """Rows must be on disk before the journal says their records are done.

        Only a regular file is synced: `/dev/null`, a terminal or a pipe has nothing to sync.
        """
        if self._fd is None or not self._regular:
            return
        try:
            os.fsync(self._fd)
        except OSError as exc:
            self.failed = self.failed or OutputError(
                f"cannot write the rejected file {self.path}: {exc.strerror or exc}"
            )
            raise self.failed from None

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
