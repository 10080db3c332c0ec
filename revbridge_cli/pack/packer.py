"""Packing: user parts in, size-bounded request bodies out, with per-user lanes.

Each event is serialized once, here, and a body (`batch.Batch`) is the concatenation of those
bytes, so the size of a batch is known exactly, as it grows, without serializing anything
twice.

Users are spread over `lanes` by their key. A lane's batches are sent one after the other, so
a user's data never overtakes itself (last-write-wins on the profile depends on it), while the
lanes run side by side. Any other ordering rule (waiting on earlier batches that share a user)
serialises nearly everything when many users are interleaved, which is the common export.

Each lane holds its users back in a buffer of bounded memory (`--buffer-mb`) and sends the
oldest first, so that a user's events spread through an export travel in one user object and
far fewer requests go out: the request count, not the bytes, is what server latency charges.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field

import orjson

from revbridge_cli import contract
from revbridge_cli.config import bounds as option_bounds
from revbridge_cli.pack.batch import BODY_CLOSE, BODY_OPEN, Batch, Span, dumps
from revbridge_cli.pack.held import BODY_FIXED, Lane, OpenUser, owned, user_size
from revbridge_cli.shape.parts import Invalid, Origin, UserPart
from revbridge_cli.shape.profile import ProfileUpdate, fold

DEFAULT_BUFFER_BYTES = 160_000_000
START_LANE_BYTES = 1_000_000  # about one full batch of small users: no grouping beyond it
# Estimated memory of a held user object beyond its bytes (objects, dict and queue slots,
# key), and of each further record piece it holds (an origin, bytearray slack): measured
# with tracemalloc on the benchmark's input, rounded up.
_USER_COST = 320
PIECE_COST = 60


@dataclass(slots=True)
class Packed:
    """What one call to the packer produced: closed batches and events that can never fit."""

    batches: list[Batch] = field(default_factory=list)
    too_big: list[tuple[Invalid, Origin]] = field(default_factory=list)
    # parts JSON cannot carry, with their events' count: set aside as records, not as events
    unsendable: list[tuple[Invalid, Origin, int]] = field(default_factory=list)
    placed: int = 0  # pieces of the part that went into batches (a part split counts twice)


def _merged(
    user: OpenUser, part: UserPart, props_bytes: bytes | None
) -> tuple[bytes, bytes | None]:
    """The identifiers' and user_properties' bytes of `user` once `part` is merged in, last
    write wins. Most parts repeat the identifiers exactly, which one comparison of bytes says."""
    ids_bytes = user.ids_bytes
    if dumps(part.identifiers) != ids_bytes:
        merged = dumps({**orjson.loads(ids_bytes), **part.identifiers})
        if merged != ids_bytes:
            ids_bytes = owned(merged)
    pbytes = user.props_bytes
    if part.user_properties is not None:
        if pbytes is None:
            pbytes = props_bytes
        else:
            merged = dumps({**orjson.loads(pbytes), **part.user_properties})
            if merged != pbytes:
                pbytes = owned(merged)
    return ids_bytes, pbytes


class Packer:
    """Groups parts by user in per-lane buffers and closes batches from the oldest users.

    A lane holds its users back until its share of `buffer_bytes` is used, so that a user's
    later events join the same user object: with users interleaved through an export, that is
    what puts several events in one user object and fewer requests on the wire. The oldest
    users go first, so how long a record waits for its request is bounded by the buffer, not
    by the file.
    """

    def __init__(
        self,
        lanes: int = 1,
        max_users: int = contract.MAX_USERS,
        max_bytes: int = contract.MAX_BODY_BYTES,
        buffer_bytes: int = DEFAULT_BUFFER_BYTES,
        piece_cost: int = PIECE_COST,
    ) -> None:
        option_bounds.check_packer(max_users, max_bytes)
        self.lanes = lanes
        self.max_users = max_users
        self.max_bytes = max_bytes
        self._piece_cost = piece_cost  # more when something else keeps a record while held
        self._user_cap = max_bytes - BODY_FIXED  # the biggest user object a request can hold
        self._most = max(1, buffer_bytes // lanes)  # a lane's budget may grow up to this
        self._budget = self._start = min(START_LANE_BYTES, self._most)
        self.peak_held = 0  # the most the lanes held together (estimated bytes), for the summary
        self._lanes = [Lane(n) for n in range(lanes)]
        self._seq = 0

    def add(self, part: UserPart) -> Packed | None:
        """Add one part. None: it went whole into its lane and closed nothing (the common case,
        so it allocates nothing); otherwise the batches this closed, any events set aside, and
        how many pieces of the part were placed. A part holding a value JSON cannot carry (an
        integer past 64 bits, from a mapping's `type = "integer"` or a program's records) is
        set aside whole, with orjson's reason (a `try` costs nothing until it catches)."""
        try:
            key = part.key
            lane = self._lanes[hash(key) % self.lanes if self.lanes > 1 else 0]
            events = part.events
            if len(events) == 1:  # most parts are one flat event: no comprehension frame
                data = dumps(events[0])
                pieces = None
            else:
                pieces = [dumps(e) for e in events]
                data = b",".join(pieces)
            props = part.user_properties
            props_bytes = owned(dumps(props)) if props is not None else None
            user = lane.users.get(key)
            # The common case first: the whole part fits in the user's object.
            if user is None:
                ids_bytes = owned(dumps(part.identifiers))
                size = user_size(len(ids_bytes), props_bytes, len(data))
                if size <= self._user_cap:
                    key = owned(key)
                    user = OpenUser(
                        key, ids_bytes, props_bytes, bytearray(data), len(events), part.origin, size
                    )
                    lane.users[key] = user
                    lane.queue.append(user)
                    lane.held += size + _USER_COST + self._piece_cost
                    return self._drain(lane, Packed(placed=1)) if lane.held > self._budget else None
            else:
                ids_bytes, pbytes = _merged(user, part, props_bytes)
                size = user_size(len(ids_bytes), pbytes, len(user.events) + 1 + len(data))
                if size <= self._user_cap:
                    lane.held += size - user.size + self._piece_cost
                    user.ids_bytes, user.props_bytes = ids_bytes, pbytes
                    user.events += b","
                    user.events += data
                    user.n_events += len(events)
                    user.size = size
                    user.grew(part.origin)
                    return self._drain(lane, Packed(placed=1)) if lane.held > self._budget else None
            out = Packed()
            if pieces is None:  # the rare split takes the events one by one
                pieces = [data]
            start = 0
            while start < len(pieces):
                start = self._add_events(lane, part, pieces, start, props_bytes, out)
            return self._drain(lane, out)
        except TypeError as e:  # orjson's: raised by a dumps before anything was placed
            why = f"a value JSON cannot carry: {e}"
            invalid = Invalid(why, user=None, raw=_text(part))
            return Packed(unsendable=[(invalid, part.origin, len(part.events))])

    def _add_events(
        self,
        lane: Lane,
        part: UserPart,
        events: list[bytes],
        start: int,
        props_bytes: bytes | None,
        out: Packed,
    ) -> int:
        """Put as many of `events[start:]` as fit into the user's object; return the next.

        The slow path: a user whose object would be too big for any request. The object is
        sealed (it keeps its place in the queue) and the rest starts a new one behind it.
        """
        user = lane.users.get(part.key)
        if user is None:
            ids_bytes, pbytes = owned(dumps(part.identifiers)), props_bytes
            count, events_size = 0, 0
        else:
            ids_bytes, pbytes = _merged(user, part, props_bytes)
            count, events_size = user.n_events, len(user.events)
        fixed = user_size(len(ids_bytes), pbytes, 0)
        room = self._user_cap - fixed - events_size
        taken = 0
        for data in events[start:]:
            extra = len(data) + (1 if count + taken else 0)
            if extra > room:
                break
            room -= extra
            events_size += extra
            taken += 1

        if taken == 0:
            if user is None:  # alone in a request and still too big: it can never be sent
                out.too_big.append((self._too_big(part, events[start]), part.origin))
                return start + 1
            del lane.users[part.key]  # sealed
            return start

        size = fixed + events_size
        chunk = b",".join(events[start : start + taken])
        if user is None:
            key = owned(part.key)
            user = OpenUser(key, ids_bytes, pbytes, bytearray(chunk), taken, part.origin, size)
            lane.users[key] = user
            lane.queue.append(user)
            lane.held += size + _USER_COST + self._piece_cost
        else:
            lane.held += size - user.size + self._piece_cost
            user.ids_bytes, user.props_bytes = ids_bytes, pbytes
            if user.n_events:
                user.events += b","
            user.events += chunk
            user.n_events += taken
            user.size = size
            user.grew(part.origin)
        out.placed += 1
        return start + taken

    def _too_big(self, part: UserPart, event: bytes) -> Invalid:
        event_obj = orjson.loads(event)
        user = {"identifiers": part.identifiers, "events": [event_obj]}
        if part.user_properties is not None:
            user = {**user, "user_properties": part.user_properties}
        rest = len(orjson.dumps(user)) - len(event)  # the user's own share of the request
        if rest > len(event):  # say which part is large: a 10 MB user_id, not an 18-byte event
            why = f"its user's identifiers and properties are {rest:,} bytes: with any event"
        else:
            why = f"event is {len(event):,} bytes: with its user's identifiers and properties"
        return Invalid(
            f"{why} the request would exceed the {self.max_bytes:,}-byte limit",
            user=user,
        )

    def open_keys(self) -> Iterator[bytes]:
        """The keys of the user objects that can still grow: the carrier's first look."""
        for lane in self._lanes:
            yield from lane.users

    def absorb(self, key: bytes, update: ProfileUpdate, before: bool = False) -> bool:
        """Merge a profile update into the user's open object, at its place in input order
        (`profile.fold`); False if there is none or it would outgrow a request."""
        lane = self._lanes[hash(key) % self.lanes if self.lanes > 1 else 0]
        user = lane.users.get(key)
        if user is None:
            return False
        ids_bytes = user.ids_bytes
        ids = orjson.loads(ids_bytes)
        ids = {**update.identifiers, **ids} if before else {**ids, **update.identifiers}
        current = None if user.props_bytes is None else orjson.loads(user.props_bytes)
        ids_bytes, props_bytes = owned(dumps(ids)), owned(dumps(fold(current, update, before)))
        size = user_size(len(ids_bytes), props_bytes, len(user.events))
        if size > self._user_cap:
            return False
        lane.held += size - user.size + self._piece_cost
        user.ids_bytes, user.props_bytes, user.size = ids_bytes, props_bytes, size
        user.grew(update.origin)  # its record is settled with the object's batch
        return True

    def grow(self) -> bool:
        """Requests are the bottleneck (a lane's queue is full): hold more, so that each
        request carries more of each user. Quadruples every lane's budget, up to
        `buffer_bytes`; False once there. It starts small because holding many users costs
        CPU (cache misses: a quarter more per event at 160 MB), which a fast server would
        notice and a slow one does not. It never shrinks: that memory was allowed."""
        if self._budget >= self._most:
            return False
        self._budget = min(self._budget * 4, self._most)
        return True

    @property
    def grown(self) -> bool:
        return self._budget > self._start

    @property
    def buffer_bytes(self) -> int:
        """The grouping buffer's budget now, all lanes together."""
        return self._budget * self.lanes

    def _drain(self, lane: Lane, out: Packed) -> Packed:
        """Close batches from the lane's oldest users until it is back within its budget."""
        self._note_peak()
        while lane.held > self._budget and lane.queue:
            self._close(lane, out)
        return out

    def _note_peak(self) -> None:
        """Called where the lanes are at their fullest: a lane over budget, or the flush."""
        self.peak_held = max(self.peak_held, sum(lane.held for lane in self._lanes))

    def _close(self, lane: Lane, out: Packed) -> None:
        """One batch of the lane's oldest users, as many as both limits allow."""
        self._close_from([lane], lane.number, out)

    def _close_from(self, lanes: list[Lane], number: int, out: Packed) -> None:
        """One batch of the oldest users of `lanes`, taken lane after lane, as many as both
        limits allow, for lane `number`. A sealed user object ends its batch, so that the
        user's next object goes in a later request: one user, one object a request, in order.
        (Several lanes only while no batch is out: then no user's requests can overtake.)"""
        piece_cost = self._piece_cost
        room = self.max_bytes - len(BODY_OPEN) - len(BODY_CLOSE)
        parts: list[bytes | bytearray] = [BODY_OPEN]
        spans: list[Span] = []
        at = len(BODY_OPEN)
        events = taken = 0
        sealed = False
        for lane in lanes:
            queue, live = lane.queue, lane.users
            held = 0
            while queue and taken < self.max_users and not sealed:
                user = queue[0]
                size = user.size
                if size > room:
                    break
                queue.popleft()
                room -= size + 1  # and the comma before the next
                user.write(parts)
                parts.append(b",")
                spans.append((at, at + size, user.n_events, user.origins))
                events += user.n_events
                taken += 1
                at += size + 1
                held += size + _USER_COST + piece_cost * (len(user.origins) // 3)
                if live.get(user.key) is user:
                    del live[user.key]
                else:
                    sealed = True
            lane.held -= held
            if taken >= self.max_users or sealed or (queue and queue[0].size > room):
                break
        parts[-1] = BODY_CLOSE  # in place of the last comma
        self._seq += 1
        out.batches.append(Batch(self._seq, number, spans, b"".join(parts), events))

    def holds_a_request(self) -> bool:
        """The lanes together hold at least one full request (users or bytes, estimated): the
        slow start closes its first batch here rather than at the lanes' budget."""
        lanes = self._lanes
        return (
            sum(len(lane.queue) for lane in lanes) >= self.max_users
            or sum(lane.held for lane in lanes) >= self.max_bytes
        )

    def close_first(self) -> Packed:
        """The run's first batch, from every lane at once: nothing is out yet, so no user's
        requests can overtake, and the first request carries the most it can."""
        out = Packed()
        if any(lane.queue for lane in self._lanes):
            self._close_from(self._lanes, 0, out)
        return out

    def flush(self, merge: bool = False) -> Iterator[Batch]:
        """Close every lane's batches: the end of input, or an orderly stop. One at a time and
        taking the lanes in turn, so that all lanes get work at once and a caller can send
        each batch as it comes (the buffer may hold hundreds). With `merge`, and while no
        batch was ever closed, a small input goes in as few requests as the limits allow
        rather than one per lane."""
        self._note_peak()
        if merge and self._seq == 0:
            while any(lane.queue for lane in self._lanes):
                yield from self.close_first().batches
            return
        while any(lane.queue for lane in self._lanes):
            for lane in self._lanes:
                if lane.queue:
                    out = Packed()
                    self._close(lane, out)
                    yield from out.batches


def _text(part: UserPart) -> str:
    """The part as text for the rejected row's `raw`: the standard library's encoder writes
    what orjson refused (an integer of any size; anything else as its `str`)."""
    return json.dumps(part.as_user(), default=str, ensure_ascii=False)[:1000]
