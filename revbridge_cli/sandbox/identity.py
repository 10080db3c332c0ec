"""The identity graph: which user objects are one person, and what that person's profile holds.

Plain data in memory, no I/O and no clock: the writer thread (`store.py`) owns one graph,
feeds it every accepted user object in commit order, and writes what changed to SQLite in the
same transaction. Kept in memory because resolving an identity is a few dict lookups, where
asking SQLite for every identifier of every user object would cost a query each.

The rules (docs/contract.md, "Identity"), as identity-graph services such as Segment Unify
and mParticle IDSync apply them:

- a primary identifier value (same kind) belongs to exactly one profile;
- a user object's identifiers are resolved in priority order, `user_id`, `email`,
  `phone_number`, `anon_id`: the first one already known picks the profile, every later one
  known on another profile merges that profile in;
- a profile holds at most one `user_id`: a link that would join two different `user_id`s is
  refused (the identifier stays on the profile that had it first, the object goes on without
  it), and so is the lower-priority link when two identifiers lead to profiles that cannot be
  one;
- last write wins per key, across merges too: every key remembers the sequence number of the
  write that set its value, and a merge keeps, per key, the value set last. A write that repeats
  the value a key already holds changes nothing (neither its sequence number nor `updated_at`),
  so a user object that brings nothing new costs no row to write.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson

from revbridge_cli.contract import PRIMARY_IDENTIFIERS, counts_as_identifier, identity_key

Identity = tuple[str, str]  # (kind, value as JSON text): 1, 1.0 and "1" stay apart
PRIMARY = frozenset(PRIMARY_IDENTIFIERS)
NOTHING_REFUSED: frozenset[str] = frozenset()
_ABSENT = object()


@dataclass(slots=True)
class Profile:
    profile_id: int
    identifiers: dict[str, Any] = field(default_factory=dict)
    identities: dict[str, list[Any]] = field(default_factory=dict)
    user_properties: dict[str, Any] = field(default_factory=dict)
    updated_at: str = ""
    # key -> sequence number of the write that set its value, per identifier and per property
    id_written: dict[str, int] = field(default_factory=dict)
    prop_written: dict[str, int] = field(default_factory=dict)
    user_id: str | None = None  # the JSON text of its user_id, once it has one
    _user_key: str | None = None

    def user_key(self) -> str:
        if self._user_key is None:
            self._user_key = identity_key(self.identifiers).decode()
        return self._user_key


@dataclass(slots=True)
class Refused:
    """A link not made: `identity` stays on `owner`, the object went to `profile_id`."""

    kind: str
    value: Any
    profile_id: int
    owner: int


@dataclass(slots=True)
class Changes:
    """What the durable copy must learn since the last `take_changes`."""

    profiles: set[int] = field(default_factory=set)  # written (created, updated, survivors)
    removed: set[int] = field(default_factory=set)  # merged into another
    refused: list[tuple[Refused, str, str]] = field(default_factory=list)  # + trace_id, time


class IdentityGraph:
    def __init__(self) -> None:
        self.profiles: dict[int, Profile] = {}
        self.owner: dict[Identity, int] = {}
        self.seq = 0
        self.next_id = 1
        self.changes = Changes()
        # user_key of a user object -> the profile that owns all its identifiers: most objects
        # repeat a known person, and then resolving is one lookup
        self.resolved: dict[str, int] = {}

    # -- loading the durable copy --------------------------------------------------------

    def load(self, profile: Profile) -> None:
        """A profile read back from the database at start (no change recorded)."""
        self.profiles[profile.profile_id] = profile
        for kind, values in profile.identities.items():
            for value in values:
                self.owner[(kind, orjson.dumps(value).decode())] = profile.profile_id
        user_ids = profile.identities.get("user_id")
        profile.user_id = orjson.dumps(user_ids[0]).decode() if user_ids else None
        self.next_id = max(self.next_id, profile.profile_id + 1)
        self.seq = max([self.seq, *profile.id_written.values(), *profile.prop_written.values()])

    def take_changes(self) -> Changes:
        changes, self.changes = self.changes, Changes()
        changes.profiles -= changes.removed
        return changes

    # -- one user object -----------------------------------------------------------------

    def apply(
        self,
        identifiers: dict[str, Any],
        user_properties: dict[str, Any],
        at: str,
        trace_id: str = "",
        key: str | None = None,
    ) -> Profile:
        """Resolve one accepted user object onto its profile and write its keys there; `key`
        is the object's `user_key`, when the caller has it."""
        self.seq += 1
        if key is not None:
            known = self.profiles.get(self.resolved.get(key, 0))
            if known is not None:  # a merged-away profile is gone: then resolve afresh
                self._write(known, identifiers, user_properties, at, NOTHING_REFUSED)
                return known
        claim: str | None = None  # the user_id the profile being built is bound to
        found = []
        for kind in PRIMARY_IDENTIFIERS:
            value = identifiers.get(kind)
            if value is not None and counts_as_identifier(value):
                found.append((kind, value, orjson.dumps(value).decode()))
        if found and found[0][0] == "user_id":
            claim = found[0][2]
        target: Profile | None = None
        unknown: list[tuple[str, Any, str]] = []
        refused: list[tuple[str, Any, str, int]] = []
        for kind, value, text in found:
            owner_id = self.owner.get((kind, text))
            if owner_id is None:
                unknown.append((kind, value, text))
                continue
            other = self.profiles[owner_id]
            if other is target:
                continue
            if claim is not None and other.user_id is not None and other.user_id != claim:
                refused.append((kind, value, text, owner_id))
                continue
            target = other if target is None else self._merge(target, other)
            claim = claim or target.user_id
        if target is None:
            target = Profile(self.next_id)
            self.next_id += 1
            self.profiles[target.profile_id] = target
        for kind, value, text in unknown:
            self._attach(target, kind, value, text)
        for kind, value, _text, owner_id in refused:
            link = Refused(kind, value, target.profile_id, owner_id)
            self.changes.refused.append((link, trace_id, at))
        if refused:
            self._write(target, identifiers, user_properties, at, {kind for kind, *_ in refused})
        else:
            self._write(target, identifiers, user_properties, at, NOTHING_REFUSED)
            if key is not None:
                self.resolved[key] = target.profile_id
        return target

    def _attach(self, profile: Profile, kind: str, value: Any, text: str) -> None:
        profile.identities.setdefault(kind, []).append(value)
        if kind == "user_id":
            profile.user_id = text
        self.owner[(kind, text)] = profile.profile_id
        self.changes.profiles.add(profile.profile_id)

    def _write(
        self,
        profile: Profile,
        identifiers: dict[str, Any],
        user_properties: dict[str, Any],
        at: str,
        refused_kinds: frozenset[str] | set[str],
    ) -> None:
        seq, changed = self.seq, False
        mine = profile.identifiers
        for key, value in identifiers.items():
            old = mine.get(key, _ABSENT)
            if type(old) is type(value) and old == value:
                continue  # the common case, a repeat; 1, 1.0 and true stay three values
            if key in PRIMARY:
                if key in refused_kinds:
                    continue  # the profile names only identifiers it owns
                if not ((type(value) is str and value) or counts_as_identifier(value)):
                    continue
                profile._user_key = None
            mine[key] = value
            profile.id_written[key] = seq
            changed = True
        props = profile.user_properties
        for key, value in user_properties.items():
            old = props.get(key, _ABSENT)
            if type(old) is type(value) and old == value:
                continue
            props[key] = value
            profile.prop_written[key] = seq
            changed = True
        if changed:
            profile.updated_at = at
            self.changes.profiles.add(profile.profile_id)

    def _merge(self, a: Profile, b: Profile) -> Profile:
        """The older profile (lower id) survives; per key, the value written last wins."""
        keep, gone = (a, b) if a.profile_id < b.profile_id else (b, a)
        for kind, values in gone.identities.items():
            for value in values:
                self._attach(keep, kind, value, orjson.dumps(value).decode())
        _take_newer(keep.identifiers, keep.id_written, gone.identifiers, gone.id_written)
        _take_newer(
            keep.user_properties, keep.prop_written, gone.user_properties, gone.prop_written
        )
        keep._user_key = None
        keep.updated_at = max(keep.updated_at, gone.updated_at)
        del self.profiles[gone.profile_id]
        self.changes.removed.add(gone.profile_id)
        self.changes.profiles.add(keep.profile_id)
        return keep


def _take_newer(
    mine: dict[str, Any],
    my_written: dict[str, int],
    theirs: dict[str, Any],
    their_written: dict[str, int],
) -> None:
    for key, value in theirs.items():
        stamp = their_written.get(key, 0)
        if stamp > my_written.get(key, -1):
            mine[key] = value
            my_written[key] = stamp
