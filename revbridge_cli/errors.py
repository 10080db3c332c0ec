"""Exit codes, in one place: each family of failure maps to one code (README "Exit codes").

The codes, the help text that lists them and the mapping from a finished run to its code sit
together so that they cannot drift apart; so do the error families the CLI turns into exit 2.
"""

from __future__ import annotations

from enum import IntEnum
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from revbridge_cli.summary import Summary


class Exit(IntEnum):
    OK = 0  # everything read was accepted
    INCOMPLETE = 1  # finished, but something was rejected or undelivered: all of it is in the file
    USAGE = 2  # usage, configuration or unreadable input
    AUTH = 3  # authentication refused by the server
    LOCKED = 75  # another live run holds the state file (EX_TEMPFAIL: try again later)
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM


EXIT_CODES_HELP = (
    "Exit codes: 0 everything accepted; 1 finished, but something was rejected or undelivered "
    "(all of it is in the rejected file); 2 usage, configuration or unreadable input; "
    "3 authentication refused; 75 another run holds the --state file; 130 interrupted (Ctrl-C); "
    "143 terminated (SIGTERM)."
)


def exit_code(summary: Summary, run: object) -> Exit:
    sender = getattr(run, "sender", None)
    if sender is not None and sender.fatal is not None:
        return Exit(sender.fatal.exit_code)
    if summary.interrupted:
        signum = getattr(run, "interrupt_signal", 2)
        return Exit.TERMINATED if signum == 15 else Exit.INTERRUPTED
    return Exit.OK if summary.complete else Exit.INCOMPLETE


class UsageError(Exception):
    """A problem the user fixes in the command line, the config or the input path (exit 2)."""


class ConfigError(UsageError):
    """A setting that cannot be used; the message is one line saying what to fix.

    A UsageError, so the CLI's one mapping of error families to exit codes gives it 2.
    """
