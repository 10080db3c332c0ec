"""The run's books: where each batch's fate and each set-aside record is written down.

Every batch ends here exactly once, settled (its verdict to the ledger and, with --state, to
the journal) or abandoned (a stop kept it from its verdict: pending in the journal, or an
undelivered row); every record set aside before sending too. An output that fails on the way
(the rejected file, the journal) is counted, never lost from the figures, and handed to the
run's `fail` so that the run stops. The run decides when to stop; the books only keep count.
"""

from __future__ import annotations

from collections.abc import Callable

from revbridge_cli.delivery.sender import Attempt, Outcome
from revbridge_cli.errors import OutputError, RevbridgeError
from revbridge_cli.pack.batch import Batch
from revbridge_cli.report.ledger import Ledger
from revbridge_cli.report.summary import Summary
from revbridge_cli.shape.parts import Invalid, Origin
from revbridge_cli.shape.profile import ProfileUpdate
from revbridge_cli.state.resume import Durable

# One line, naming both fixes (docs/profiles.md); `reason_of` groups the rows by what comes
# before " (".
HELD_MESSAGE = (
    "profile update held: no event of this person in the run to carry it (the API takes no "
    "user without an event): send it again with the person's next events, or with "
    "--profile-event identify to send it as an event"
)


class Books:
    def __init__(
        self,
        summary: Summary,
        ledger: Ledger,
        durable: Durable | None,
        *,
        fail: Callable[[RevbridgeError], None],
        progress: Callable[[], None],
    ) -> None:
        self.summary = summary
        self.ledger = ledger
        self.durable = durable
        self._fail = fail
        self._progress = progress

    def before_send(self, batch: Batch) -> None:
        if self.durable:
            self.durable.batch_out(batch)

    def attempted(self, attempt: Attempt) -> None:
        if self.durable:
            self.durable.attempted(attempt)  # the journal's duplicate count, per request
        self.ledger.attempt(attempt)

    def settle(self, batch: Batch, outcomes: list[Outcome], stopping: str | None) -> None:
        """A batch's verdict to the ledger and, with --state, to the journal. After a stop a
        batch that was not delivered stays for the next run (with --state)."""
        if self.durable and stopping and any(o.undelivered for o in outcomes):
            self.abandon(batch, f"not sent: {stopping}")
            return
        for outcome in outcomes:
            self.record(outcome)
        if self.durable:
            self.ledger.rejected.flush()  # before the journal says those records are done
            self.durable.batch_done(batch)
            self.durable.commit()

    def abandon(self, batch: Batch, why: str) -> None:
        """A batch a stop kept from its verdict: with --state the next run sends it, so it
        stays unsettled in the journal; without it, it goes to the rejected file."""
        if self.durable:
            self.summary.events_pending += batch.n_events
        else:
            self.record(Outcome(batch, undelivered=why))

    def record(self, outcome: Outcome) -> None:
        try:
            self.ledger.outcome(outcome)
        except OutputError as exc:  # the rejected file failed: stop, and count what is lost
            self.summary.events_unrecorded += outcome.batch.n_events - outcome.accepted_events
            self._fail(exc)
        self._progress()

    def set_aside(self, invalid: Invalid, origin: Origin) -> None:
        try:
            self.ledger.set_aside(invalid, origin)
        except OutputError as exc:
            if self.durable:  # its row is not in the file: the record stays for the next run
                self.durable.tracker.add_refs(origin, 1)
            self._fail(exc)

    def unsendable(self, invalid: Invalid, origin: Origin, events: int) -> None:
        """A part JSON cannot carry (pack/packer.py): set aside as a record no shape fits, so
        its events are not counted as events read."""
        self.summary.events_read -= events
        self.set_aside(invalid, origin)

    def hold(self, update: ProfileUpdate) -> None:
        """A profile update no event of its person carried, as a resendable row."""
        try:
            self.ledger.hold(HELD_MESSAGE, update.as_user(), update.origin)
        except OutputError as exc:  # counted where it was meant to be; the run ends with 74
            self.summary.profile_updates_held += 1
            self._fail(exc)

    def close(self) -> None:
        """Flush and close the outputs, the journal last; a failure stops nothing more but is
        the run's outcome (exit 74)."""
        try:
            self.ledger.rejected.flush()  # before the journal says those records are done
            if self.durable is not None:
                self.summary.records_skipped = self.durable.skipped_records
                try:
                    self.durable.close()
                finally:  # what the journal carried, and what its last commit settled
                    self.summary.possible_duplicate_events += self.durable.unreported_duplicates
            self.ledger.close()
        except OutputError as exc:
            self._fail(exc)
