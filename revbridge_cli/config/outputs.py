"""Outputs checked before the first request: the rejected file, the state file, the log file.

Each is opened only when first needed (the rejected file when the first row comes, the journal
after the inputs are checked), so a path in a missing directory used to surface mid-run, or
as a traceback, after requests had gone out. A run that cannot keep its books must not start:
every output path is checked here, up front, with the option or profile key that named it, and
with the command that fixes it.

The check is the real thing, not a guess from mode bits (root passes every `access` test, and a
read-only mount fails none of them): an existing file is opened for appending, which changes
nothing in it, and a directory gets an empty probe file, created and removed at once.
"""

from __future__ import annotations

import contextlib
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass

from revbridge_cli.errors import ConfigError


@dataclass(frozen=True, slots=True)
class Output:
    key: str  # the setting's name: rejected, state, log_file
    path: str
    source: str  # "flag --rejected", "profile NAME (FILE)", ...
    regular_only: bool = False  # the journal must be a regular file (SQLite, a lock beside it)


def _label(out: Output) -> str:
    if out.source.startswith("flag ") or not out.source or out.source == "-":
        return f"--{out.key.replace('_', '-')} {out.path}"
    return f"{out.key} = {out.path!r} (from {out.source})"


def _probe_directory(directory: str) -> str | None:
    """None if a file can be created in `directory`, else why not."""
    probe = os.path.join(directory, f".revbridge-probe-{os.getpid()}")
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return None  # someone's probe: the directory takes files
    except OSError as e:
        return f"cannot create a file in {directory} ({e.strerror or e})"
    os.close(fd)
    with contextlib.suppress(OSError):
        os.unlink(probe)
    return None


def problem(out: Output) -> str | None:
    """Why the run could not write `out.path`, or None."""
    path = out.path
    try:
        st = os.stat(path)
    except FileNotFoundError:
        st = None
    except OSError as e:
        return f"cannot use it ({e.strerror or e})"
    directory = os.path.dirname(os.path.abspath(path)) or "/"
    if st is not None:
        if stat.S_ISDIR(st.st_mode):
            return "is a directory: name a file"
        if out.regular_only and not stat.S_ISREG(st.st_mode):
            return "is not a regular file (a state file is a SQLite file)"
        if stat.S_ISREG(st.st_mode) or stat.S_ISCHR(st.st_mode):
            try:
                with open(path, "ab"):
                    pass
            except OSError as e:
                return f"cannot be written ({e.strerror or e})"
        if not out.regular_only:
            return None
        # SQLite writes STATE-wal and STATE-shm beside the file, and the lock is STATE.lock
        return _probe_directory(directory)
    if not os.path.exists(directory):
        return f"the directory {directory} does not exist (create it: mkdir -p {directory})"
    if not os.path.isdir(directory):
        return f"{directory} is not a directory"
    return _probe_directory(directory)


def check_outputs(
    paths: Mapping[str, str | None], sources: Mapping[str, str], *, state_used: bool
) -> None:
    """Raise ConfigError (exit 2) naming the first output the run could not write.

    `paths` maps rejected / state / log_file to the path given (None: not given). Without
    `--rejected` the default file is created in the current directory, so that is checked.
    """
    outputs: list[Output] = []
    rejected = paths.get("rejected")
    if rejected:
        outputs.append(Output("rejected", rejected, sources.get("rejected", "")))
    else:
        why = _probe_directory(os.getcwd())
        if why is not None:
            raise ConfigError(
                f"the rejected file would go in the current directory, but {why}: pass "
                "--rejected PATH"
            )
    state = paths.get("state")
    if state and state_used:
        outputs.append(Output("state", state, sources.get("state", ""), regular_only=True))
    log_file = paths.get("log_file")
    if log_file:
        outputs.append(Output("log_file", log_file, sources.get("log_file", "")))
    for out in outputs:
        why = problem(out)
        if why is not None:
            raise ConfigError(f"{_label(out)}: {why}")
