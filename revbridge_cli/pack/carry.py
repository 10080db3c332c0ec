"""Carrying profile updates on the events of the same person (docs/profiles.md).

The API takes no user object without an event, so a profile update (shape/profile.py) rides
on a user object that has one, merged last-write-wins at its own place in input order:

- an update for a person whose user object is still open in the packer's grouping buffer is
  merged into it at once, after what it holds (the update wins over earlier events' values);
- any other update waits here, and the person's next event takes it, ahead of that event's
  own values (they came later, so they win);
- what is still waiting when the input ends is the run's left-over (`left_over`).

A person is matched as the identity graph would link them: a user object that shares a
primary identifier value of the same kind (`user_id`, `email`, `phone_number`, `anon_id`),
directly or through other user objects of the run, unless both hold a `user_id` and they
differ (two user_ids are never one profile).

Nothing is indexed until the first update is seen: a run of plain events pays nothing here
(the feed calls in only once there is an update). From then on each new event key is indexed
by its identifier values, once; only open objects can take an update, so once the index holds
twice the keys the packer still has open, it is rebuilt from those: its memory stays within
the grouping buffer's, not the run's distinct users.
"""

from __future__ import annotations

from typing import Any

import orjson

from revbridge_cli import contract
from revbridge_cli.pack.packer import Packer
from revbridge_cli.shape.parts import UserPart
from revbridge_cli.shape.profile import ProfileUpdate, pairs

Pair = tuple[str, Any]
_MIN_INDEX = 4096  # keys indexed before the first rebuild: a small run never rebuilds


def _conflict(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two different user_ids: the graph refuses the link, so must the carrier."""
    x, y = a.get("user_id"), b.get("user_id")
    return x not in (None, "") and y not in (None, "") and x != y


class Carrier:
    """Profile updates waiting for an event of their person, and where each event key is."""

    def __init__(self, packer: Packer) -> None:
        self._packer = packer
        self._pending: dict[int, ProfileUpdate] = {}  # input order: seq -> update
        self._waiting: dict[Pair, list[int]] = {}  # identifier value -> pending seqs
        self._keys: set[bytes] = set()  # event keys indexed so far
        self._where: dict[Pair, list[bytes]] = {}  # identifier value -> event keys
        self._seq = 0
        self._rebuild_at = _MIN_INDEX
        self.active = False  # an update was seen: events must come through `event`
        self.carried = 0  # updates merged into a user object

    def update(self, update: ProfileUpdate) -> int:
        """Take one update; how many open user objects it was merged into (0: it waits)."""
        if not self.active:
            self.active = True
            self._rebuild()
        merged = 0
        for key in self._candidates(update):
            merged += self._packer.absorb(key, update)
        if merged:
            self.carried += 1
            return merged
        self._seq += 1
        self._pending[self._seq] = update
        for pair in pairs(update.identifiers):
            self._waiting.setdefault(pair, []).append(self._seq)
        return 0

    def event(self, part: UserPart) -> None:
        """An event part just went into the packer: index its key, and merge into its open
        object every waiting update of its person, ahead of the event's own values."""
        key = part.key
        found = None
        if key not in self._keys:
            self._keys.add(key)
            where = self._where
            found = pairs(part.identifiers)
            for pair in found:
                where.setdefault(pair, []).append(key)
            if len(self._keys) > self._rebuild_at:
                self._rebuild()
        if not self._pending:
            return
        waiting = self._waiting
        found = pairs(part.identifiers) if found is None else found
        seqs = {s for p in found for s in waiting.get(p, ())}
        if not seqs:
            return
        # Latest first, each merged ahead of what is there: earlier updates lose to later ones.
        for seq in sorted(seqs, reverse=True):
            update = self._pending.get(seq)
            if update is None or _conflict(update.identifiers, part.identifiers):
                continue
            if self._packer.absorb(key, update, before=True):
                self._forget(seq, update)
                self.carried += 1

    def left_over(self) -> list[ProfileUpdate]:
        """The updates no event took, in input order; the carrier is empty after."""
        out = list(self._pending.values())
        self._pending.clear()
        self._waiting.clear()
        return out

    @property
    def waiting(self) -> int:
        return len(self._pending)

    def _rebuild(self) -> None:
        """The index of the keys the packer has open, and no other."""
        self._keys, self._where = set(), {}
        for key in list(self._packer.open_keys()):
            self._keys.add(key)
            values = orjson.loads(key)
            for pair in pairs(dict(zip(contract.PRIMARY_IDENTIFIERS, values, strict=True))):
                self._where.setdefault(pair, []).append(key)
        self._rebuild_at = max(_MIN_INDEX, 2 * len(self._keys))

    def _candidates(self, update: ProfileUpdate) -> list[bytes]:
        """Event keys of the update's person, each once, in the order they were found: linked
        to it by shared identifier values, transitively (as the graph links them), so that
        every open object of the person gets the update and the order in which the lanes
        deliver them cannot undo it. A key with another user_id is no link."""
        ids = update.identifiers
        found: dict[bytes, None] = {}
        todo = pairs(ids)
        seen = set(todo)
        while todo:
            pair = todo.pop()
            for key in self._where.get(pair, ()):
                if key in found:
                    continue
                values = dict(zip(contract.PRIMARY_IDENTIFIERS, orjson.loads(key), strict=True))
                if _conflict(ids, values):
                    continue
                found[key] = None
                for more in pairs(values):
                    if more not in seen:
                        seen.add(more)
                        todo.append(more)
        return list(found)

    def _forget(self, seq: int, update: ProfileUpdate) -> None:
        del self._pending[seq]
        for pair in pairs(update.identifiers):
            seqs = self._waiting.get(pair)
            if seqs is not None:
                seqs.remove(seq)
                if not seqs:
                    del self._waiting[pair]
