"""The driver's side of an engine job: the tasks' reports merged into one `Result`.

Counts add up (events accepted, rejected rows, requests...), so the merged summary reads like
one run of the CLI. Two figures are the engine's own. A partition the engine ran more than
once (a task that died and was re-run) may have had some of its events stored by the attempt
that died: the API has no idempotency key, so those are counted as possible duplicates,
bounded by what the last attempt got accepted (an event stored twice was accepted both times).
And the exit code is the worst partition's: a stop (a wrong key, an unreachable server) over
"something was rejected" over success. Pure: reports in, a result out.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from revbridge_cli.api import Result
from revbridge_cli.report.summary import Summary

_FIELDS = {f.name: f for f in fields(Summary)}
_NOT_SUMMED = frozenset(
    ("exit_code", "concurrency_lowest", "grouping_buffer_mb", "elapsed_seconds",
     "rejected_file", "dry_run", "sent", "interrupted", "fatal")
)  # fmt: skip
_MAX_EXAMPLES = 5


@dataclass(frozen=True)
class EngineResult(Result):
    """`Result` for a whole job, with what the engine did to get there."""

    partitions: int = 0
    partitions_retried: tuple[int, ...] = ()  # partitions the engine attempted more than once

    def as_dict(self) -> dict[str, Any]:
        data = super().as_dict()
        data["partitions"] = self.partitions
        data["partitions_retried"] = list(self.partitions_retried)
        return data


def summary_from_json(data: Mapping[str, Any]) -> Summary:
    """A task's `as_dict()` back as a Summary (derived keys such as `events_per_second` go)."""
    given = {k: v for k, v in data.items() if k in _FIELDS}
    given["reasons"] = Counter(data.get("reasons") or {})
    return Summary(**given)


def merge(
    reports: Iterable[Mapping[str, Any]],
    *,
    elapsed_seconds: float,
    rejected_dir: str | None,
) -> EngineResult:
    """One result for the job; `reports` are `task.run_partition`'s, in any order."""
    ordered = sorted(reports, key=lambda r: int(r["partition"]))
    total = Summary(elapsed_seconds=elapsed_seconds, rejected_file=rejected_dir)
    kept: list[dict[str, Any]] | None = None if rejected_dir is not None else []
    retried: list[int] = []
    codes: list[int] = []
    for report in ordered:
        part = summary_from_json(report["summary"])
        where = f"partition {report['partition']}: "
        _add(total, part, where)
        codes.append(part.exit_code)
        if (report.get("attempt") or 0) > 0:
            retried.append(int(report["partition"]))
            total.possible_duplicate_events += part.events_accepted
        if kept is not None:
            kept.extend(report.get("rejected_rows") or [])
    if ordered:
        first = summary_from_json(ordered[0]["summary"])
        total.dry_run, total.sent = first.dry_run, first.sent
    total.exit_code = worst_exit_code(codes)
    if retried:
        total.notices.append(
            f"{len(retried)} partition(s) were run more than once by the engine (a task "
            "failed and was re-run): their events may be stored twice; deduplicate on "
            "event_id_property"
        )
    return EngineResult(total, kept, len(ordered), tuple(retried))


def worst_exit_code(codes: Iterable[int]) -> int:
    """A stop (2, 3, 69, 70, 74, ...) first, in partition order; then 1; else 0."""
    codes = list(codes)
    stops = [c for c in codes if c not in (0, 1)]
    if stops:
        return stops[0]
    return 1 if 1 in codes else 0


def _add(total: Summary, part: Summary, where: str) -> None:
    for name in _FIELDS:
        if name in _NOT_SUMMED:
            continue
        value = getattr(part, name)
        if isinstance(value, int) and not isinstance(value, bool):
            setattr(total, name, getattr(total, name) + value)
    total.reasons.update(part.reasons)
    room = _MAX_EXAMPLES - len(total.examples)
    total.examples.extend(part.examples[: max(0, room)])
    total.input_errors.extend(where + e for e in part.input_errors)
    total.notices.extend(where + n for n in part.notices)
    total.warnings_before_send.extend(where + w for w in part.warnings_before_send)
    if part.fatal and total.fatal is None:
        total.fatal = where + part.fatal
    if part.interrupted and total.interrupted is None:
        total.interrupted = where + part.interrupted
    if part.concurrency_lowest is not None:
        low = total.concurrency_lowest
        total.concurrency_lowest = min(
            low if low is not None else part.concurrency_lowest, part.concurrency_lowest
        )
    if part.grouping_buffer_mb is not None:
        total.grouping_buffer_mb = max(total.grouping_buffer_mb or 0.0, part.grouping_buffer_mb)
