"""Byte streams under the reader: counting, gunzipping, un-reading, and format sniffing.

Kept apart from `reader` so that the record logic there reads as record logic; nothing here
knows about records.
"""

from __future__ import annotations

import gzip
import io
import re
import zlib
from typing import Any, BinaryIO, Protocol

import orjson

from revbridge_cli.errors import Exit, RevbridgeError

BOM = b"\xef\xbb\xbf"
_USERS_BODY = re.compile(rb'\{[ \t\r]*"users"[ \t\r]*:')
WS = b" \t\r\n"


class Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


class StreamError(RevbridgeError):
    """Reading the underlying stream failed (truncated or corrupt gzip, I/O error); the reader
    turns it into an `InputError` with the file and line, so it never reaches a caller."""

    exit_code = Exit.USAGE


class ReadInterrupted(BaseException):
    """Raised into a read that waits on its input (a quiet pipe) to stop it; a BaseException,
    like KeyboardInterrupt, so that no `except Exception` between here and the run eats it."""


class ReadGate:
    """Says when the run is waiting on its input rather than working on it.

    A quiet pipe (`zcat big.gz | revbridge send -`) blocks the thread that reads it, and with
    it the event loop. A stop request (a signal handler, which runs on that thread between two
    bytecodes and interrupts the system call) looks at `waiting` and, when it is set, raises
    `ReadInterrupted` into the read, so that the stop takes effect now rather than at the
    pipe's next byte. Nothing here is process-global: whoever handles the signal decides.
    """

    __slots__ = ("waiting",)

    def __init__(self) -> None:
        self.waiting = False


class CountingFile:
    """The underlying file, counting the bytes taken from it (for byte-based progress).

    Same idea as sqlite-utils' progress wrapper: counting at the bottom of the stack works for
    every format and for gzip, and costs one addition per 64 KiB (or per 8 KiB compressed).
    """

    __slots__ = ("_f", "_gate", "_pushback", "bytes_read")

    def __init__(self, f: BinaryIO, gate: ReadGate | None = None) -> None:
        self._f = f
        self._gate = gate or ReadGate()
        self._pushback = b""
        self.bytes_read = 0

    def read(self, n: int = -1, /) -> bytes:
        if self._pushback:
            data = self._pushback[:n] if n >= 0 else self._pushback
            self._pushback = self._pushback[len(data) :]
            return data
        gate = self._gate
        gate.waiting = True
        try:
            data = self._f.read(n)
        except OSError as e:
            raise StreamError(f"read error ({e.strerror or e})") from None
        finally:
            gate.waiting = False
        self.bytes_read += len(data)
        return data

    def seek(self, offset: int, /) -> int:
        """Refused: gzip seeks its file only to rewind, and reading here only goes forward."""
        raise io.UnsupportedOperation("an input stream is read once, forward")

    def peek(self, n: int) -> bytes:
        """Return up to `n` bytes without consuming them (works on pipes too)."""
        data = read_up_to(self, n)
        self._pushback = data + self._pushback
        return data


class Gunzip:
    """Decompress transparently, turning the many ways gzip can fail into `StreamError`."""

    __slots__ = ("_gz",)

    def __init__(self, raw: CountingFile) -> None:
        self._gz = gzip.GzipFile(fileobj=raw, mode="rb")

    def read(self, n: int = -1, /) -> bytes:
        # read1, not read: read(n) loses what it decompressed so far when the stream breaks
        # before n bytes, and those are the complete lines before the truncation point.
        try:
            return self._gz.read1(n)
        except StreamError:
            raise
        except (EOFError, OSError, zlib.error):
            raise StreamError("gzip stream is truncated or corrupt") from None


class Broken:
    """A stream that failed while sniffing: re-raises its error on the next read."""

    __slots__ = ("_error",)

    def __init__(self, error: StreamError) -> None:
        self._error = error

    def read(self, n: int = -1, /) -> bytes:
        raise self._error


def sniff_format(head: bytes) -> str:
    """ "json" or "ndjson" from the first bytes (BOM and leading whitespace skipped).

    `[` starts a document; `{` starts NDJSON if its first line is a complete value, and a
    document if the value runs on past the line (pretty-printed); a first line that is
    broken in another way stays NDJSON, so its bad lines are reported one by one. A first line
    that opens an API body (`{"users":`) and does not end within the window is a minified
    document, whatever its size: it streams through ijson instead of being one line too large.
    Anything else is NDJSON.
    """
    rest = (head[3:] if head.startswith(BOM) else head).lstrip(WS)
    if rest[:1] == b"[":
        return "json"
    if b"\n" not in rest and _USERS_BODY.match(rest):
        try:
            orjson.loads(rest)
        except orjson.JSONDecodeError:
            return "json"  # a minified `{"users": [...]}` bigger than the window: stream it
    if rest[:1] == b"{" and b"\n" in rest:
        try:
            orjson.loads(rest[: rest.index(b"\n")])
        except orjson.JSONDecodeError as e:
            if e.msg.startswith("unexpected end of data"):
                return "json"
    return "ndjson"


def read_up_to(stream: Any, n: int) -> bytes:
    """`n` bytes, or all that is left: a pipe or a gzip stream may give fewer a read."""
    data = b""
    while len(data) < n:
        more = stream.read(n - len(data))
        if not more:
            break
        data += more
    return data
