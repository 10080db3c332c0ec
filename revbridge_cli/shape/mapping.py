"""A mapping: where each field of the API comes from in a record of another shape.

The value `--map FILE`, `--preset NAME` and `--rename SRC=DST` all become (`mapfile` reads
them). `Mapping.apply` turns one source record into one user object in the API's shape, or
raises `MappingError` with the reason the record cannot be sent; it is pure, and it runs
before the contract's check, so whatever it builds is checked like any other user.

Precedence inside one record, lowest first: source fields the mapping does not name (kept by
the flat-event rules, unless `unmapped = "drop"`), then the objects merged into `properties`
or `user_properties`, then each named field.

`unmapped = "drop"` drops a vendor's envelope, never a column already named as the API names
it (`user_id`, `email`, `phone_number`, `anon_id`, `event_name`, `timestamp`, `revenue`,
`event_value`) that no rule reads: a user who wrote `event_name` meant the API's, and dropping
it set every row aside as "event_name is required" with no hint the column was there.
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import orjson

from revbridge_cli import contract
from revbridge_cli.shape import timestamps

TYPES = ("string", "number", "integer", "boolean", "json", "timestamp", "keyed_list")
EVENT_FIELDS = ("event_name", "timestamp", "revenue", "event_value")
NUMERIC_TARGETS = ("revenue", "event_value")  # typed as numbers unless the mapping says else
_ABSENT = object()
_TRUE = frozenset(("true", "t", "yes", "y", "1"))
_FALSE = frozenset(("false", "f", "no", "n", "0"))
_KEYED_VALUES = ("string_value", "int_value", "double_value", "float_value")


class MappingError(Exception):
    """This record cannot be mapped; the message says why, for the rejected row."""


def lookup(record: Any, path: str) -> Any:
    """The value at a dotted path (`context.traits.email`), or _ABSENT. A key that itself
    holds dots is found first as it is."""
    if not isinstance(record, dict):
        return _ABSENT
    if path in record:
        return record[path]
    value: Any = record
    for part in path.split("."):
        if not isinstance(value, dict) or part not in value:
            return _ABSENT
        value = value[part]
    return value


def keyed_list(value: Any) -> Any:
    """GA4's `[{key, value: {string_value|int_value|double_value|float_value}}]` as an object;
    BigQuery's JSON writes INT64 as text, so an `int_value` string becomes a number."""
    if not isinstance(value, list):
        return value
    out: dict[str, Any] = {}
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("key"), str):
            continue
        inner = item.get("value")
        if isinstance(inner, dict):
            picked = None
            for name in _KEYED_VALUES:
                if inner.get(name) is not None:
                    picked = inner[name]
                    if name == "int_value" and isinstance(picked, str):
                        picked = convert(picked, "integer")
                    break
            inner = picked
        out[item["key"]] = inner
    return out


def convert(
    value: Any,
    kind: str,
    unit: str | None = None,
    pattern: str | None = None,
    zone: str | None = None,
) -> Any:
    """`value` as `kind`; `ValueError` with a reason when it is not one."""
    if kind == "string":
        if isinstance(value, str):
            return value
        return orjson.dumps(value).decode()
    if kind in ("number", "integer"):
        if contract.is_number(value):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value) if any(c in value for c in ".eE") else int(value)
            except ValueError:
                raise ValueError("is not a number") from None
            if number != number or number in (float("inf"), float("-inf")):
                raise ValueError("is not a number")
        else:
            raise ValueError("is not a number")
        if kind == "integer":
            if number != int(number):
                raise ValueError("is not an integer")
            return int(number)
        return number
    if kind == "boolean":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("is not a boolean (true/false, yes/no, 1/0)")
    if kind == "json":
        if not isinstance(value, str):
            return value
        try:
            return orjson.loads(value)
        except orjson.JSONDecodeError as e:
            raise ValueError(f"is not JSON text ({e})") from None
    if kind == "timestamp":
        try:
            return timestamps.normalize(value, unit, pattern, zone)
        except ValueError as e:
            raise ValueError(f"is not a time we can read ({e}; {timestamps.READABLE})") from None
    if kind == "keyed_list":
        return keyed_list(value)
    raise ValueError(f"unknown type {kind}")


@dataclass(frozen=True, slots=True)
class Product:
    """A value computed as the product of source fields (Amplitude's `$price` x `$quantity`).

    It has a value when every factor does; a factor named in `missing` that is absent takes
    that value instead (Amplitude counts a missing `$quantity` as 1). Each factor must be a
    number (or numeric text); the product is computed in decimal, so 9.99 x 3 is 29.97 and
    not 29.970000000000002, and is an integer when every factor is one.
    """

    factors: tuple[str, ...]
    missing: tuple[tuple[str, Any], ...] = ()

    def value(self, record: dict[str, Any], target: str) -> Any:
        defaults = dict(self.missing)
        numbers = []
        for path in self.factors:
            value = lookup(record, path)
            if value is _ABSENT or value is None:
                if path not in defaults:
                    return _ABSENT
                value = defaults[path]
            try:
                numbers.append(convert(value, "number"))
            except ValueError as e:
                raise MappingError(f"{_where(target)} {value!r} {e} (from {path})") from None
        if all(isinstance(n, int) for n in numbers):
            total = 1
            for n in numbers:
                total *= n
            return total
        exact = Decimal(1)
        for n in numbers:
            exact *= Decimal(repr(n)) if isinstance(n, float) else Decimal(n)
        return float(exact)

    def __str__(self) -> str:
        return " x ".join(self.factors)


Source = str | Product


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One API field: from the first source that has a value (a path or a product), or a
    constant."""

    target: str  # "identifiers.user_id", "user_properties.plan", "event_name", "properties.x"
    sources: tuple[Source, ...] = ()
    constant: Any = _ABSENT
    kind: str | None = None
    unit: str | None = None
    pattern: str | None = None
    unless_prefix: str | None = None
    zone: str | None = None  # the time zone of times written without one (a timestamp)

    @property
    def paths(self) -> tuple[str, ...]:
        """Every source path the rule reads, a product's factors included."""
        out: list[str] = []
        for source in self.sources:
            out.extend(source.factors if isinstance(source, Product) else (source,))
        return tuple(out)

    def value(self, record: dict[str, Any]) -> Any:
        if self.constant is not _ABSENT:
            return self.constant
        for source in self.sources:
            if isinstance(source, Product):
                value = source.value(record, self.target)
            else:
                value = lookup(record, source)
                if value is None or self._skipped(value):
                    continue
            if value is _ABSENT:
                continue
            if self.kind is None:
                return value
            try:
                return convert(value, self.kind, self.unit, self.pattern, self.zone)
            except ValueError as e:
                raise MappingError(f"{_where(self.target)} {value!r} {e} (from {source})") from None
        return _ABSENT

    def _skipped(self, value: Any) -> bool:
        prefix = self.unless_prefix
        return bool(prefix) and isinstance(value, str) and value.startswith(prefix or "")


@dataclass(frozen=True, slots=True)
class MergeRule:
    """Objects whose keys all become event properties or user properties."""

    target: str  # "properties" or "user_properties"
    sources: tuple[str, ...]
    exclude: tuple[str, ...] = ()  # key names or shell patterns (`mp_*`)
    kind: str | None = None  # "json" or "keyed_list": how to read each source first


@dataclass(frozen=True, slots=True)
class SetAside:
    """Records a mapping cannot send, matched by one field's value, set aside with `message`."""

    path: str
    values: tuple[Any, ...] = ()
    missing: bool = False
    message: str = ""


@dataclass(frozen=True)
class Mapping:
    name: str  # "preset segment", "FILE", "--rename": named in messages
    fields: tuple[FieldRule, ...] = ()
    merges: tuple[MergeRule, ...] = ()
    set_aside: tuple[SetAside, ...] = ()
    keep_unmapped: bool = True
    json_fields: tuple[str, ...] = ()
    timestamps: str | None = None
    drop_nulls: bool = False
    profile_updates: tuple[SetAside, ...] = ()  # records that are profile updates (no event)
    _consumed: frozenset[str] = field(default=frozenset(), init=False, repr=False)
    _api_names: tuple[str, ...] = field(default=(), init=False, repr=False)
    _taken: dict[str, frozenset[str]] = field(default_factory=dict, init=False, repr=False)

    def __post_init__(self) -> None:
        paths = [p for f in self.fields for p in f.paths]
        paths += [p for m in self.merges for p in m.sources]
        consumed = frozenset(p.split(".")[0] for p in paths)
        object.__setattr__(self, "_consumed", consumed)
        names = (*contract.PRIMARY_IDENTIFIERS, *EVENT_FIELDS)
        object.__setattr__(self, "_api_names", tuple(n for n in names if n not in consumed))
        taken: dict[str, set[str]] = {}  # per merged object, the keys a named field takes
        for merge in self.merges:
            for source in merge.sources:
                prefix = source + "."
                taken[source] = {p[len(prefix) :] for p in paths if p.startswith(prefix)}
        object.__setattr__(self, "_taken", {k: frozenset(v) for k, v in taken.items()})

    def apply(self, record: dict[str, Any]) -> dict[str, Any]:
        """The user object `record` maps to; `MappingError` if it cannot be sent. A profile
        update (`[[profile_update]]`) maps to a user without events (shape/profile.py)."""
        source = self._decoded(record)
        for aside in self.set_aside:
            value = lookup(source, aside.path)
            absent = value is _ABSENT or value is None
            if (aside.missing and absent) or (not absent and value in aside.values):
                raise MappingError(aside.message.replace("{value}", str(value)))
        update = any(lookup(source, u.path) in u.values for u in self.profile_updates)
        identifiers: dict[str, Any] = {}
        profile: dict[str, Any] = {}
        event: dict[str, Any] = {}
        if self.keep_unmapped:
            self._keep(source, identifiers, profile, event)
        else:  # the API's own names pass through (module docstring)
            for name in self._api_names:
                if name in source:
                    _place(_target(name), source[name], identifiers, profile, event)
        for merge in self.merges:
            into = event if merge.target == "properties" else profile
            self._merge(source, merge, into)
        for rule in self.fields:
            value = rule.value(source)
            if value is _ABSENT:
                continue
            if rule.kind is None and rule.target in NUMERIC_TARGETS:
                try:
                    value = convert(value, "number")
                except ValueError as e:
                    raise MappingError(f"{_where(rule.target)} {value!r} {e}") from None
            _place(rule.target, value, identifiers, profile, event)
        if not contract.has_primary_identifier(identifiers):
            primary = tuple(f"identifiers.{k}" for k in contract.PRIMARY_IDENTIFIERS)
            raise MappingError(f"{contract.IDENTIFIER_REQUIRED}{self._hint(*primary)}")
        if update:
            out = {"identifiers": identifiers, "user_properties": profile}
            if isinstance(event.get("timestamp"), str):
                out["timestamp"] = event["timestamp"]
            return out
        if not isinstance(event.get("event_name"), str) or not event["event_name"]:
            raise MappingError(f"events[0]: event_name is required{self._hint('event_name')}")
        user: dict[str, Any] = {"identifiers": identifiers}
        if profile:
            user["user_properties"] = profile
        user["events"] = [event]
        return user

    def _hint(self, *targets: str) -> str:
        """Which sources could have filled `targets`: only those, so a source mapped to a
        profile field such as `identifiers.first_name` is not named as a missing identifier."""
        paths = [str(p) for f in self.fields if f.target in targets for p in f.sources]
        if paths:
            return f": none of {', '.join(paths)} has a value ({self.name})"
        if targets[0].startswith("identifiers."):
            return f": {self.name} maps no source to one of them"
        return ""

    def _decoded(self, record: dict[str, Any]) -> dict[str, Any]:
        if not self.json_fields:
            return record
        source = dict(record)
        for name in self.json_fields:
            value = source.get(name)
            if isinstance(value, str):
                try:
                    source[name] = orjson.loads(value)
                except orjson.JSONDecodeError as e:
                    raise MappingError(f"{name}: not JSON text ({e})") from None
        return source

    def _keep(
        self,
        source: dict[str, Any],
        identifiers: dict[str, Any],
        profile: dict[str, Any],
        event: dict[str, Any],
    ) -> None:
        """Unmapped source fields, by the flat-event rules (docs/inputs.md)."""
        consumed = self._consumed
        for key, value in source.items():
            if key in consumed:
                continue
            if key in contract.PRIMARY_IDENTIFIERS:
                identifiers[key] = value
            elif key == "identifiers" and isinstance(value, dict):
                identifiers.update((k, v) for k, v in value.items() if k not in identifiers)
            elif key == "user_properties" and isinstance(value, dict):
                profile.update(value)
            else:
                event[key] = value

    def _merge(self, source: dict[str, Any], merge: MergeRule, into: dict[str, Any]) -> None:
        for path in merge.sources:
            value = lookup(source, path)
            if merge.kind is not None and value is not _ABSENT and value is not None:
                try:
                    value = convert(value, merge.kind)
                except ValueError as e:
                    raise MappingError(f"{path}: {e}") from None
            if not isinstance(value, dict):
                continue
            taken = self._taken.get(path, frozenset())
            for key, item in value.items():
                if key in taken or any(fnmatch.fnmatchcase(key, p) for p in merge.exclude):
                    continue
                into[key] = item


def _target(api_name: str) -> str:
    return f"identifiers.{api_name}" if api_name in contract.PRIMARY_IDENTIFIERS else api_name


def _where(target: str) -> str:
    """A target as the contract's messages name it: `events[0]: revenue`, `identifiers.x`."""
    head, _, rest = target.partition(".")
    if head in ("identifiers", "user_properties") and rest:
        return target
    return f"events[0]: {target.removeprefix('properties.')}"


def _place(
    target: str,
    value: Any,
    identifiers: dict[str, Any],
    profile: dict[str, Any],
    event: dict[str, Any],
) -> None:
    head, _, rest = target.partition(".")
    if head == "identifiers" and rest:
        identifiers[rest] = value
    elif head == "user_properties" and rest:
        profile[rest] = value
    elif head == "user_properties" and isinstance(value, dict):
        profile.update(value)
    elif head == "properties" and rest:
        event[rest] = value
    else:
        event[target] = value
