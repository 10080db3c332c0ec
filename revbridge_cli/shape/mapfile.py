"""Mapping files (`--map FILE`, TOML), the shipped presets (`--preset NAME`), and `--rename`.

Everything that can be wrong in a mapping is found when it is read, before any record: the
message names the file and the line at fault (tomllib gives it for syntax errors; for the
rest the line is found by the key's name), and the CLI exits 2. The format is in the README
("Bringing data from elsewhere"), and every preset is an example of it
(`revbridge mapping show NAME`).
"""

from __future__ import annotations

import re
import tomllib
from importlib import resources
from typing import Any

from revbridge_cli import contract
from revbridge_cli.errors import ConfigError
from revbridge_cli.shape.mapping import (
    EVENT_FIELDS,
    TYPES,
    FieldRule,
    Mapping,
    MergeRule,
    Product,
    SetAside,
    Source,
)
from revbridge_cli.shape.timestamps import UNITS, known_zone

PRESETS = ("segment", "amplitude", "mixpanel", "posthog", "ga4")
_TOP = ("options", "fields", "merge", "set_aside", "profile_update")
_OPTIONS = ("unmapped", "timestamps", "drop_nulls", "json")
_FIELD_KEYS = ("from", "value", "type", "unit", "format", "zone", "unless_prefix")
_MERGE_KEYS = ("from", "exclude", "type")
_SET_ASIDE_KEYS = ("field", "in", "missing", "message")
_PROFILE_KEYS = ("field", "in")
_PRODUCT_KEYS = ("product", "missing")
_PRODUCT_TYPES = (None, "number", "integer", "string")
_TARGET_HEADS = ("identifiers", "user_properties", "properties")
_NAME = re.compile(r"[^\s.]+(?:\.[^\s.]+)*")


def preset_text(name: str) -> str:
    """The shipped TOML of a preset (what `revbridge mapping show NAME` prints)."""
    if name not in PRESETS:
        raise ConfigError(f"no preset {name!r}: the presets are {', '.join(PRESETS)}")
    return (
        resources.files("revbridge_cli.shape.presets").joinpath(f"{name}.toml").read_text("utf-8")
    )


def load_preset(name: str) -> Mapping:
    return parse(preset_text(name), f"preset {name}")


def load_file(path: str) -> Mapping:
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"--map {path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"--map {path}: not UTF-8 text (a mapping is a TOML file)") from None
    return parse(text, path)


def renames(pairs: list[str], base: Mapping | None = None) -> Mapping:
    """`--rename SRC=DST` (repeatable) as a mapping that keeps everything else, or on top of
    `base` (a file or preset), where a rename wins over the base's rule for DST."""
    rules = []
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        src, dst = src.strip(), dst.strip()
        if not sep or not _NAME.fullmatch(src) or not _NAME.fullmatch(dst):
            raise ConfigError(f"--rename {pair!r}: expected SOURCE=TARGET, e.g. userId=user_id")
        rules.append(FieldRule(_target(dst, f"--rename {pair}"), (src,)))
    if base is None:
        return Mapping("--rename", tuple(rules))
    targets = {r.target for r in rules}
    kept = tuple(r for r in base.fields if r.target not in targets)
    return Mapping(
        f"{base.name} with --rename",
        kept + tuple(rules),
        base.merges,
        base.set_aside,
        base.keep_unmapped,
        base.json_fields,
        base.timestamps,
        base.drop_nulls,
        base.profile_updates,
    )


def _target(name: str, where: str) -> str:
    """The canonical target of a field name: a primary identifier alone means identifiers.X;
    `event_name`, `timestamp`, `revenue`, `event_value` are the event's; any other bare name
    is an event property."""
    if not _NAME.fullmatch(name):
        raise ConfigError(f"{where}: {name!r} is not a field name")
    if name in contract.PRIMARY_IDENTIFIERS:
        return f"identifiers.{name}"
    head, _, rest = name.partition(".")
    if head in _TARGET_HEADS and not rest:
        raise ConfigError(f"{where}: {name!r} needs a field name after it ({name}.NAME)")
    if head in EVENT_FIELDS and rest:
        raise ConfigError(f"{where}: {name!r}: {head} is a value, not an object")
    return name


class _Reader:
    """One mapping document being checked, with the text to find line numbers in."""

    def __init__(self, text: str, name: str) -> None:
        self.text = text
        self.name = name

    def fail(self, message: str, *keys: str) -> ConfigError:
        """The error, at the line of the first of `keys` found in the text."""
        line = next((n for n in map(self._line, keys) if n is not None), None)
        where = f"{self.name}:{line}" if line else self.name
        return ConfigError(f"mapping {where}: {message}")

    def _line(self, key: str) -> int | None:
        """The line a key is set on: at the start of a line (`key =`, `[key]`), else inside
        an inline table (`{ key = ... }`)."""
        name = re.escape(key)
        for pattern in (
            rf'^\s*(?:\[+\s*)?["\']?{name}["\']?\s*(?:=|\]|$)',
            rf'[{{,]\s*["\']?{name}["\']?\s*=',
        ):
            match = re.search(pattern, self.text, re.M)
            if match:
                return self.text.count("\n", 0, match.start()) + 1
        return None

    def table(self, value: Any, key: str, allowed: tuple[str, ...] | None) -> dict[str, Any]:
        """`value` as a table whose keys are all `allowed` (None: any key)."""
        if not isinstance(value, dict):
            raise self.fail(f"{key} must be a table", key)
        for name in value:
            if allowed is not None and name not in allowed:
                known = ", ".join(allowed)
                raise self.fail(f"{key}: unknown key {name!r} (known: {known})", name, key)
        return value

    def paths(self, value: Any, key: str) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.fail(f"{key}: `from` must be a field name or a list of them", key)
        for item in items:
            if not isinstance(item, str) or not _NAME.fullmatch(item):
                raise self.fail(f"{key}: {item!r} is not a source field name", key)
        return tuple(items)

    def sources(self, value: Any, key: str) -> tuple[Source, ...]:
        """A field's `from`: names, where a list may also hold products
        (`{ product = [A, B], missing = { B = 1 } }`), tried in order like the names."""
        items = value if isinstance(value, list) else [value]
        out: list[Source] = []
        for item in items:
            if isinstance(item, dict):
                out.append(self.product(item, key))
            else:
                out.extend(self.paths(item, key))
        if not out:
            raise self.fail(f"{key}: `from` must be a field name or a list of them", key)
        return tuple(out)

    def product(self, spec: dict[str, Any], key: str) -> Product:
        spec = self.table(spec, f"{key}.from", _PRODUCT_KEYS)
        if "product" not in spec:
            raise self.fail(f"{key}: a table in `from` needs `product` (a list of fields)", key)
        factors = self.paths(spec["product"], "product")
        if len(factors) < 2:
            raise self.fail(f"{key}: a product needs at least two fields", "product", key)
        missing = spec.get("missing", {})
        if not isinstance(missing, dict):
            raise self.fail(f"{key}: missing must be a table (field = value)", "missing", key)
        for name, default in missing.items():
            if name not in factors:
                raise self.fail(f"{key}: missing names {name!r}, not a factor", "missing", key)
            if not contract.is_number(default):
                raise self.fail(f"{key}: missing.{name} must be a number", "missing", key)
        return Product(factors, tuple(missing.items()))


def parse(text: str, name: str) -> Mapping:
    """A mapping document as a `Mapping`; `ConfigError` naming the line at fault."""
    r = _Reader(text, name)
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"mapping {name}: not valid TOML: {e}") from None
    for key in doc:
        if key not in _TOP:
            raise r.fail(f"unknown section {key!r} (known: {', '.join(_TOP)})", key)
    options = r.table(doc.get("options", {}), "options", _OPTIONS)
    unmapped = options.get("unmapped", "keep")
    if unmapped not in ("keep", "drop"):
        raise r.fail(f"unmapped must be keep or drop, not {unmapped!r}", "unmapped")
    stamps = options.get("timestamps")
    if stamps not in (None, "strict", "lenient"):
        raise r.fail(f"timestamps must be strict or lenient, not {stamps!r}", "timestamps")
    drop_nulls = options.get("drop_nulls", False)
    if not isinstance(drop_nulls, bool):
        raise r.fail("drop_nulls must be true or false", "drop_nulls")
    json_fields = r.paths(options["json"], "json") if options.get("json") else ()
    fields = tuple(
        _field(r, key, spec) for key, spec in r.table(doc.get("fields", {}), "fields", None).items()
    )
    merges = tuple(
        _merge(r, key, spec) for key, spec in r.table(doc.get("merge", {}), "merge", None).items()
    )
    rules = doc.get("set_aside", [])
    if not isinstance(rules, list):
        raise r.fail("set_aside must be an array of tables ([[set_aside]])", "set_aside")
    set_aside = tuple(_set_aside(r, rule) for rule in rules)
    updates = doc.get("profile_update", [])
    if not isinstance(updates, list):
        raise r.fail("profile_update must be an array of tables ([[profile_update]])")
    profile_updates = tuple(_profile_update(r, rule) for rule in updates)
    if not fields and not merges and unmapped == "drop":
        raise r.fail("maps no field and drops the rest: every record would be empty")
    return Mapping(
        name,
        fields,
        merges,
        set_aside,
        unmapped == "keep",
        json_fields,
        stamps,
        drop_nulls,
        profile_updates,
    )


def _field(r: _Reader, key: str, spec: Any) -> FieldRule:
    try:
        target = _target(key, "fields")
    except ConfigError as e:
        raise r.fail(str(e).removeprefix("fields: "), key) from None
    if isinstance(spec, str | list):
        return FieldRule(target, r.sources(spec, key))
    spec = r.table(spec, key, _FIELD_KEYS)
    if ("from" in spec) == ("value" in spec):
        raise r.fail(f"{key}: give exactly one of `from` (a source field) or `value`", key)
    kind = spec.get("type")
    if kind is not None and kind not in TYPES:
        raise r.fail(f"{key}: type must be one of {', '.join(TYPES)}, not {kind!r}", key)
    unit = spec.get("unit")
    if unit is not None and unit not in UNITS:
        raise r.fail(f"{key}: unit must be one of {', '.join(UNITS)}, not {unit!r}", key)
    pattern = spec.get("format")
    if pattern is not None and not isinstance(pattern, str):
        raise r.fail(f"{key}: format must be a strptime pattern such as '%d/%m/%Y %H:%M'", key)
    zone = spec.get("zone")
    if zone is not None and not known_zone(zone):
        msg = (
            f"{key}: zone must be an IANA time zone such as 'America/Los_Angeles', not "
            f"{zone!r} (a machine without a time zone database needs `pip install tzdata`)"
        )
        raise r.fail(msg, "zone", key)
    if (unit or pattern or zone) and kind not in (None, "timestamp"):
        raise r.fail(f'{key}: unit, format and zone are for type = "timestamp"', key)
    if unit or pattern or zone:
        kind = "timestamp"
    prefix = spec.get("unless_prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise r.fail(f"{key}: unless_prefix must be text", key)
    if "value" in spec:
        return FieldRule(target, (), spec["value"], kind)
    sources = r.sources(spec["from"], key)
    if any(isinstance(s, Product) for s in sources) and kind not in _PRODUCT_TYPES:
        raise r.fail(f"{key}: a product is a number: type may be number, integer or string", key)
    return FieldRule(target, sources, kind=kind, unit=unit, pattern=pattern,
                     unless_prefix=prefix, zone=zone)  # fmt: skip


def _merge(r: _Reader, key: str, spec: Any) -> MergeRule:
    if key not in ("properties", "user_properties"):
        raise r.fail(f"merge: {key!r}: only properties and user_properties take objects", key)
    if isinstance(spec, str | list):
        return MergeRule(key, r.paths(spec, key))
    spec = r.table(spec, key, _MERGE_KEYS)
    if "from" not in spec:
        raise r.fail(f"merge.{key}: `from` is required", key)
    exclude = spec.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        raise r.fail(f"merge.{key}: exclude must be a list of key names or patterns", key)
    kind = spec.get("type")
    if kind not in (None, "json", "keyed_list"):
        raise r.fail(f"merge.{key}: type must be json or keyed_list, not {kind!r}", key)
    return MergeRule(key, r.paths(spec["from"], key), tuple(exclude), kind)


def _set_aside(r: _Reader, rule: Any) -> SetAside:
    rule = r.table(rule, "set_aside", _SET_ASIDE_KEYS)
    path, message = rule.get("field"), rule.get("message")
    if not isinstance(path, str) or not _NAME.fullmatch(path):
        raise r.fail("set_aside: `field` (a source field name) is required", "set_aside")
    if not isinstance(message, str) or not message:
        raise r.fail("set_aside: `message` (why such records are not sent) is required", path)
    values = rule.get("in", [])
    missing = rule.get("missing", False)
    if not isinstance(values, list) or not isinstance(missing, bool) or not (values or missing):
        raise r.fail("set_aside: give `in` (a list of values) or `missing = true`", path)
    return SetAside(path, tuple(values), missing, message)


def _profile_update(r: _Reader, rule: Any) -> SetAside:
    """Records matched by one field's value that are profile updates, not events."""
    rule = r.table(rule, "profile_update", _PROFILE_KEYS)
    path, values = rule.get("field"), rule.get("in")
    if not isinstance(path, str) or not _NAME.fullmatch(path):
        raise r.fail("profile_update: `field` (a source field name) is required")
    if not isinstance(values, list) or not values:
        raise r.fail("profile_update: `in` (a list of values) is required", path)
    return SetAside(path, tuple(values))
