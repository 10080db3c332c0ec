"""The package's one exception hierarchy and its one table of exit codes.

Grouped by family, as httpx's `_exceptions.py` is, so that a caller (the CLI, a program using
the library) catches the family it cares about, and the CLI maps each family to one exit code
here and nowhere else (README "Exit codes"):

    RevbridgeError
    ├── UsageError ............ 2   the command line, a setting or an input path is wrong
    │   ├── ConfigError             a setting (flag, environment, profile) that cannot be used
    │   ├── InputError              an input that cannot be read (with file and line)
    │   │   └── RefusedInput            one we do not read at all (binary, Parquet on a pipe)
    │   └── StateError              a --state file that cannot be used (damaged, not a file)
    ├── LockedError ........... 75  another live run holds the --state file
    ├── OutputError ........... 74  the rejected file, the journal or the log cannot be written
    ├── AuthError ............. 3   the server refused the credentials (401/403)
    ├── UnreachableError ...... 69  the server never answered the first request
    ├── InternalError ......... 70  a bug: a part of the run failed in a way it should not
    └── RunAborted ............ 1   the Python API: the caller's records raised mid-run

A run that ends by itself uses `Exit.OK` / `Exit.INCOMPLETE`; a stop by signal uses the
signal's code (128 + its number), as shells do.

A base URL that cannot work, found at the first request that tries it (a 404/405, a host that
does not resolve, a certificate that does not verify, a TLS handshake that fails), is a
`ConfigError` (2), not `UnreachableError` (69): no retry and no later run mends it, the
configuration does (docs/configuration.md, "When the base URL cannot work"). 69 stays for a
server that may come back: refused, reset, timed out, a resolver that did not answer.
"""

from __future__ import annotations

import signal
from enum import IntEnum
from typing import Any


class Exit(IntEnum):
    OK = 0  # everything read was accepted
    INCOMPLETE = 1  # finished, but something was rejected or undelivered: all of it is in the file
    USAGE = 2  # usage, configuration or unreadable input
    AUTH = 3  # authentication refused by the server
    UNAVAILABLE = 69  # EX_UNAVAILABLE: the server could not be reached at all
    SOFTWARE = 70  # EX_SOFTWARE: an internal error
    IOERR = 74  # EX_IOERR: an output (rejected file, state, log) failed mid-run
    LOCKED = 75  # EX_TEMPFAIL: another live run holds the state file; try again later
    HANGUP = 128 + signal.SIGHUP  # the terminal went away (SSH dropped): like SIGTERM
    INTERRUPTED = 128 + signal.SIGINT  # Ctrl-C
    TERMINATED = 128 + signal.SIGTERM  # SIGTERM


class RevbridgeError(Exception):
    """Every error the package raises on purpose; its message is one line for the user."""

    exit_code: Exit = Exit.SOFTWARE


# ---- the user fixes the command, the configuration or the input (exit 2) ---------------------


class UsageError(RevbridgeError):
    """A problem the user fixes in the command line, the config or the input path (exit 2)."""

    exit_code = Exit.USAGE


class ConfigError(UsageError):
    """A setting that cannot be used; the message is one line saying what to fix."""


class InputError(UsageError):
    """An input that cannot be read (missing, unreadable, corrupt), with file and line."""

    def __init__(self, source: str, message: str, line: int | None = None) -> None:
        self.source = source
        self.line = line
        self.message = message
        shown = "".join(c if c.isprintable() else repr(c)[1:-1] for c in source)  # one line
        where = f"{shown}:{line}" if line is not None else shown
        super().__init__(f"{where}: {message}")


class RefusedInput(InputError):
    """An input refused for what it is (not text, Parquet on a pipe), before a record of it
    is read. A path is refused before the run starts; stdin only once it is read, and then
    the run stops there: exit 2 either way, as the same bytes in a file would be."""


class StateError(UsageError):
    """A --state file that cannot be used as a journal (damaged, not a file, not ours)."""


# ---- the environment, not the user's input ----------------------------------------------------


class LockedError(RevbridgeError):
    """Another live run holds this state file: cron tries again next time (exit 75)."""

    exit_code = Exit.LOCKED


class OutputError(RevbridgeError):
    """An output the run must keep (rejected file, journal, log file) cannot be written."""

    exit_code = Exit.IOERR


# ---- the server's verdict on the whole run ----------------------------------------------------


class AuthError(RevbridgeError):
    """The server refused the key or the customer id: nothing will pass until they are fixed."""

    exit_code = Exit.AUTH


class UnreachableError(RevbridgeError):
    """The server never answered (refused or timed out) through the whole retry policy."""

    exit_code = Exit.UNAVAILABLE


class InternalError(RevbridgeError):
    """A part of the run failed unexpectedly; the run stops and keeps the books."""

    exit_code = Exit.SOFTWARE


class RunAborted(RevbridgeError):
    """The records a program handed to `send_records` raised: reading stopped there and the
    run ended in order (what was read sent or set aside). `result` is that run's `Result`
    (typed loosely: the API's class sits above this leaf); `__cause__` is the exception."""

    exit_code = Exit.INCOMPLETE

    def __init__(self, message: str, result: Any) -> None:
        super().__init__(message)
        self.result = result


SIGNAL_EXITS: dict[int, Exit] = {
    signal.SIGINT: Exit.INTERRUPTED,
    signal.SIGTERM: Exit.TERMINATED,
    signal.SIGHUP: Exit.HANGUP,
}


def exit_for_signal(signum: int) -> Exit:
    return SIGNAL_EXITS.get(signum, Exit.TERMINATED)


_MEANING: dict[Exit, str] = {
    Exit.OK: "everything accepted",
    Exit.INCOMPLETE: "finished, but something was rejected or undelivered (all of it is in the "
    "rejected file)",
    Exit.USAGE: "usage, configuration or unreadable input",
    Exit.AUTH: "authentication refused",
    Exit.UNAVAILABLE: "the server could not be reached",
    Exit.SOFTWARE: "internal error",
    Exit.IOERR: "an output (rejected file, state, log) could not be written",
    Exit.LOCKED: "another run holds the --state file",
    Exit.HANGUP: "hang-up (SIGHUP)",
    Exit.INTERRUPTED: "interrupted (Ctrl-C)",
    Exit.TERMINATED: "terminated (SIGTERM)",
}

# The codes each command can return, and so the ones its --help lists (tests/test_docs.py
# checks the help against this table). validate sends nothing (no 3, 69) and takes no state
# (no 75); check makes one request (docs/commands.md, "revbridge check").
COMMAND_EXITS: dict[str, tuple[Exit, ...]] = {
    "send": tuple(Exit),
    "validate": (
        Exit.OK, Exit.INCOMPLETE, Exit.USAGE, Exit.SOFTWARE, Exit.IOERR,
        Exit.HANGUP, Exit.INTERRUPTED, Exit.TERMINATED,
    ),
    "check": (Exit.OK, Exit.USAGE, Exit.AUTH, Exit.INTERRUPTED),
    "config": (Exit.OK, Exit.USAGE),
    "state show": (Exit.OK, Exit.USAGE),
}  # fmt: skip
_CHECK_MEANING = {
    Exit.OK: "the key, customer id and server are good",
    Exit.USAGE: "usage or configuration, the server cannot be reached, or what answers is not "
    "the Events API",
    Exit.AUTH: "the server refused the credentials",
}
# validate sends nothing and keeps no state or log: only the rejected file is written.
_VALIDATE_MEANING = {
    Exit.OK: "every record is valid",
    Exit.INCOMPLETE: "something is invalid (all of it is in the rejected file) or an input "
    "could not be read to its end",
    Exit.IOERR: "the rejected file could not be written",
}
_OTHER_MEANING = {
    "validate": _VALIDATE_MEANING,
    "config": {Exit.OK: "shown"},
    "state show": {Exit.OK: "shown", Exit.USAGE: "no such state file, or not a state file"},
    "check": _CHECK_MEANING,
}


def exit_codes_help(command: str) -> str:
    """The `Exit codes: ...` paragraph of a command's --help, from `COMMAND_EXITS`."""
    words = {**_MEANING, **_OTHER_MEANING.get(command, {})}
    return "Exit codes: " + "; ".join(f"{int(c)} {words[c]}" for c in COMMAND_EXITS[command]) + "."


EXIT_CODES_HELP = exit_codes_help("send")
