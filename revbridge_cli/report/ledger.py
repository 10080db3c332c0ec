"""The ledger: where every user's fate is written down, as counters and as rejected rows.

Whatever happens to a record (set aside before sending, rejected by the server, undelivered,
accepted) passes through here exactly once, so the summary's figures and the rejected file
always agree.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Protocol

import orjson

from revbridge_cli.delivery.sender import Attempt, Outcome
from revbridge_cli.pack.batch import Batch
from revbridge_cli.report.rejected import RejectedFile, row
from revbridge_cli.report.summary import Summary, reason_of
from revbridge_cli.shape.parts import Invalid, Origin

_MAX_EXAMPLES = 5
_MAX_SOURCES = 20


class RejectedSink(Protocol):
    """Where set-aside rows go: the rejected file, or a list for a program (the Python API)."""

    rows: int

    @property
    def path(self) -> str | None: ...

    def write(self, data: dict[str, Any]) -> None: ...

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        """All of `rows` as one unit (a batch's): all kept, or none (OutputError)."""
        ...

    def flush(self) -> None: ...

    def close(self) -> None: ...


class RejectedRows:
    """Rows kept in memory, for `send_records(..., rejected=None)`: a program gets them back."""

    def __init__(self) -> None:
        self.path: str | None = None
        self.kept: list[dict[str, Any]] = []
        self.rows = 0

    def write(self, data: dict[str, Any]) -> None:
        self.kept.append(data)
        self.rows += 1

    def write_rows(self, rows: list[dict[str, Any]]) -> None:
        self.kept.extend(rows)
        self.rows += len(rows)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass


class Ledger:
    def __init__(
        self, summary: Summary, rejected_path: str | None, sink: RejectedSink | None = None
    ) -> None:
        self.summary = summary
        self.rejected: RejectedSink = sink or RejectedFile(rejected_path, datetime.now(UTC))
        self.files: list[str] = []  # file number -> name, for `source`
        # (file number, line) of a rejected row read back -> its `origin`: the first input's
        # file and line, kept through every fix-and-resend round
        self.lineage: dict[tuple[int, int], str] = {}

    def source(self, origins: Iterable[Origin]) -> str:
        """`file:line`, several joined; a user merged from thousands of records is cut short."""
        names = [f"{self.files[f]}:{line}" for f, line, _ in origins]
        if len(names) > _MAX_SOURCES:
            names = [*names[:_MAX_SOURCES], f"… (+{len(names) - _MAX_SOURCES} more)"]
        return ", ".join(names)

    def note_lineage(self, origin: Origin, record: dict[str, Any]) -> None:
        """A record that is a row of an earlier rejected file: remember where it came from."""
        if "userIndex" not in record or "message" not in record:
            return
        first = record.get("origin") or record.get("source")
        if isinstance(first, str) and first:
            self.lineage[(origin[0], origin[1])] = first

    def origin(self, origins: Iterable[Origin]) -> str:
        """`origin` of a row: the first input's `file:line` of each record, cut as `source`."""
        lineage = self.lineage
        names = [lineage.get((f, line)) or f"{self.files[f]}:{line}" for f, line, _ in origins]
        if len(names) > _MAX_SOURCES:
            names = [*names[:_MAX_SOURCES], f"… (+{len(names) - _MAX_SOURCES} more)"]
        return ", ".join(names)

    def set_aside(self, invalid: Invalid, origin: Origin) -> None:
        """A record that never went out: unreadable, invalid, or too big for any request.

        Counted once its row is in the file (the row first, so a full disk leaves the
        summary and the file agreeing)."""
        self.rejected.write(
            row(
                invalid.message,
                kind="invalid",
                source=self.source([origin]),
                user=invalid.user,
                raw=invalid.raw,
                source_row=invalid.row,
                origin=self.origin([origin]) if self.lineage else None,
            )
        )
        self.summary.records_invalid += 1
        self._note_reason(invalid.message, origin)

    def hold(self, message: str, user: dict[str, Any], origin: Origin) -> None:
        """A profile update no event carried: a resendable row of kind `held`, counted apart
        from the set-asides (it is not a fault: docs/profiles.md, "Exit code")."""
        self.rejected.write(
            row(
                message,
                kind="held",
                source=self.source([origin]),
                user=user,
                origin=self.origin([origin]) if self.lineage else None,
            )
        )
        self.summary.profile_updates_held += 1
        self.summary.rejected_rows_held += 1

    def _note_reason(self, message: str, origin: Origin | None) -> None:
        self.summary.reasons[reason_of(message)] += 1
        if len(self.summary.examples) < _MAX_EXAMPLES:
            where = self.source([origin]) if origin else ""
            text = message if message.startswith(where) else f"{where}: {message}"
            self.summary.examples.append(text)

    def would_send(self, batch: Batch) -> None:
        """Dry run and validate: what would have gone out."""
        summary = self.summary
        summary.users_sent += batch.n_users
        summary.events_sent += batch.n_events
        summary.bytes_would_send += batch.size

    def attempt(self, attempt: Attempt) -> None:
        self.summary.requests += 1
        self.summary.bytes_sent += attempt.body_bytes
        if attempt.retry_in is not None:
            self.summary.retries += 1

    def outcome(self, outcome: Outcome) -> None:
        """A batch's verdict: counters, and a row for every user that was not accepted."""
        summary = self.summary
        batch = outcome.batch
        summary.users_sent += batch.n_users
        summary.events_sent += batch.n_events
        summary.possible_duplicate_events += outcome.resent_in_doubt * batch.n_events
        if not outcome.undelivered:  # the server's verdict, whatever becomes of the file
            summary.users_accepted += outcome.accepted_users
            summary.events_accepted += outcome.accepted_events
        # The batch's rows go to the file as one unit before they are counted: a full disk
        # then leaves neither half a batch in the file nor a count the file does not back.
        if outcome.undelivered:
            why = outcome.undelivered
            rows = [
                self._user_row(batch, i, why, "undelivered", outcome) for i in range(batch.n_users)
            ]
        else:
            rows = [
                self._user_row(batch, index, message, "rejected", outcome)
                for index, message in sorted(outcome.rejected.items())
            ]
        self.rejected.write_rows(rows)
        if outcome.undelivered:
            summary.users_undelivered += batch.n_users
            summary.events_undelivered += batch.n_events
            for index in range(batch.n_users):
                self._note_user(batch, index, outcome.undelivered)
            return
        for index, message in sorted(outcome.rejected.items()):
            summary.users_rejected += 1
            summary.events_rejected += batch.users[index].n_events
            self._note_user(batch, index, message)

    def _note_user(self, batch: Batch, index: int, message: str) -> None:
        user = batch.users[index]
        self._note_reason(message, user.origins[0] if user.origins else None)

    def _user_row(
        self, batch: Batch, index: int, message: str, kind: str, outcome: Outcome
    ) -> dict[str, Any]:
        user = batch.users[index]
        return row(
            message,
            kind=kind,
            user_index=index if kind == "rejected" else None,
            trace_id=outcome.trace_id,
            user=orjson.loads(batch.user_data(index)),
            source=self.source(user.origins),
            origin=self.origin(user.origins) if self.lineage else None,
        )

    def close(self) -> None:
        try:
            self.rejected.flush()
        finally:
            self.rejected.close()
            self.summary.rejected_file = self.rejected.path if self.rejected.rows else None
            self.summary.rejected_rows = self.rejected.rows
