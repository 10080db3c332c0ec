"""Shaping: from one parsed input record to the user objects the API takes, checked.

A record is one of three shapes (docs/inputs.md): a flat event with the identifiers at
top level, a user in the API's own shape, or a row of our rejected file (whose `user`, or
`raw` text once fixed, is what gets sent). A line holding a whole request body
(`{"users": [...]}`) yields one part per user. Everything here is pure: no I/O, no clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from revbridge_cli import contract
from revbridge_cli.input.raw import describe_json_error
from revbridge_cli.shape import timestamps
from revbridge_cli.shape.mapping import Mapping, MappingError
from revbridge_cli.shape.near_miss import KEYS as _NEAR_MISS
from revbridge_cli.shape.profile import ProfileUpdate, flatten_ops, is_update_shape, recognize
from revbridge_cli.shape.timestamps import epoch_to_iso

__all__ = [
    "Invalid", "Origin", "ProfileUpdate", "ShapeOptions", "UserPart", "epoch_to_iso", "shape",
    "user_key",
]  # fmt: skip

# (file number, line or record number, byte offset just past the record). A tuple, not an
# object: one is made per input record on the hot path, and the journal only needs these three.
Origin = tuple[int, int, int]

_USER_KEYS = frozenset(("identifiers", "user_properties", *contract.PRIMARY_IDENTIFIERS))
_REJECTED_ROW_KEYS = frozenset(("userIndex", "message"))


@dataclass(slots=True)
class UserPart:
    """Some events of one user, ready to pack: the unit the packer groups by `key`."""

    key: bytes  # `user_key`: the primary identifiers as canonical JSON text
    identifiers: dict[str, Any]
    user_properties: dict[str, Any] | None
    events: list[dict[str, Any]]
    origin: Origin
    untimed: int = 0  # events without a timestamp: the server would stamp them "now"

    def as_user(self) -> dict[str, Any]:
        """The user object exactly as the API would receive it for this part alone."""
        user: dict[str, Any] = {"identifiers": self.identifiers}
        if self.user_properties is not None:
            user["user_properties"] = self.user_properties
        user["events"] = self.events
        return user


@dataclass(slots=True)
class Invalid:
    """A record set aside before sending: the rejected file's row, short of its source.

    `row` is the source record as read, for a record that went through a mapping: the fix
    loop sends it back through the same mapping (and `user` is then None)."""

    message: str
    user: Any = None
    raw: str | None = None
    row: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ShapeOptions:
    """What the user asked of the shaping step: `--require-timestamp`, `--epoch-timestamps`,
    `--timestamps lenient`, `--drop-nulls`, and a mapping (`--map`, `--preset`, `--rename`)
    applied to each record before it is shaped."""

    require_timestamp: bool = False
    epoch_timestamps: bool = False
    lenient_timestamps: bool = False
    drop_nulls: bool = False
    mapping: Mapping | None = None
    near_miss: Any = None  # a `near_miss.Tally` counting unused identifier-like keys
    keep_rows: bool = False  # CSV or Parquet inputs: a flat record set aside keeps its row

    @property
    def timestamp_rules(self) -> bool:
        """An option that reads each event's timestamp beyond the contract's check: one list
        of them, so that the two properties below cannot disagree on it."""
        return bool(self.require_timestamp or self.epoch_timestamps or self.lenient_timestamps)

    @property
    def general_only(self) -> bool:
        """Every record must take the general path: the fast lane knows none of these."""
        return self.timestamp_rules or self.mapping is not None

    @property
    def adjusts_events(self) -> bool:
        """Each event goes through `_apply_options` before the contract's check."""
        return self.timestamp_rules or self.drop_nulls


def user_key(identifiers: dict[str, Any]) -> bytes:
    """Records with equal primary identifiers are one user (docs/inputs.md, "Input shapes"), by the
    rule the sandbox keys profiles with (`contract.identity_key`: empty ones do not count).

    As JSON text: any value can be compared that way, and it is the smallest key to hold for
    the thousands of users the packer's buffer keeps (a tuple of the strings costs three
    times as much)."""
    return contract.identity_key(identifiers)


def _flat_to_user(record: dict[str, Any]) -> dict[str, Any]:
    ids = record.get("identifiers")
    identifiers: Any = dict(ids) if isinstance(ids, dict) else ids
    if identifiers is None:
        identifiers = {}
    if isinstance(identifiers, dict):
        for name in contract.PRIMARY_IDENTIFIERS:
            if name in record:
                identifiers[name] = record[name]
    user: dict[str, Any] = {"identifiers": identifiers}
    if "user_properties" in record:
        user["user_properties"] = record["user_properties"]
    if is_update_shape(record):  # no event: a profile update (profile.py)
        if "timestamp" in record:
            user["timestamp"] = record["timestamp"]
        return user
    user["events"] = [{k: v for k, v in record.items() if k not in _USER_KEYS}]
    return user


def _is_rejected_row(record: dict[str, Any]) -> bool:
    return record.keys() >= _REJECTED_ROW_KEYS and (
        "user" in record or "raw" in record or "row" in record
    )


def _is_flat(record: dict[str, Any]) -> bool:
    """A flat event (docs/inputs.md), not a user, a request body or a rejected row."""
    return "events" not in record and "users" not in record and not _is_rejected_row(record)


def _users_of(record: dict[str, Any]) -> list[Any] | Invalid:
    """The user objects a record stands for, before any check."""
    if _is_rejected_row(record):
        if record.get("user") is not None:
            return [record["user"]]
        if isinstance(record.get("row"), dict):
            return _users_of(record["row"])
        raw = record.get("raw")
        if not isinstance(raw, str):
            return Invalid("rejected row has neither `user` nor `raw` to send", raw=None)
        try:
            fixed = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            return Invalid(describe_json_error(raw, exc), raw=raw)
        if not isinstance(fixed, dict):
            return Invalid("`raw` is not a JSON object", raw=raw)
        return _users_of(fixed)
    users = record.get("users")
    if isinstance(users, list) and "events" not in record:
        if not users:  # a request body the API would refuse whole: set aside, not skipped
            return Invalid(contract.ERR_USERS_EMPTY, raw=orjson.dumps(record).decode())
        return users
    if "events" in record:
        return [record]
    return [_flat_to_user(record)]


_TYPED = ("timestamp", "revenue", "event_value")


def _apply_options(
    user: dict[str, Any], options: ShapeOptions
) -> tuple[dict[str, Any], str | None]:
    """The user with nulls dropped, timestamps normalized and missing ones caught, and the
    first fault: before the contract's check, since a null revenue or a numeric timestamp is
    only valid once this is done. A changed user or event is a copy, so the record as read is
    never changed."""
    if options.drop_nulls and "user_properties" in user and user["user_properties"] is None:
        user = {k: v for k, v in user.items() if k != "user_properties"}
    events = user.get("events")
    if not isinstance(events, list):
        return user, None
    first: str | None = None  # every event is converted; the first fault is reported
    out = []
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            out.append(event)
            continue
        if options.drop_nulls and any(event.get(n, 0) is None for n in _TYPED):
            event = {k: v for k, v in event.items() if not (k in _TYPED and v is None)}
        stamp = event.get("timestamp")
        if "timestamp" not in event:
            if options.require_timestamp:
                first = first or f"events[{index}]: timestamp is missing (--require-timestamp)"
        elif options.lenient_timestamps:
            try:
                event = {**event, "timestamp": timestamps.normalize(stamp)}
            except ValueError as e:
                first = first or (
                    f"events[{index}]: timestamp {stamp!r} is not a time we can read "
                    f"({e}; {timestamps.READABLE})"
                )
        elif options.epoch_timestamps and contract.is_number(stamp):
            try:
                event = {**event, "timestamp": timestamps.normalize(stamp)}
            except ValueError:
                first = first or f"events[{index}]: timestamp {stamp!r} is not a usable epoch time"
        out.append(event)
    return {**user, "events": out}, first


_PRIMARY = contract.PRIMARY_IDENTIFIERS
_dumps = orjson.dumps
_DEFAULT_OPTIONS = ShapeOptions()
_ABSENT = object()
# Keys that send a record down the general path: the other shapes' keys, and the near misses.
_NOT_FAST = frozenset(("events", "users", "userIndex", "identifiers", *_NEAR_MISS))


def fast_flat_event(record: dict[str, Any], origin: Origin) -> UserPart | None:
    """The common case, a valid flat event with its identifiers at top level, in one pass.

    None sends the record down the general path. This runs once per input record, so it
    repeats the contract's checks inline rather than building a user object to check; the
    general path (and its exact message) takes anything unusual. The record itself is never
    changed (a caller may hold it, as a library caller would): the event is a shallow copy
    less the identifiers, made by `dict.copy` and a few pops, which cost less than a
    comprehension over every key.
    """
    if not _NOT_FAST.isdisjoint(record):  # another shape, or a `userId` and the like, which
        return None  # the general path counts for the near-miss warning
    event_name = record.get("event_name")
    if type(event_name) is not str or not event_name:
        return None
    stamp = record.get("timestamp", _ABSENT)
    if stamp is _ABSENT:
        untimed = 1
    elif contract.is_iso8601(stamp):
        untimed = 0
    else:
        return None
    value = record.get("revenue", 0)
    if type(value) is not float and type(value) is not int:
        return None
    value = record.get("event_value", 0)
    if type(value) is not float and type(value) is not int:
        return None
    props = record.get("user_properties")
    if (props is not None and type(props) is not dict) or (
        props is None and "user_properties" in (record)
    ):
        return None
    key = (
        record.get("user_id"), record.get("email"), record.get("phone_number"),
        record.get("anon_id"),
    )  # fmt: skip
    usable = empty = False
    for value in key:
        kind = type(value)
        if kind is str:
            if value:
                usable = True
            else:
                empty = True
        elif kind is int or kind is float:
            usable = True
        elif value is not None:
            return None  # an unhashable or odd identifier: the general path says what to do
    if not usable:
        return None
    # What `user_key` gives: non-empty strings, numbers or null (an empty one is no identifier).
    key_text = _dumps([None if v == "" else v for v in key] if empty else key)
    event = record.copy()
    identifiers = {}
    for name in _PRIMARY:
        if name in event:
            identifiers[name] = event.pop(name)
    if props is not None:
        del event["user_properties"]
    return UserPart(key_text, identifiers, props, [event], origin, untimed)


def shape(
    record: Any, origin: Origin, options: ShapeOptions = _DEFAULT_OPTIONS
) -> list[UserPart | ProfileUpdate | Invalid]:
    """Turn one parsed record into checked user parts, or the reason each is set aside.

    A user object without events but with user_properties is a profile update (profile.py),
    carried on the person's events by the packer's side, not a fault.

    The check is the contract's own (`contract.user_error`), so what passes here is what the
    server takes; a bad record is set aside alone and the user's other records still go.
    """
    if type(record) is dict and not options.general_only:
        part = fast_flat_event(record, origin)
        if part is not None and not (part.untimed and options.require_timestamp):
            return [part]
    if not isinstance(record, dict):
        return [Invalid(f"not a JSON object (got {type(record).__name__})")]
    if options.near_miss is not None and not _NEAR_MISS.isdisjoint(record):
        options.near_miss.note(record)
    row = None
    if options.mapping is not None:
        mapped = _mapped(record, options.mapping)
        if isinstance(mapped, Invalid):
            return [mapped]
        users, row = mapped
    else:
        found = _users_of(record)
        if isinstance(found, Invalid):
            return [found]
        users = found
        if options.keep_rows and _is_flat(record):
            row = record  # a CSV or Parquet row: set aside as it was read
    out: list[UserPart | ProfileUpdate | Invalid] = []
    for user in users:
        message: str | None = None
        if isinstance(user, dict) and not user.get("events") and "user_properties" in user:
            ids = user.get("identifiers")
            key = user_key(ids) if isinstance(ids, dict) else b""
            update = recognize(user, origin, key)
            if isinstance(update, ProfileUpdate):
                out.append(update)
                continue
            message = update
        if isinstance(user, dict) and options.adjusts_events and message is None:
            # Before the check: a numeric timestamp is only valid once converted.
            user, message = _apply_options(user, options)
        message = message or contract.user_error(user)
        if message is not None:
            out.append(Invalid(message, row=row) if row is not None else Invalid(message, user))
            continue
        identifiers = user["identifiers"]
        events = user["events"]
        untimed = sum(1 for e in events if "timestamp" not in e)
        props = user.get("user_properties")
        if props and options.mapping is not None:  # a preset's $set_once, Amplitude's ops
            props = flatten_ops(props)
        out.append(
            UserPart(
                user_key(identifiers),
                identifiers,
                props,
                events,
                origin,
                untimed,
            )
        )
    return out


def _mapped(record: dict[str, Any], mapping: Any) -> tuple[list[Any], Any] | Invalid:
    """The users a record maps to, and the source row to keep if one is set aside.

    A rejected row is unwrapped first: its `user` is already in the API's shape and goes as it
    is; its `row` (a source record set aside earlier) or fixed `raw` text is mapped again,
    so the fix loop goes through the same mapping when the same options are given.
    """
    source: Any = record
    if _is_rejected_row(record):
        if record.get("user") is not None:
            return [record["user"]], None
        if isinstance(record.get("row"), dict):
            source = record["row"]
        else:
            raw = record.get("raw")
            if not isinstance(raw, str):
                return Invalid("rejected row has neither `user` nor `raw` to send", raw=None)
            try:
                source = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                return Invalid(f"`raw` is still not valid JSON ({exc})", raw=raw)
            if not isinstance(source, dict):
                return Invalid("`raw` is not a JSON object", raw=raw)
    try:
        return [mapping.apply(source)], source
    except MappingError as exc:
        return Invalid(str(exc), row=source)
