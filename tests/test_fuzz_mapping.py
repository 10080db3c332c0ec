"""Fuzz: mapping files (TOML), the shipped presets mutated and documents built from parts, read
by the real parser; then records shaped through what parsed (pure: no socket).

What is asserted is only what every mapping error owes the user (the api engineer owns what a
mapping may mean): nothing raises outside the exception hierarchy, and a refusal is one line
naming the mapping. Records shaped through a mapping keep the shaper's promises.
"""

from __future__ import annotations

import re
from typing import Any

import fuzz_helpers as fz
from hypothesis import given
from hypothesis import strategies as st

from revbridge_cli.errors import RevbridgeError
from revbridge_cli.shape import mapfile
from revbridge_cli.shape.mapping import Mapping
from revbridge_cli.shape.parts import Invalid, ShapeOptions, UserPart, shape

PRESETS = {name: mapfile.preset_text(name) for name in mapfile.PRESETS}
KEYS = [
    "user_id", "identifiers.user_id", "identifiers.email", "event_name", "timestamp", "revenue",
    "event_value", "properties.x", "user_properties", "properties", "x", "", " ", "a.b.c",
    "identifiers", "events", "users",
]  # fmt: skip
SPECS = [
    '"uid"', '["a", "b"]', '{ from = "t", type = "timestamp" }',
    '{ from = "t", type = "timestamp", unit = "ns", zone = "Pacific/Kiritimati" }',
    '{ from = "t", type = "timestamp", format = "%Y-%m-%d %z" }', '{ from = "n", type = "number" }',
    '{ from = "n", type = "integer" }', '{ from = "b", type = "boolean" }',
    '{ from = "j", type = "json" }', '{ value = "fixed" }', '{ value = 1e400 }', "1", "true",
    '{ product = ["p", "q"] }', '{ from = "k", type = "keyed_list" }', "[]", "{}", '"\\u0000"',
]  # fmt: skip
SECTIONS = [
    '[options]\nunmapped = "drop"\n', '[options]\ntimestamps = "lenient"\ndrop_nulls = true\n',
    '[options]\njson = ["j"]\n', '[merge]\nproperties = { from = ["props"] }\n',
    '[[set_aside]]\nfield = "type"\nin = ["x"]\nmessage = "no {value}"\n', "[fields]\n",
    "[unknown]\n", "[[fields]]\n",
]  # fmt: skip


@st.composite
def documents(draw: st.DrawFn) -> str:
    lines = ["[fields]"]
    for _ in range(draw(st.integers(min_value=0, max_value=5))):
        lines.append(f'"{draw(st.sampled_from(KEYS))}" = {draw(st.sampled_from(SPECS))}')
    text = "\n".join(lines) + "\n"
    for section in draw(st.lists(st.sampled_from(SECTIONS), max_size=3)):
        text += section
    return text


@st.composite
def texts(draw: st.DrawFn) -> str:
    if draw(st.booleans()):
        base = PRESETS[draw(st.sampled_from(sorted(PRESETS)))]
    else:
        base = draw(documents())
    data = draw(fz.mutated(base.encode()))
    return data.decode("utf-8", "replace")


def _parsed(text: str) -> Mapping | None:
    try:
        return mapfile.parse(text, "m.toml")
    except RevbridgeError as e:
        message = str(e)
        assert fz.one_line(message), message
        assert message.startswith("mapping m.toml"), message
        # A line, unless the fault is the whole document's (tomllib's "at end of document").
        whole = "(at end of document)" in message or "every record would be empty" in message
        assert whole or re.match(r"mapping m\.toml:\d+: ", message) or "at line " in message, (
            message
        )
        return None


SOURCE_VALUES = st.one_of(
    fz.scalars,
    st.sampled_from(fz.EXTREME_TIMES),
    st.sampled_from(['{"a": 1}', "[1,2]", "{", "yes", "2026-01-15 +0100"]),
    st.lists(st.tuples(st.text(max_size=3), fz.scalars), max_size=2).map(
        lambda pairs: [{"key": k, "value": v} for k, v in pairs]
    ),
)
SOURCE_KEYS = ["uid", "a", "b", "t", "n", "j", "p", "q", "k", "type", "props", "user_id", "x"]


@given(text=texts(), rows=st.lists(st.dictionaries(st.sampled_from(SOURCE_KEYS), SOURCE_VALUES)))
def test_fuzz_mapping_files_and_the_records_through_them(text: str, rows: list[Any]) -> None:
    mapping = _parsed(text)
    if mapping is None:
        return
    options = ShapeOptions(
        mapping=mapping,
        lenient_timestamps=mapping.timestamps == "lenient",
        drop_nulls=mapping.drop_nulls,
        keep_rows=True,
    )
    for n, row in enumerate(rows, 1):
        items = shape(row, (0, n, n), options)
        assert items
        for item in items:
            if isinstance(item, Invalid):
                assert fz.one_line(item.message), item.message
            else:
                assert isinstance(item, UserPart)
                for stamp in (e.get("timestamp") for e in item.events):
                    assert stamp is None or isinstance(stamp, str)
