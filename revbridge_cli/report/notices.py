"""What the summary says when reading ended before the input did, and what to do next.

The promise differs with --state (rerun the same command: the journal knows) and without it
(everything up to that line was accepted or is in the rejected file; nothing after it was read),
so the wording lives in one place for every way a run stops early.
"""

from __future__ import annotations


def stopped_after(where: str, durable: bool) -> str:
    """A stop (a signal, a fatal answer, a failed output) after the record at `where`."""
    if durable:
        return (
            f"reading stopped after {where}; run the same command again to continue "
            "(the state file knows what was done)"
        )
    return (
        f"reading stopped after {where}: every record up to it was accepted or is in "
        "the rejected file; nothing after it was read"
    )


def limit_reached(limit: int, where: str, durable: bool) -> str:
    """`--limit N` read its N records; the last was at `where`."""
    again = (
        "run the same command again for the next ones" if durable else "nothing after it was read"
    )
    return f"--limit {limit:,} reached after {where}; {again}"
