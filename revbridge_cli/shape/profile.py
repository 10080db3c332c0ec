"""Profile updates: records that carry identifiers and properties but no event.

Segment's `identify`, Amplitude's `$identify`, PostHog's `$identify`/`$set` and a plain
`{"user_id": ..., "user_properties": {...}}` change a profile without saying anything
happened. The API takes no user object without an event, so such a record is not a user
part: it is recognised here (pure: no I/O, no clock) and the carrier (`pack/carry.py`) rides
it on the same person's events in the run (docs/profiles.md says how and why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from revbridge_cli import contract

__all__ = ["ProfileUpdate", "flatten_ops", "fold", "is_update_shape", "pairs", "recognize"]

# Keys a flat record may hold and still be a profile update rather than an event missing its
# name: a timestamp says when the update was made (kept for `--profile-event`).
_FLAT_UPDATE_KEYS = frozenset(
    ("identifiers", "user_properties", "timestamp", *contract.PRIMARY_IDENTIFIERS)
)
# Vendors' property operations, as they write them inside user_properties: the values of a
# set win like any property, a set-once only where nothing else set the key. Other operations
# ($add, $append, $unset...) need the stored profile to compute, which the API cannot read.
_SET_OPS = ("$set",)
_ONCE_OPS = ("$setOnce", "$set_once")
_OTHER_OPS = frozenset(
    ("$add", "$append", "$prepend", "$unset", "$remove", "$preInsert", "$postInsert", "$clearAll")
)
_PROBE = ({"event_name": "profile update"},)
_PRIMARY = contract.PRIMARY_IDENTIFIERS  # lets the contract check the rest of the user


@dataclass(slots=True)
class ProfileUpdate:
    """One update to one person's profile, in input order (`origin`).

    `props` win over what came before them; `once` only fill keys nothing else set in the
    same user object. `timestamp` is the record's own, if it had one."""

    key: bytes  # `user_key` of the identifiers, as a part's
    identifiers: dict[str, Any]
    props: dict[str, Any]
    once: dict[str, Any]
    origin: tuple[int, int, int]
    timestamp: str | None = None

    def as_user(self) -> dict[str, Any]:
        """The update as a resendable user object without events (read back as an update)."""
        props = dict(self.props)
        if self.once:
            props = {"$set_once": self.once, **props}
        user: dict[str, Any] = {"identifiers": self.identifiers, "user_properties": props}
        if self.timestamp is not None:
            user["timestamp"] = self.timestamp
        return user

    def as_event(self, event_name: str) -> dict[str, Any]:
        """The update as a user object with one event of that name (`--profile-event`)."""
        event: dict[str, Any] = {"event_name": event_name}
        if self.timestamp is not None:
            event["timestamp"] = self.timestamp
        return {
            "identifiers": self.identifiers,
            "user_properties": fold({}, self),
            "events": [event],
        }


def is_update_shape(record: dict[str, Any]) -> bool:
    """A flat record that is a profile update: identifiers and an object of user properties,
    nothing an event would hold. A record with any other key stays an event (and is told that
    event_name is missing): guessing that a misspelled event is an update would hide it."""
    return (
        "event_name" not in record
        and isinstance(record.get("user_properties"), dict)
        and record.keys() <= _FLAT_UPDATE_KEYS
    )


def _split_ops(props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(set, set once) from user_properties that may hold vendors' operations."""
    if not any(isinstance(k, str) and k.startswith("$") for k in props):
        return props, {}
    sets: dict[str, Any] = {}
    once: dict[str, Any] = {}
    plain: dict[str, Any] = {}
    for name, value in props.items():
        if name in _SET_OPS and isinstance(value, dict):
            sets.update(value)
        elif name in _ONCE_OPS and isinstance(value, dict):
            once.update(value)
        elif name not in _OTHER_OPS:
            plain[name] = value
    return {**plain, **sets}, once


def flatten_ops(props: dict[str, Any]) -> dict[str, Any]:
    """An event's user_properties with the vendors' operations applied within it: a set-once
    value loses to any other value of the same key (docs/profiles.md)."""
    sets, once = _split_ops(props)
    return {**once, **sets} if once or sets is not props else props


def recognize(user: Any, origin: tuple[int, int, int], key: bytes) -> ProfileUpdate | str | None:
    """A user object without events as a profile update; its first fault (the contract's
    message) if it is not a valid one; None if it has events (a part, not an update)."""
    if not isinstance(user, dict) or user.get("events") not in (None, []):
        return None
    if "user_properties" not in user:
        return None  # nothing to update: the contract's "events is required" says what is wrong
    message = contract.user_error({**user, "events": list(_PROBE)})
    if message is not None:
        return message
    props, once = _split_ops(user["user_properties"])
    stamp = user.get("timestamp")
    return ProfileUpdate(
        key, user["identifiers"], props, once, origin, stamp if isinstance(stamp, str) else None
    )


def fold(current: dict[str, Any] | None, update: ProfileUpdate, before: bool = False) -> Any:
    """`current` user_properties with `update` merged in at its place: after them (it wins)
    or, with `before`, ahead of them (they win). A set-once value never overwrites."""
    base = current or {}
    if before:
        return {**update.once, **update.props, **base}
    return {**update.once, **base, **update.props}


def pairs(identifiers: dict[str, Any]) -> list[tuple[str, Any]]:
    """The primary identifier values a person is matched by, as (kind, value). Called once per
    event while updates are carried, so strings, the common case, are taken first."""
    out: list[tuple[str, Any]] = []
    for name in _PRIMARY:
        value = identifiers.get(name)
        if value.__class__ is str:
            if value:
                out.append((name, value))
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out.append((name, value))
    return out
