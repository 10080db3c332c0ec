"""The run's counters and how they read: a plain text block, or JSON. The terminal's table
is drawn in cli/console.py, so the library loads no rendering package.

The JSON form (`--json`) is versioned (`schema_version`); each count has one meaning on every
kind of run: `requests` are HTTP requests made, retries included (none on a dry run or a
validate); `batches` are request bodies packed (on a dry run, the requests a fast server
would see); `bytes_sent` went over the wire, `bytes_would_send` is what a dry run or a
validate would have sent; `sent` says whether anything could have gone to a server.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

JSON_SCHEMA_VERSION = 1


def error_json(message: str, exit_code: int, *, dry_run: bool = False) -> dict[str, Any]:
    """`--json` for a run that ended before it could count anything (exit 2, 74, 75, ...)."""
    return {
        "schema_version": JSON_SCHEMA_VERSION,
        "error": message,
        "exit_code": exit_code,
        "dry_run": dry_run,
        "sent": False,
    }


@dataclass
class Summary:
    """Counts of one run. `users_*` count user objects as sent (one per user per request:
    a user whose events needed three requests counts three times); `users_distinct` counts
    each user once (distinct.py says how, at scale)."""

    records_read: int = 0
    records_invalid: int = 0
    events_read: int = 0  # events of the records that shaped into user parts
    users_distinct: int = 0  # distinct users (primary identifiers) among the events packed
    users_distinct_estimated: bool = False  # past distinct.EXACT_UP_TO: an estimate (~0.8%)
    users_sent: int = 0
    events_sent: int = 0
    users_accepted: int = 0
    events_accepted: int = 0
    users_rejected: int = 0
    events_rejected: int = 0
    users_undelivered: int = 0
    events_undelivered: int = 0
    requests: int = 0
    retries: int = 0
    bytes_sent: int = 0  # request bodies' bytes that went out, retries included
    bytes_would_send: int = 0  # dry run and validate: the bodies packed, sent nowhere
    batches: int = 0  # request bodies packed (a 413's halves are not new batches)
    possible_duplicate_events: int = 0
    concurrency_lowest: int | None = None  # in flight at most, at the server's worst
    grouping_buffer_mb: float | None = None  # the most it held, once requests lagged
    events_pending: int = 0  # with --state: not sent because of a stop; the next run sends them
    events_too_big: int = 0  # single events no request can carry: set aside, one row each
    events_unrecorded: int = 0  # their verdict could not be written (the rejected file failed)
    records_skipped: int = 0  # with --state: settled by an earlier run
    events_outside_window: int = 0  # --since/--until: read, counted, not sent, not set aside
    untimed_outside_window: int = 0  # of those, events without a timestamp
    records_outside_window: int = 0  # records none of whose events fell in the window
    events_without_timestamp: int = 0
    # Profile updates (records with identifiers and properties, no event: docs/profiles.md):
    # read = carried + held + sent as events (--profile-event) + pending (a stop, --state).
    profile_updates_read: int = 0
    profile_updates_carried: int = 0  # merged into a user object with events of the person
    profile_updates_held: int = 0  # no event took them: rejected file (or the state) holds them
    profile_updates_as_events: int = 0  # --profile-event: sent as events of that name
    profile_updates_pending: int = 0  # with --state, after a stop: the next run reads them again
    rejected_rows_held: int = 0  # rows of the rejected file that are held updates (not faults)
    elapsed_seconds: float = 0.0
    rejected_file: str | None = None
    rejected_rows: int = 0
    input_errors: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    warnings_before_send: list[str] = field(default_factory=list)  # the look-ahead's
    reasons: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    interrupted: str | None = None
    fatal: str | None = None
    dry_run: bool = False
    sent: bool = True
    exit_code: int = 0  # the run's outcome as the CLI's exit code (errors.Exit)
    files: list[dict[str, Any]] = field(default_factory=list)  # per input file, as read

    @property
    def events_per_second(self) -> float:
        """Accepted events a second on a send; records read a second on a dry run or validate."""
        events = self.events_accepted if self.sent and not self.dry_run else self.records_read
        return events / self.elapsed_seconds if self.elapsed_seconds > 0 else 0.0

    @property
    def unaccounted_events(self) -> int:
        """Events read that are neither accepted, set aside, nor pending: always 0 (the books
        balance on every path); a test asserts it after every failure."""
        if not self.sent or self.dry_run:
            return 0
        return self.events_read - (
            self.events_accepted
            + self.events_rejected
            + self.events_undelivered
            + self.events_too_big
            + self.events_pending
            + self.events_unrecorded
            + self.events_outside_window
        )

    @property
    def unaccounted_profile_updates(self) -> int:
        """Updates read that are neither carried, held, sent as events nor pending: always 0."""
        return self.profile_updates_read - (
            self.profile_updates_carried
            + self.profile_updates_held
            + self.profile_updates_as_events
            + self.profile_updates_pending
        )

    @property
    def complete(self) -> bool:
        """Every record arrived or was counted where it belongs. Held profile updates do not
        make a run incomplete: they are no fault of the input (docs/profiles.md)."""
        return not (
            self.rejected_rows - self.rejected_rows_held
            or self.input_errors
            or self.interrupted
            or self.fatal
            or self.records_invalid
        )

    def to_json(self) -> dict[str, Any]:
        data = {"schema_version": JSON_SCHEMA_VERSION, **asdict(self)}
        data["sent"] = self.sent and not self.dry_run
        data["reasons"] = dict(self.reasons.most_common())
        data["events_per_second"] = round(self.events_per_second, 1)
        data["elapsed_seconds"] = round(self.elapsed_seconds, 3)
        data["unaccounted_events"] = self.unaccounted_events
        data["unaccounted_profile_updates"] = self.unaccounted_profile_updates
        return data

    def rows(self) -> list[tuple[str, str]]:
        """The summary as label/value pairs, shared by the plain and the rich rendering."""
        out = [("records read", f"{self.records_read:,}")]
        if self.records_invalid:
            out.append(("invalid records (not sent)", f"{self.records_invalid:,}"))
        if self.users_distinct:
            approx = "~" if self.users_distinct_estimated else ""
            out.append(("distinct users", f"{approx}{self.users_distinct:,}"))
        if self.sent and not self.dry_run:
            out += [
                ("user objects / events sent", f"{self.users_sent:,} / {self.events_sent:,}"),
                (
                    "accepted user objects / events",
                    f"{self.users_accepted:,} / {self.events_accepted:,}",
                ),
                (
                    "rejected user objects / events",
                    f"{self.users_rejected:,} / {self.events_rejected:,}",
                ),
                (
                    "undelivered user objects / events",
                    f"{self.users_undelivered:,} / {self.events_undelivered:,}",
                ),
                ("requests (retries)", f"{self.requests:,} ({self.retries:,})"),
            ]
            if self.concurrency_lowest is not None and self.retries:
                out.append(("concurrency at its lowest", f"{self.concurrency_lowest}"))
            if self.grouping_buffer_mb is not None:
                out.append(("grouping buffer at most", f"{self.grouping_buffer_mb:,.1f} MB"))
            if self.events_outside_window:
                out.append(("events outside --since/--until", f"{self.events_outside_window:,}"))
            if self.records_skipped:
                out.append(("records done by earlier runs", f"{self.records_skipped:,}"))
            if self.events_pending:
                out.append(("events left for the next run", f"{self.events_pending:,}"))
            if self.possible_duplicate_events:
                out.append(("possible duplicate events", f"{self.possible_duplicate_events:,}"))
        elif self.dry_run:
            out += [
                ("would send user objects / events", f"{self.users_sent:,} / {self.events_sent:,}"),
                ("would send requests / bytes", f"{self.batches:,} / {self.bytes_would_send:,}"),
            ]
        if self.profile_updates_read:
            out.append(
                (
                    "profile updates carried / held",
                    f"{self.profile_updates_carried:,} / {self.profile_updates_held:,}",
                )
            )
            if self.profile_updates_as_events:
                as_events = f"{self.profile_updates_as_events:,}"
                out.append(("profile updates sent as events", as_events))
        out.append(("elapsed", f"{self.elapsed_seconds:.1f} s"))
        sending = self.sent and not self.dry_run
        if self.events_per_second > 0:  # a rate of nothing accepted would only mislead
            unit = "accepted events/s" if sending else "records/s"
            out.append(("rate", f"{self.events_per_second:,.0f} {unit}"))
        if self.rejected_file and self.rejected_rows:
            out.append(("rejected file", f"{self.rejected_file} ({self.rejected_rows:,} rows)"))
        return out

    def warnings(self) -> list[str]:
        out = list(self.notices)
        if self.events_without_timestamp:
            out.append(
                f"{self.events_without_timestamp:,} events have no timestamp: the server stamps "
                "them with the time of arrival (use --require-timestamp to set them aside)"
            )
        if self.untimed_outside_window:
            out.append(
                f"{self.untimed_outside_window:,} events have no timestamp, so no place in "
                "--since/--until: not sent (counted among the events outside the window)"
            )
        out += [f"input stopped early: {e}" for e in self.input_errors]
        if self.interrupted:
            out.append(self.interrupted)
        if self.fatal:
            out.append(self.fatal)
        if self.events_unrecorded:
            out.append(
                f"{self.events_unrecorded:,} events could not be written to the rejected file: "
                "they were not accepted; send their records again once the disk has room"
            )
        if self.profile_updates_held:
            out.append(
                f"{self.profile_updates_held:,} profile updates had no event of their person in "
                "this run to ride on (the API takes no user without an event): "
                + (
                    "the state keeps them for the next run"
                    if not self.rejected_rows_held
                    else "they are in the rejected file; send them with the person's next "
                    "events, or add --profile-event identify to send each as an event"
                )
            )
        if self.unaccounted_events or self.unaccounted_profile_updates:
            out.append(
                f"{self.unaccounted_events:,} events and {self.unaccounted_profile_updates:,} "
                "profile updates are not accounted for: this is a bug, please report it"
            )
        return out


def reason_of(message: str) -> str:
    """Group messages by kind: indexes, file positions, sizes and values do not make a new
    reason. A file name may hold spaces, even a newline: everything up to the first `:LINE: `
    goes."""
    import re

    text = re.sub(r"\[\d+\]", "[i]", message)
    text = re.sub(r"^.*?:\d+: ", "", text, flags=re.S)
    sizes = r"^(line too large: |event is |its user's identifiers and properties are )[\d,]+ bytes"
    text = re.sub(sizes, r"\1N bytes", text)
    text = re.sub(r"timestamp .* (is not a usable epoch time)", r"timestamp … \1", text)
    text = re.sub(r"timestamp .* (is not a time we can read)", r"timestamp … \1", text)
    # a mapping's "events[i]: NAME VALUE is not a number (from PATH)": the value varies
    text = re.sub(r"^((?:events\[i\]: )?[^\s']+) .+? (is not (?:a|an|JSON) )", r"\1 … \2", text)
    return text.split(" (", 1)[0]


def render_plain(summary: Summary) -> str:
    width = max(len(label) for label, _ in summary.rows())
    lines = [f"{label.ljust(width)}  {value}" for label, value in summary.rows()]
    if summary.reasons:
        lines.append("set aside, by reason:")
        lines += [f"  {n:>9,}  {reason}" for reason, n in summary.reasons.most_common(10)]
    if summary.examples:
        lines.append("first examples:")
        lines += [f"  {example}" for example in summary.examples]
    lines += [f"warning: {w}" for w in summary.warnings()]
    return "\n".join(lines)
