"""The rejected file: one NDJSON row per user set aside, in a form `revbridge send` takes back.

Created only when the first row comes, and a default name never overwrites an existing file:
a cron job that runs every few minutes must not destroy the last run's rows.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import IO, Any

import orjson

from revbridge_cli.errors import OutputError


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
) -> dict[str, Any]:
    """One row. `kind` says who set it aside: `invalid` (our check, or unreadable input),
    `rejected` (the server, by userIndex) or `undelivered` (never answered with a verdict)."""
    out: dict[str, Any] = {
        "userIndex": user_index,
        "message": message,
        "trace_id": trace_id,
        "kind": kind,
        "user": user,
        "source": source,
    }
    if raw is not None:
        out["raw"] = raw
    return out


class RejectedFile:
    """Lazily opened; an explicit `--rejected PATH` is appended to, a default name is new."""

    def __init__(self, path: str | None, now: datetime) -> None:
        self.explicit = path is not None
        self.path = path or default_name(now)
        self.rows = 0
        self._file: IO[bytes] | None = None

    def write(self, data: dict[str, Any]) -> None:
        try:
            if self._file is None:
                self._file = self._open()
            self._file.write(orjson.dumps(data) + b"\n")
        except OSError as exc:
            raise self._failed(exc) from None
        self.rows += 1

    def _failed(self, exc: OSError) -> OutputError:
        return OutputError(f"cannot write the rejected file {self.path}: {exc.strerror or exc}")

    def _open(self) -> IO[bytes]:
        if self.explicit:
            return open(self.path, "ab")
        base, ext = os.path.splitext(self.path)
        candidate, n = self.path, 1
        while True:
            try:
                return open(candidate, "xb")
            except FileExistsError:
                n += 1
                candidate = f"{base}-{n}{ext}"
                self.path = candidate

    def flush(self) -> None:
        """Rows must be on disk before the journal says their records are done."""
        if self._file is not None:
            try:
                self._file.flush()
                os.fsync(self._file.fileno())
            except OSError as exc:
                raise self._failed(exc) from None

    def close(self) -> None:
        if self._file is not None:
            file, self._file = self._file, None
            try:
                file.close()
            except OSError as exc:
                raise self._failed(exc) from None
