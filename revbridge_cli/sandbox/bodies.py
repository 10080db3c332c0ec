"""Reading request bodies: Content-Length or chunked, with a limit, surviving bad clients.

A body over the limit is still read and thrown away (up to `DRAIN_CAP`): a server that answers
413 and closes with unread data makes the kernel reset the connection, and the client then sees
a network error instead of the 413. Past the cap the caller answers and closes.
"""

from __future__ import annotations

from dataclasses import dataclass
from email.message import Message
from io import BufferedIOBase

from revbridge_cli.contract import MAX_BODY_BYTES

DRAIN_CAP = 4 * MAX_BODY_BYTES


class BadFraming(Exception):
    """The request's body framing (Content-Length, chunked encoding) cannot be trusted."""


@dataclass(frozen=True, slots=True)
class Body:
    data: bytes | None  # None when the body was over the limit
    size: int
    undrained: bool = False  # bytes were left unread: answer, then close the connection


def body_length(headers: Message) -> int | None:
    """None for a chunked body; 0 when there is no body at all."""
    encoding = headers.get("Transfer-Encoding")
    if encoding is not None:
        if encoding.strip().lower() != "chunked":
            raise BadFraming
        return None
    length = headers.get("Content-Length")
    if length is None:
        return 0
    if not length.strip().isdigit():
        raise BadFraming
    return int(length)


def read_body(rfile: BufferedIOBase, headers: Message, limit: int) -> Body:
    """The body if it is within `limit` bytes; `limit=-1` just discards it."""
    length = body_length(headers)
    if length is None:
        return _read_chunked(rfile, limit)
    if length > limit:
        if length > DRAIN_CAP:
            return Body(None, length, undrained=True)
        _skip(rfile, length)
        return Body(None, length)
    data = rfile.read(length)
    if len(data) < length:
        raise ConnectionError("client went away mid-body")
    return Body(data, length)


def _skip(rfile: BufferedIOBase, length: int) -> None:
    remaining = length
    while remaining:
        chunk = rfile.read(min(remaining, 1 << 20))
        if not chunk:
            raise ConnectionError("client went away mid-body")
        remaining -= len(chunk)


def _read_chunked(rfile: BufferedIOBase, limit: int) -> Body:
    parts: list[bytes] = []
    total = 0
    while True:
        line = rfile.readline(1024)
        if not line:
            raise ConnectionError("client went away mid-body")
        try:
            size = int(line.split(b";", 1)[0].strip(), 16)
        except ValueError:
            raise BadFraming from None
        if size == 0:
            break
        total += size
        if total > DRAIN_CAP:
            return Body(None, total, undrained=True)
        data = rfile.read(size)
        if len(data) < size:
            raise ConnectionError("client went away mid-body")
        if total <= limit:
            parts.append(data)
        if rfile.readline(1024).strip():
            raise BadFraming
    while rfile.readline(65537).strip():  # trailers
        pass
    if total > limit:
        return Body(None, total)
    return Body(b"".join(parts), total)
