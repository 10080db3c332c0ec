"""Packing: user parts in, size-bounded request bodies out, with per-user lanes.

Each event is serialized once, here, and a body is the concatenation of those bytes, so the
size of a batch is known exactly, as it grows, without serializing anything twice.

Users are spread over `lanes` by their key. A lane's batches are sent one after the other, so
a user's data never overtakes itself (last-write-wins on the profile depends on it), while the
lanes run side by side. Any other ordering rule (waiting on earlier batches that share a user)
serialises nearly everything when many users are interleaved, which is the common export.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson

from revbridge_cli import contract
from revbridge_cli.records import Invalid, Origin, UserPart

_BODY_OPEN = b'{"users":['
_BODY_CLOSE = b"]}"
_IDS_OPEN = b'{"identifiers":'
_PROPS_OPEN = b',"user_properties":'
_EVENTS_OPEN = b',"events":['
_USER_CLOSE = b"]}"
_BODY_FIXED = len(_BODY_OPEN) + len(_BODY_CLOSE)
_USER_FIXED = len(_IDS_OPEN) + len(_EVENTS_OPEN) + len(_USER_CLOSE)


dumps = orjson.dumps  # the one serializer of request bytes: compact UTF-8, no NaN


def _owned(data: bytes) -> bytes:
    """A right-sized copy. orjson's output keeps a 4 KiB buffer whatever its length: fine for
    bytes that die young, ruinous for the thousands an open batch holds (8 MB a lane)."""
    return memoryview(data).tobytes()


@dataclass(slots=True)
class BatchUser:
    """One user object of a batch: where its bytes are in the body, its events and origins."""

    start: int
    end: int
    n_events: int
    origins: list[Origin]


class Batch:
    """One request body, built once; `users[i]` is the server's `userIndex` i."""

    __slots__ = ("_body", "lane", "seq", "users")

    def __init__(self, seq: int, lane: int, users: list[BatchUser], body: bytes) -> None:
        self.seq = seq
        self.lane = lane
        self.users = users
        self._body = body

    @classmethod
    def of(cls, seq: int, lane: int, users: list[tuple[bytes, int, list[Origin]]]) -> Batch:
        """A batch from user objects' bytes (a 413 split makes its halves this way)."""
        parts = [_BODY_OPEN]
        spans = []
        at = len(_BODY_OPEN)
        for i, (data, n_events, origins) in enumerate(users):
            if i:
                parts.append(b",")
                at += 1
            parts.append(data)
            spans.append(BatchUser(at, at + len(data), n_events, origins))
            at += len(data)
        parts.append(_BODY_CLOSE)
        return cls(seq, lane, spans, b"".join(parts))

    @property
    def n_events(self) -> int:
        return sum(u.n_events for u in self.users)

    @property
    def size(self) -> int:
        return len(self._body)

    def body(self) -> bytes:
        return self._body

    def user_data(self, index: int) -> bytes:
        """The bytes of user `index` exactly as sent (for the rejected file, or a split)."""
        user = self.users[index]
        return self._body[user.start : user.end]

    def parts(self) -> list[tuple[bytes, int, list[Origin]]]:
        return [(self.user_data(i), u.n_events, u.origins) for i, u in enumerate(self.users)]

    def origins(self) -> Iterator[Origin]:
        for user in self.users:
            yield from user.origins


def _user_size(ids_len: int, props_bytes: bytes | None, events_size: int) -> int:
    """Bytes of one serialized user object; `events_size` is its events joined by commas."""
    props_part = 0 if props_bytes is None else len(_PROPS_OPEN) + len(props_bytes)
    return _USER_FIXED + ids_len + props_part + events_size


class _OpenUser:
    """A user still growing in an open batch. Sizes are kept as it grows: this is the hot path.

    `events` holds the events' bytes joined by commas, in a bytearray that owns its memory
    (see `_owned`); `size` is the whole user object's.
    """

    __slots__ = (
        "events", "identifiers", "ids_bytes", "n_events", "origins", "props", "props_bytes",
        "size",
    )  # fmt: skip

    def __init__(
        self,
        identifiers: dict[str, Any],
        ids_bytes: bytes,
        props: dict[str, Any] | None,
        props_bytes: bytes | None,
        events: bytearray,
        n_events: int,
        origin: Origin,
        size: int,
    ) -> None:
        self.identifiers = identifiers
        self.ids_bytes = ids_bytes
        self.props = props
        self.props_bytes = props_bytes
        self.events = events
        self.n_events = n_events
        self.origins = [origin]
        self.size = size

    def write(self, parts: list[bytes]) -> None:
        """Append this user object's pieces to a body being built (joined once, at close)."""
        parts += (_IDS_OPEN, self.ids_bytes)
        if self.props_bytes is not None:
            parts += (_PROPS_OPEN, self.props_bytes)
        parts += (_EVENTS_OPEN, self.events, _USER_CLOSE)


class _OpenBatch:
    __slots__ = ("size", "users")

    def __init__(self) -> None:
        self.users: dict[tuple[Any, ...], _OpenUser] = {}
        self.size = _BODY_FIXED  # exact body bytes so far


@dataclass(slots=True)
class Packed:
    """What one call to the packer produced: closed batches and events that can never fit."""

    batches: list[Batch] = field(default_factory=list)
    too_big: list[tuple[Invalid, Origin]] = field(default_factory=list)
    placed: int = 0  # pieces of the part that went into batches (a part split counts twice)


def _merged(
    user: _OpenUser, part: UserPart, props_bytes: bytes | None
) -> tuple[dict[str, Any], bytes, dict[str, Any] | None, bytes | None]:
    """Identifiers and user_properties of `user` once `part` is merged in, last write wins."""
    ids, ids_bytes = user.identifiers, user.ids_bytes
    if part.identifiers != ids:
        merged = {**ids, **part.identifiers}
        if merged != ids:
            ids, ids_bytes = merged, _owned(dumps(merged))
    props, pbytes = user.props, user.props_bytes
    if part.user_properties is not None:
        if props is None:
            props, pbytes = part.user_properties, props_bytes
        else:
            merged = {**props, **part.user_properties}
            if merged != props:
                props, pbytes = merged, _owned(dumps(merged))
    return ids, ids_bytes, props, pbytes


class Packer:
    """Groups parts by user into per-lane open batches and closes them at either limit."""

    def __init__(
        self,
        lanes: int = 1,
        max_users: int = contract.MAX_USERS,
        max_bytes: int = contract.MAX_BODY_BYTES,
    ) -> None:
        if not 1 <= max_users <= contract.MAX_USERS:
            raise ValueError(f"max_users must be between 1 and {contract.MAX_USERS}")
        if max_bytes < 64:
            raise ValueError("max_bytes is too small for any request")
        self.lanes = lanes
        self.max_users = max_users
        self.max_bytes = max_bytes
        self._open = [_OpenBatch() for _ in range(lanes)]
        self._seq = 0

    def add(self, part: UserPart) -> Packed | None:
        """Add one part. None: it went whole into its lane's open batch and closed nothing (the
        common case, so it allocates nothing); otherwise the batches this closed (in lane
        order), any events set aside, and how many pieces of the part were placed."""
        key = part.key
        lane = hash(key) % self.lanes if self.lanes > 1 else 0
        if len(part.events) == 1:  # most parts are one flat event: no comprehension frame
            events = [dumps(part.events[0])]
            joined = len(events[0])
        else:
            events = [dumps(e) for e in part.events]
            joined = sum(map(len, events)) + len(events) - 1
        props = part.user_properties
        props_bytes = _owned(dumps(props)) if props is not None else None
        batch = self._open[lane]
        user = batch.users.get(key)
        # The common case first: the whole part fits in the lane's open batch.
        if user is None:
            if len(batch.users) < self.max_users:
                ids_bytes = _owned(dumps(part.identifiers))
                size = _user_size(len(ids_bytes), props_bytes, joined)
                total = batch.size + size + (1 if batch.users else 0)
                if total <= self.max_bytes:
                    data = (
                        bytearray(events[0]) if len(events) == 1 else bytearray(b",".join(events))
                    )
                    batch.users[key] = _OpenUser(
                        part.identifiers, ids_bytes, props, props_bytes, data, len(events),
                        part.origin, size,
                    )  # fmt: skip
                    batch.size = total
                    return None
        else:
            ids, ids_bytes, props, pbytes = _merged(user, part, props_bytes)
            events_size = len(user.events) + 1 + joined
            size = _user_size(len(ids_bytes), pbytes, events_size)
            total = batch.size - user.size + size
            if total <= self.max_bytes:
                user.identifiers, user.ids_bytes = ids, ids_bytes
                user.props, user.props_bytes = props, pbytes
                user.events += b","
                user.events += events[0] if len(events) == 1 else b",".join(events)
                user.n_events += len(events)
                user.size = size
                user.origins.append(part.origin)
                batch.size = total
                return None
        out = Packed()
        start = 0
        while start < len(events):
            start = self._add_events(lane, part, events, start, props_bytes, out)
        return out

    def _add_events(
        self,
        lane: int,
        part: UserPart,
        events: list[bytes],
        start: int,
        props_bytes: bytes | None,
        out: Packed,
    ) -> int:
        """Put as many of `events[start:]` as fit into the lane's open batch; return the next.

        The slow path: a batch that is full, or a user too big for what room is left.
        """
        batch = self._open[lane]
        user = batch.users.get(part.key)
        if user is None:
            if len(batch.users) >= self.max_users:
                self._close(lane, out)
                batch = self._open[lane]
            ids, ids_bytes = part.identifiers, _owned(dumps(part.identifiers))
            props, pbytes = part.user_properties, props_bytes
            old_size, comma, count, events_size = 0, 1 if batch.users else 0, 0, 0
        else:
            ids, ids_bytes, props, pbytes = _merged(user, part, props_bytes)
            old_size, comma = user.size, 0
            count, events_size = user.n_events, len(user.events)
        fixed = _user_size(len(ids_bytes), pbytes, 0)
        room = self.max_bytes - (batch.size - old_size + comma + fixed + events_size)
        taken = 0
        for data in events[start:]:
            extra = len(data) + (1 if count + taken else 0)
            if extra > room:
                break
            room -= extra
            events_size += extra
            taken += 1

        if taken == 0:
            if user is None and not batch.users:
                # Alone in an empty batch and still too big: it can never be sent.
                out.too_big.append((self._too_big(part, events[start]), part.origin))
                return start + 1
            self._close(lane, out)
            return start

        size = fixed + events_size
        chunk = events[start : start + taken]
        if user is None:
            data = bytearray(b",".join(chunk))
            user = _OpenUser(ids, ids_bytes, props, pbytes, data, taken, part.origin, size)
            batch.users[part.key] = user
            batch.size += size + comma
        else:
            batch.size += size - old_size
            user.identifiers, user.ids_bytes = ids, ids_bytes
            user.props, user.props_bytes = props, pbytes
            if user.n_events:
                user.events += b","
            user.events += b",".join(chunk)
            user.n_events += taken
            user.size = size
            user.origins.append(part.origin)
        out.placed += 1
        return start + taken

    def _too_big(self, part: UserPart, event: bytes) -> Invalid:
        event_obj = orjson.loads(event)
        user = {"identifiers": part.identifiers, "events": [event_obj]}
        if part.user_properties is not None:
            user = {**user, "user_properties": part.user_properties}
        return Invalid(
            f"event is {len(event):,} bytes: with its user's identifiers and properties the "
            f"request would exceed the {self.max_bytes:,}-byte limit",
            user=user,
        )

    def _close(self, lane: int, out: Packed) -> None:
        batch = self._open[lane]
        if batch.users:
            self._seq += 1
            parts = [_BODY_OPEN]
            spans = []
            at = len(_BODY_OPEN)
            for user in batch.users.values():
                if spans:
                    parts.append(b",")
                    at += 1
                user.write(parts)
                spans.append(BatchUser(at, at + user.size, user.n_events, user.origins))
                at += user.size
            parts.append(_BODY_CLOSE)
            out.batches.append(Batch(self._seq, lane, spans, b"".join(parts)))
        self._open[lane] = _OpenBatch()

    def flush(self) -> list[Batch]:
        """Close every lane's open batch: the end of input, or an orderly stop."""
        out = Packed()
        for lane in range(self.lanes):
            self._close(lane, out)
        return out.batches
