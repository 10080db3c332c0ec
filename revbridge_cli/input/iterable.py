"""Records handed over by a program (`send_records`), read as a file's records would be.

The run reads every input through the same loop; a file comes through `reader.Reader`, an
iterable through this, with the same attributes the loop and the journal look at. A value the
API cannot carry (not a mapping, or not JSON-serializable: a `Decimal`, a `set`) becomes an
error record, set aside with its repr, like a bad line of a file: never an exception out of
the middle of a run. Nor is the caller's own exception (a generator that fails after 50
records): `CallerRecords` ends the reading there as a file's read error does, so what was read
is still sent and counted, and keeps the exception for the API to raise once the run has ended.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

import orjson

from revbridge_cli.errors import InputError
from revbridge_cli.input.raw import RAW_PREFIX_CHARS, RawRecord, type_name

SOURCE_NAME = "<records>"
_SAID_CHARS = 200  # of the caller's exception, in the message


class CallerRecords:
    """The caller's iterable, read once; `error` is what its iterator raised, if it did."""

    def __init__(self, records: Iterable[Any]) -> None:
        self._records = records
        self.error: Exception | None = None

    def __iter__(self) -> Iterator[Any]:
        n = 0
        try:
            for value in self._records:
                n += 1
                yield value
        except Exception as exc:  # the caller's code: anything; BaseException still ends all
            self.error = exc
            said = " ".join(str(exc).split())[:_SAID_CHARS]  # one line, and short
            what = f"{type(exc).__name__}: {said}" if said else type(exc).__name__
            message = f"the records raised {what}; nothing after it was read"
            raise InputError(SOURCE_NAME, message, n + 1) from exc


class IterableSource:
    """One pass over the caller's records; `line` is the record's 1-based position."""

    total_bytes: int | None = None  # unknown: progress counts records, not bytes
    held_back_bytes = 0
    end_offset = 0
    bytes_read = 0

    def __init__(self, records: Iterable[Any]) -> None:
        self._records = records
        self.lines = 0

    def __iter__(self) -> Iterator[RawRecord]:
        n = 0
        for value in self._records:
            n += 1
            self.lines = n
            if type(value) is not dict:
                if isinstance(value, Mapping):
                    value = dict(value)
                else:
                    yield _bad(n, f"not a JSON object (got {type_name(value)})", value)
                    continue
            try:
                orjson.dumps(value)  # the packer serializes it later: fail here, with the line
            except TypeError as exc:
                yield _bad(n, f"not JSON-serializable: {exc}", value)
                continue
            yield RawRecord(SOURCE_NAME, n, 0, value)


def _bad(n: int, message: str, value: Any) -> RawRecord:
    return RawRecord(SOURCE_NAME, n, 0, None, message, repr(value)[:RAW_PREFIX_CHARS])
