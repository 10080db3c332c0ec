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


def dumps(value: Any) -> bytes:
    """The one serializer of request bytes (orjson: compact, UTF-8, rejects NaN as null)."""
    return orjson.dumps(value)


@dataclass(slots=True)
class BatchUser:
    """One user object of a batch: its exact bytes, how many events, and where it came from."""

    data: bytes
    n_events: int
    origins: list[Origin]


@dataclass(slots=True)
class Batch:
    """One request body's worth of users; `users[i]` is the server's `userIndex` i."""

    seq: int
    lane: int
    users: list[BatchUser]

    @property
    def n_events(self) -> int:
        return sum(u.n_events for u in self.users)

    @property
    def size(self) -> int:
        return _BODY_FIXED + sum(len(u.data) for u in self.users) + max(len(self.users) - 1, 0)

    def body(self) -> bytes:
        return _BODY_OPEN + b",".join(u.data for u in self.users) + _BODY_CLOSE

    def origins(self) -> Iterator[Origin]:
        for user in self.users:
            yield from user.origins


def _user_size(ids_len: int, props_len: int | None, n_events: int, events_size: int) -> int:
    """Bytes of one serialized user object; `props_len` None when it has no user_properties."""
    props_part = 0 if props_len is None else len(_PROPS_OPEN) + props_len
    return _USER_FIXED + ids_len + props_part + events_size + max(n_events - 1, 0)


@dataclass(slots=True)
class _OpenUser:
    identifiers: dict[str, Any]
    ids_bytes: bytes
    props: dict[str, Any] | None
    props_bytes: bytes
    events: list[bytes] = field(default_factory=list)
    events_size: int = 0
    origins: list[Origin] = field(default_factory=list)

    @property
    def size(self) -> int:
        props_len = len(self.props_bytes) if self.props is not None else None
        return _user_size(len(self.ids_bytes), props_len, len(self.events), self.events_size)

    def to_batch_user(self) -> BatchUser:
        parts = [_IDS_OPEN, self.ids_bytes]
        if self.props is not None:
            parts += [_PROPS_OPEN, self.props_bytes]
        parts += [_EVENTS_OPEN, b",".join(self.events), _USER_CLOSE]
        return BatchUser(b"".join(parts), len(self.events), self.origins)


@dataclass(slots=True)
class _OpenBatch:
    users: dict[tuple[Any, ...], _OpenUser] = field(default_factory=dict)
    users_size: int = 0  # sum of user sizes

    def size_with(self, users_size: int, n_users: int) -> int:
        return _BODY_FIXED + users_size + max(n_users - 1, 0)


@dataclass(slots=True)
class Packed:
    """What one call to the packer produced: closed batches and events that can never fit."""

    batches: list[Batch] = field(default_factory=list)
    too_big: list[tuple[Invalid, Origin]] = field(default_factory=list)
    placed: int = 0  # pieces of the part that went into batches (a part split counts twice)


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

    def lane_of(self, key: tuple[Any, ...]) -> int:
        return hash(key) % self.lanes

    def add(self, part: UserPart) -> Packed:
        """Add one part; returns the batches this closed (in lane order) and any set-asides."""
        out = Packed()
        lane = self.lane_of(part.key) if self.lanes > 1 else 0
        events = [dumps(e) for e in part.events]
        props_bytes = dumps(part.user_properties) if part.user_properties is not None else b""
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
        props_bytes: bytes,
        out: Packed,
    ) -> int:
        """Put as many of `events[start:]` as fit into the lane's open batch; return the next."""
        batch = self._open[lane]
        current = batch.users.get(part.key)
        if current is None:
            if len(batch.users) >= self.max_users:
                self._close(lane, out)
                batch = self._open[lane]
            ids = part.identifiers
            ids_bytes = dumps(ids)
            props = part.user_properties
            old_size = 0
            n_before, size_before = 0, 0
        else:
            ids = current.identifiers
            if part.identifiers is not ids and any(
                ids.get(k) != v for k, v in part.identifiers.items()
            ):
                ids = {**ids, **part.identifiers}
            ids_bytes = current.ids_bytes if ids is current.identifiers else dumps(ids)
            props = current.props
            if part.user_properties is not None:
                props = {**props, **part.user_properties} if props else part.user_properties
                props_bytes = dumps(props)
            else:
                props_bytes = current.props_bytes
            old_size = current.size
            n_before, size_before = len(current.events), current.events_size

        props_len = len(props_bytes) if props is not None else None
        fixed = _user_size(len(ids_bytes), props_len, n_before, size_before)
        n_users_after = len(batch.users) + (current is None)
        room = self.max_bytes - batch.size_with(batch.users_size - old_size + fixed, n_users_after)
        taken, taken_size = 0, 0
        for data in events[start:]:
            extra = len(data) + (1 if n_before + taken else 0)
            if extra > room:
                break
            room -= extra
            taken += 1
            taken_size += len(data)

        if taken == 0:
            if current is None and not batch.users:
                # Alone in an empty batch and still too big: it can never be sent.
                out.too_big.append((self._too_big(part, events[start], ids_bytes), part.origin))
                return start + 1
            self._close(lane, out)
            return start

        if current is None:
            current = _OpenUser(ids, ids_bytes, props, props_bytes)
            batch.users[part.key] = current
        else:
            current.identifiers, current.ids_bytes = ids, ids_bytes
            current.props, current.props_bytes = props, props_bytes
        current.events.extend(events[start : start + taken])
        current.events_size += taken_size
        current.origins.append(part.origin)
        out.placed += 1
        batch.users_size += current.size - old_size
        return start + taken

    def _too_big(self, part: UserPart, event: bytes, ids_bytes: bytes) -> Invalid:
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
            users = [u.to_batch_user() for u in batch.users.values()]
            out.batches.append(Batch(self._seq, lane, users))
        self._open[lane] = _OpenBatch()

    def flush(self) -> list[Batch]:
        """Close every lane's open batch: the end of input, or an orderly stop."""
        out = Packed()
        for lane in range(self.lanes):
            self._close(lane, out)
        return out.batches

    def pending_origins(self) -> Iterator[Origin]:
        """Origins still held in open batches (not yet handed to the sender)."""
        for batch in self._open:
            for user in batch.users.values():
                yield from user.origins
