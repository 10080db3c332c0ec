"""Whether a `--state` path may be used as a journal, decided before a byte of it is written.

Why: opening a file with SQLite and running the schema's `create table if not exists` turns
any SQLite database into a journal (another program's `app.db` got six tables and the run
exited 0). So the path is looked at first, read-only: a missing or empty file, an SQLite
database with no tables (a journal created by a run killed at once), or a journal of this or
an older schema may be opened for writing; anything else is a `StateError` (exit 2) naming
the file and what to do, and the file is left exactly as it was.
"""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from revbridge_cli.errors import StateError

SQLITE_MAGIC = b"SQLite format 3\x00"
# The tables of a journal written before `meta` named its schema.
JOURNAL_TABLES = frozenset({"meta", "files", "settled", "inflight", "doubt", "runs"})


def check_state_path(path: str, schema_version: int) -> None:
    """Raise `StateError` unless `path` is absent, empty, or a journal this version can read."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StateError(f"state file {path} cannot be read: {exc.strerror or exc}") from None
    if stat.S_ISDIR(st.st_mode):
        raise StateError(
            f"state file {path} is a directory, not a file; name a file for --state "
            f"(for example {os.path.join(path, 'revbridge.state')})"
        )
    if not stat.S_ISREG(st.st_mode):
        raise StateError(f"state file {path} is not a regular file; name a file for --state")
    if st.st_size == 0:
        return
    try:
        with open(path, "rb") as f:
            head = f.read(len(SQLITE_MAGIC))
    except OSError as exc:
        raise StateError(f"state file {path} cannot be read: {exc.strerror or exc}") from None
    if head != SQLITE_MAGIC:
        raise StateError(
            f"state file {path} is damaged or not a revbridge state (not an SQLite database); "
            "it was left as it is: move it aside to start over (every input would then be read "
            "as new), or name another file with --state"
        )
    tables, schema = _look(path)
    # A journal names its schema in `meta` (tables a later version adds are then its own);
    # one from before that has only journal tables.
    ours = "files" in tables and (schema is not None or tables <= JOURNAL_TABLES)
    if tables and not ours:
        names = sorted(tables - JOURNAL_TABLES) or sorted(tables)
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise StateError(
            f"state file {path} is another program's SQLite database, not a revbridge state "
            f"(its tables: {shown}); it was left as it is: name a new file with --state"
        )
    if schema is not None and schema > schema_version:
        raise StateError(
            f"state file {path} was written by a newer revbridge (state schema {schema}; this "
            f"version reads up to {schema_version}); it was left as it is: run the newer "
            "version, or name another file with --state"
        )


def _look(path: str) -> tuple[set[str], int | None]:
    """The database's tables and its journal schema number, read without writing anything.

    A database SQLite cannot read is left to `Journal.open`, which calls it damaged."""
    try:
        db = sqlite3.connect(Path(path).absolute().as_uri() + "?mode=ro", uri=True)
    except sqlite3.Error:
        return set(JOURNAL_TABLES), None
    try:
        tables = {
            name for (name,) in db.execute("select name from sqlite_master where type = 'table'")
        }
        if not tables:  # ours only if nothing else marks it: a view, a version, an app id
            (objects,) = db.execute("select count(*) from sqlite_master").fetchone()
            (version,) = db.execute("pragma user_version").fetchone()
            (app,) = db.execute("pragma application_id").fetchone()
            if objects or version or app:
                return {"(none, but marked by another program)"}, None
        schema: int | None = None
        if "meta" in tables:
            row = db.execute("select value from meta where key = 'schema'").fetchone()
            if row is not None and str(row[0]).isdigit():
                schema = int(row[0])
        return tables, schema
    except sqlite3.Error:
        return set(JOURNAL_TABLES), None
    finally:
        db.close()
