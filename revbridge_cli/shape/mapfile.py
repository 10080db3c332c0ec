"""Mapping files (`--map FILE`, TOML), the shipped presets (`--preset NAME`), and `--rename`.

Everything that can be wrong in a mapping is found when it is read, before any record: the
message names the file and the line at fault (tomllib gives it for syntax errors; for the
rest the line is found by the key's name), and the CLI exits 2. The format is in
docs/mappings-and-presets.md, and every preset is an example of it
(`revbridge mapping show NAME`).
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from importlib import resources
from typing import Any

from revbridge_cli import contract
from revbridge_cli.errors import ConfigError, UsageError
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
from revbridge_cli.shape.toml_lines import Path, key_lines, line_of

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
_AT_LINE = re.compile(r"\(at line (\d+), column (\d+)\)")  # tomllib's own words
_NAME = re.compile(r"[^\s.]+(?:\.[^\s.]+)*")


def load_mapping(
    map_file: str | None, preset: str | None, rename: list[str] | None, unmapped: str | None
) -> Mapping | None:
    """The one mapping the options ask for, checked whole before any record is read."""
    if map_file and preset:
        raise UsageError(
            "--map and --preset cannot be combined: copy the preset into your file "
            f"(revbridge mapping show {preset} > mapping.toml) and adjust it there"
        )
    if unmapped not in (None, "keep", "drop"):
        raise UsageError(f"--unmapped must be keep or drop, not {unmapped!r}")
    base = load_file(map_file) if map_file else None
    if preset:
        base = load_preset(preset)
    mapping = renames(rename, base) if rename else base
    if mapping is None:
        if unmapped:
            raise UsageError("--unmapped needs a mapping: --map, --preset or --rename")
        return None
    if unmapped:
        mapping = dataclasses.replace(mapping, keep_unmapped=unmapped == "keep")
    return mapping


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
    `base` (a file or preset), where a rename wins over the base's rule for DST (however the
    base spells it: `x` is `properties.x`). Two pairs for one DST are refused, naming both."""
    rules: list[FieldRule] = []
    given: dict[str, str] = {}  # destination -> the pair that fills it
    for pair in pairs:
        src, sep, dst = pair.partition("=")
        src, dst = src.strip(), dst.strip()
        if not sep or not _NAME.fullmatch(src) or not _NAME.fullmatch(dst) or "=" in dst:
            raise ConfigError(f"--rename {pair!r}: expected SOURCE=TARGET, e.g. userId=user_id")
        rule = FieldRule(_target(dst, f"--rename {pair}"), (src,))
        dest = destination(rule.target)
        if dest in given:
            raise ConfigError(
                f"--rename {given[dest]!r} and --rename {pair!r} both map to {dest}: keep one"
            )
        given[dest] = pair
        rules.append(rule)
    if base is None:
        return Mapping("--rename", tuple(rules))
    kept = tuple(r for r in base.fields if destination(r.target) not in given)
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
    """One mapping document being checked, with where each of its keys is set."""

    def __init__(self, text: str, name: str) -> None:
        self.lines = key_lines(text)
        self.name = name

    def line(self, *paths: Path) -> int | None:
        return next((n for n in (line_of(self.lines, p) for p in paths) if n is not None), None)

    def fail(self, message: str, *paths: Path) -> ConfigError:
        """The error, at the line of the first of `paths` (key paths) set in the document."""
        line = self.line(*paths)
        where = f"{self.name}:{line}" if line else self.name
        return ConfigError(f"mapping {where}: {message}")

    def table(
        self, value: Any, key: str, at: Path, allowed: tuple[str, ...] | None
    ) -> dict[str, Any]:
        """`value` (set at `at`) as a table whose keys are all `allowed` (None: any key)."""
        if not isinstance(value, dict):
            raise self.fail(f"{key} must be a table", at)
        for name in value:
            if allowed is not None and name not in allowed:
                known = ", ".join(allowed)
                raise self.fail(f"{key}: unknown key {name!r} (known: {known})", (*at, name), at)
        return value

    def paths(self, value: Any, key: str, at: Path) -> tuple[str, ...]:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list) or not items:
            raise self.fail(f"{key}: `from` must be a field name or a list of them", at)
        for item in items:
            if not isinstance(item, str) or not _NAME.fullmatch(item):
                raise self.fail(f"{key}: {item!r} is not a source field name", at)
        return tuple(items)

    def sources(self, value: Any, key: str, at: Path) -> tuple[Source, ...]:
        """A field's `from`: names, where a list may also hold products
        (`{ product = [A, B], missing = { B = 1 } }`), tried in order like the names."""
        items = value if isinstance(value, list) else [value]
        out: list[Source] = []
        for item in items:
            if isinstance(item, dict):
                out.append(self.product(item, key, at))
            else:
                out.extend(self.paths(item, key, at))
        if not out:
            raise self.fail(f"{key}: `from` must be a field name or a list of them", at)
        return tuple(out)

    def product(self, spec: dict[str, Any], key: str, at: Path) -> Product:
        """A product in `from` (set at `at`): its keys are on the line it opens on."""
        inline = (*at, "product"), (*at, "missing"), at
        spec = self.table(spec, f"{key}.from", at, _PRODUCT_KEYS)
        if "product" not in spec:
            raise self.fail(f"{key}: a table in `from` needs `product` (a list of fields)", at)
        factors = self.paths(spec["product"], "product", at)
        if len(factors) < 2:
            raise self.fail(f"{key}: a product needs at least two fields", *inline)
        missing = spec.get("missing", {})
        if not isinstance(missing, dict):
            raise self.fail(f"{key}: missing must be a table (field = value)", *inline[1:])
        for name, default in missing.items():
            if name not in factors:
                raise self.fail(f"{key}: missing names {name!r}, not a factor", *inline[1:])
            if not contract.is_number(default):
                raise self.fail(f"{key}: missing.{name} must be a number", *inline[1:])
        return Product(factors, tuple(missing.items()))


def parse(text: str, name: str) -> Mapping:
    """A mapping document as a `Mapping`; `ConfigError` naming the line at fault."""
    try:
        doc = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        pos = _AT_LINE.search(str(e))  # where every other mapping error says it: FILE:LINE
        if pos is None:
            raise ConfigError(f"mapping {name}: not valid TOML: {e}") from None
        why = f"{str(e)[: pos.start()].rstrip()} (column {pos.group(2)})"
        raise ConfigError(f"mapping {name}:{pos.group(1)}: not valid TOML: {why}") from None
    r = _Reader(text, name)
    for key in doc:
        if key not in _TOP:
            raise r.fail(f"unknown section {key!r} (known: {', '.join(_TOP)})", (key,))
    options = r.table(doc.get("options", {}), "options", ("options",), _OPTIONS)
    unmapped = options.get("unmapped", "keep")
    if unmapped not in ("keep", "drop"):
        raise r.fail(f"unmapped must be keep or drop, not {unmapped!r}", ("options", "unmapped"))
    stamps = options.get("timestamps")
    if stamps not in (None, "strict", "lenient"):
        at = ("options", "timestamps")
        raise r.fail(f"timestamps must be strict or lenient, not {stamps!r}", at)
    drop_nulls = options.get("drop_nulls", False)
    if not isinstance(drop_nulls, bool):
        raise r.fail("drop_nulls must be true or false", ("options", "drop_nulls"))
    json_fields = (
        r.paths(options["json"], "json", ("options", "json")) if options.get("json") else ()
    )
    table = r.table(doc.get("fields", {}), "fields", ("fields",), None)
    fields = tuple(_field(r, key, spec) for key, spec in table.items())
    _one_source_each(r, list(table), fields)
    merges = tuple(
        _merge(r, key, spec)
        for key, spec in r.table(doc.get("merge", {}), "merge", ("merge",), None).items()
    )
    rules = doc.get("set_aside", [])
    if not isinstance(rules, list):
        raise r.fail("set_aside must be an array of tables ([[set_aside]])", ("set_aside",))
    set_aside = tuple(_set_aside(r, rule, ("set_aside", str(i))) for i, rule in enumerate(rules))
    updates = doc.get("profile_update", [])
    if not isinstance(updates, list):
        msg = "profile_update must be an array of tables ([[profile_update]])"
        raise r.fail(msg, ("profile_update",))
    profile_updates = tuple(
        _profile_update(r, rule, ("profile_update", str(i))) for i, rule in enumerate(updates)
    )
    if not fields and not merges and unmapped == "drop":
        at = ("options", "unmapped")
        raise r.fail("maps no field and drops the rest: every record would be empty", at)
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


def destination(target: str) -> str:
    """Where a target lands in the request, however it is spelled: `x` and `properties.x`
    are one event property, `user_id` and `identifiers.user_id` one identifier, and
    `properties.event_name` is `event_name`: an event's properties are keys of the event, so
    one named as an API field would overwrite it."""
    head, _, rest = target.partition(".")
    if head == "properties" and rest in EVENT_FIELDS:
        return rest
    if head in _TARGET_HEADS or target in EVENT_FIELDS:
        return target
    return f"properties.{target}"


def _one_source_each(r: _Reader, keys: list[str], fields: tuple[FieldRule, ...]) -> None:
    """Two rules that fill one destination make the record's value depend on which is read
    last: a user's events under another user's identifier. Refused, naming both lines."""
    seen: dict[str, str] = {}
    for key, rule in zip(keys, fields, strict=True):
        dest = destination(rule.target)
        if dest in seen:
            first = seen[dest]
            line = r.line(("fields", first))
            raise r.fail(
                f"{key!r} and {first!r} (line {line}) both map to {dest}: "
                "keep one (a list in `from` tries several sources in order)",
                ("fields", key),
            )
        seen[dest] = key


def _field(r: _Reader, key: str, spec: Any) -> FieldRule:
    at = ("fields", key)
    if key in _TARGET_HEADS and isinstance(spec, dict) and not set(spec) <= set(_FIELD_KEYS):
        # TOML reads `[fields.identifiers]` and `identifiers.user_id = ...` (unquoted) as a
        # table named `identifiers`: the mapping format names each target in one quoted key.
        some = next(iter(spec))
        msg = (
            f"{key}: name each target in one quoted key, '\"{key}.{some}\" = ...', "
            f"not a [fields.{key}] table or an unquoted dotted key"
        )
        raise r.fail(msg, (*at, some), at)
    try:
        target = _target(key, "fields")
    except ConfigError as e:
        raise r.fail(str(e).removeprefix("fields: "), at) from None
    if isinstance(spec, str | list):
        return FieldRule(target, r.sources(spec, key, at))
    spec = r.table(spec, key, at, _FIELD_KEYS)
    if ("from" in spec) == ("value" in spec):
        raise r.fail(f"{key}: give exactly one of `from` (a source field) or `value`", at)
    kind = spec.get("type")
    if kind is not None and kind not in TYPES:
        msg = f"{key}: type must be one of {', '.join(TYPES)}, not {kind!r}"
        raise r.fail(msg, (*at, "type"), at)
    unit = spec.get("unit")
    if unit is not None and unit not in UNITS:
        msg = f"{key}: unit must be one of {', '.join(UNITS)}, not {unit!r}"
        raise r.fail(msg, (*at, "unit"), at)
    pattern = spec.get("format")
    if pattern is not None and not isinstance(pattern, str):
        msg = f"{key}: format must be a strptime pattern such as '%d/%m/%Y %H:%M'"
        raise r.fail(msg, (*at, "format"), at)
    zone = spec.get("zone")
    if zone is not None and not known_zone(zone):
        msg = (
            f"{key}: zone must be an IANA time zone such as 'America/Los_Angeles', not "
            f"{zone!r} (a machine without a time zone database needs `pip install tzdata`)"
        )
        raise r.fail(msg, (*at, "zone"), at)
    if (unit or pattern or zone) and kind not in (None, "timestamp"):
        raise r.fail(f'{key}: unit, format and zone are for type = "timestamp"', (*at, "type"), at)
    if unit or pattern or zone:
        kind = "timestamp"
    prefix = spec.get("unless_prefix")
    if prefix is not None and not isinstance(prefix, str):
        raise r.fail(f"{key}: unless_prefix must be text", (*at, "unless_prefix"), at)
    if "value" in spec:
        return FieldRule(target, (), spec["value"], kind)
    sources = r.sources(spec["from"], key, (*at, "from"))
    if any(isinstance(s, Product) for s in sources) and kind not in _PRODUCT_TYPES:
        msg = f"{key}: a product is a number: type may be number, integer or string"
        raise r.fail(msg, (*at, "type"), at)
    return FieldRule(target, sources, kind=kind, unit=unit, pattern=pattern,
                     unless_prefix=prefix, zone=zone)  # fmt: skip


def _merge(r: _Reader, key: str, spec: Any) -> MergeRule:
    at = ("merge", key)
    if key not in ("properties", "user_properties"):
        raise r.fail(f"merge: {key!r}: only properties and user_properties take objects", at)
    if isinstance(spec, str | list):
        return MergeRule(key, r.paths(spec, key, at))
    spec = r.table(spec, key, at, _MERGE_KEYS)
    if "from" not in spec:
        raise r.fail(f"merge.{key}: `from` is required", at)
    exclude = spec.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(x, str) for x in exclude):
        msg = f"merge.{key}: exclude must be a list of key names or patterns"
        raise r.fail(msg, (*at, "exclude"), at)
    kind = spec.get("type")
    if kind not in (None, "json", "keyed_list"):
        msg = f"merge.{key}: type must be json or keyed_list, not {kind!r}"
        raise r.fail(msg, (*at, "type"), at)
    return MergeRule(key, r.paths(spec["from"], key, (*at, "from")), tuple(exclude), kind)


def _set_aside(r: _Reader, rule: Any, at: Path) -> SetAside:
    rule = r.table(rule, "set_aside", at, _SET_ASIDE_KEYS)
    path, message = rule.get("field"), rule.get("message")
    if not isinstance(path, str) or not _NAME.fullmatch(path):
        raise r.fail("set_aside: `field` (a source field name) is required", (*at, "field"), at)
    if not isinstance(message, str) or not message:
        msg = "set_aside: `message` (why such records are not sent) is required"
        raise r.fail(msg, (*at, "message"), at)
    values = rule.get("in", [])
    missing = rule.get("missing", False)
    if not isinstance(values, list) or not isinstance(missing, bool) or not (values or missing):
        msg = "set_aside: give `in` (a list of values) or `missing = true`"
        raise r.fail(msg, (*at, "in"), (*at, "missing"), at)
    return SetAside(path, tuple(values), missing, message)


def _profile_update(r: _Reader, rule: Any, at: Path) -> SetAside:
    """Records matched by one field's value that are profile updates, not events."""
    rule = r.table(rule, "profile_update", at, _PROFILE_KEYS)
    path, values = rule.get("field"), rule.get("in")
    if not isinstance(path, str) or not _NAME.fullmatch(path):
        msg = "profile_update: `field` (a source field name) is required"
        raise r.fail(msg, (*at, "field"), at)
    if not isinstance(values, list) or not values:
        raise r.fail("profile_update: `in` (a list of values) is required", (*at, "in"), at)
    return SetAside(path, tuple(values))
