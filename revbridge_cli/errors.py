"""Exit codes, in one place: each family of failure maps to one code (README "Exit codes")."""

from __future__ import annotations

from enum import IntEnum


class Exit(IntEnum):
    OK = 0  # everything read was accepted
    INCOMPLETE = 1  # finished, but something was rejected or undelivered: all of it is in the file
    USAGE = 2  # usage, configuration or unreadable input
    AUTH = 3  # authentication refused by the server
    LOCKED = 75  # another live run holds the state file (EX_TEMPFAIL: try again later)
    INTERRUPTED = 130  # Ctrl-C (SIGINT)
    TERMINATED = 143  # SIGTERM


class UsageError(Exception):
    """A problem the user fixes in the command line, the config or the input path (exit 2)."""
