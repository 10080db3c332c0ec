"""One request body, built once, and where each of its users is in it.

The packer builds batches; the sender sends their bytes as they are (and halves them on a
413); the ledger, the rejected file and the journal ask which input records a user object
came from. The body is kept once: a user's bytes are a slice of it, found by offsets.
"""

from __future__ import annotations

from array import array
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TypeAlias

import orjson

from revbridge_cli.shape.parts import Origin

BODY_OPEN = b'{"users":['
BODY_CLOSE = b"]}"

# A user object's origins, (file, line, offset) after another: one record's own tuple, or an
# array once several records share the object.
Marks: TypeAlias = "array[int] | tuple[int, ...]"

dumps = orjson.dumps  # the one serializer of request bytes: compact UTF-8, no NaN


@dataclass(slots=True)
class BatchUser:
    """One user object of a batch: where its bytes are in the body, its events and origins.

    The origins are kept flat, (file, line, offset) after another: most batches are accepted
    without anyone asking where their records came from (only --state and the rejected file
    do), and a flat array is a fifth of the memory of the tuples.
    """

    start: int
    end: int
    n_events: int
    marks: Marks

    @property
    def origins(self) -> list[Origin]:
        m = self.marks
        return list(zip(m[0::3], m[1::3], m[2::3], strict=True))


# (start, end, n_events, marks) of one user object: what the packer makes per user, as a plain
# tuple, since most batches are accepted without anyone asking for a `BatchUser`.
Span: TypeAlias = "tuple[int, int, int, Marks]"


class Batch:
    """One request body, built once; `users[i]` is the server's `userIndex` i."""

    __slots__ = ("_body", "_n_events", "_spans", "_users", "lane", "seq")

    def __init__(
        self, seq: int, lane: int, spans: list[Span], body: bytes, n_events: int | None = None
    ) -> None:
        self.seq = seq
        self.lane = lane
        self._spans = spans
        self._users: list[BatchUser] | None = None
        self._n_events = n_events  # the packer knows it; a split's halves count it when asked
        self._body = body

    @classmethod
    def of(cls, seq: int, lane: int, users: list[tuple[bytes, int, Marks]]) -> Batch:
        """A batch from user objects' bytes (a 413 split makes its halves this way)."""
        parts = [BODY_OPEN]
        spans: list[Span] = []
        at = len(BODY_OPEN)
        for i, (data, n_events, marks) in enumerate(users):
            if i:
                parts.append(b",")
                at += 1
            parts.append(data)
            spans.append((at, at + len(data), n_events, marks))
            at += len(data)
        parts.append(BODY_CLOSE)
        return cls(seq, lane, spans, b"".join(parts))

    @property
    def users(self) -> list[BatchUser]:
        if self._users is None:
            self._users = [BatchUser(*span) for span in self._spans]
        return self._users

    @property
    def n_users(self) -> int:
        return len(self._spans)

    @property
    def n_events(self) -> int:
        if self._n_events is None:
            self._n_events = sum(span[2] for span in self._spans)
        return self._n_events

    @property
    def size(self) -> int:
        return len(self._body)

    def body(self) -> bytes:
        return self._body

    def user_data(self, index: int) -> bytes:
        """The bytes of user `index` exactly as sent (for the rejected file, or a split)."""
        start, end, _, _ = self._spans[index]
        return self._body[start:end]

    def parts(self) -> list[tuple[bytes, int, Marks]]:
        return [(self._body[start:end], n, marks) for start, end, n, marks in self._spans]

    def origins(self) -> Iterator[Origin]:
        for user in self.users:
            yield from user.origins  # only --state asks, once a batch has its verdict
