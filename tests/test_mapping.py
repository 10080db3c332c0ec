"""The mapping's pure parts: typing a value, GA4's keyed lists, paths, and precedence."""

from __future__ import annotations

import pytest

from revbridge_cli.shape.mapfile import parse, renames
from revbridge_cli.shape.mapping import MappingError, convert, keyed_list, lookup


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("49.99", "number", 49.99),
        ("12", "number", 12),
        ("1e3", "number", 1000.0),
        (12.0, "integer", 12),
        ("yes", "boolean", True),
        ("0", "boolean", False),
        ('{"a": 1}', "json", {"a": 1}),
        (2134, "string", "2134"),
        ("1704103200123456", "timestamp", "2024-01-01T10:00:00.123456Z"),
    ],
)
def test_convert(value: object, kind: str, expected: object) -> None:
    assert convert(value, kind) == expected


@pytest.mark.parametrize(
    ("value", "kind"),
    [("abc", "number"), ("nan", "number"), ("12.5", "integer"), (True, "number"),
     ("maybe", "boolean"), ("{", "json"), ("soon", "timestamp")],
)  # fmt: skip
def test_convert_refuses(value: object, kind: str) -> None:
    with pytest.raises(ValueError):
        convert(value, kind)


def test_keyed_list_takes_the_value_that_is_set() -> None:
    params = [
        {"key": "a", "value": {"string_value": "x", "int_value": None}},
        {"key": "b", "value": {"string_value": None, "int_value": "7"}},
        {"key": "c", "value": {"double_value": 1.5}},
        {"value": {"string_value": "no key"}},
    ]
    assert keyed_list(params) == {"a": "x", "b": 7, "c": 1.5}


def test_lookup_walks_dotted_paths_and_keys_with_dots() -> None:
    record = {"a": {"b": {"c": 1}}, "x.y": 2}
    assert lookup(record, "a.b.c") == 1 and lookup(record, "x.y") == 2
    assert lookup(record, "a.z") is not None and lookup(record, "a.b.c.d") is lookup(record, "q")


def test_named_fields_win_over_merged_objects_and_kept_fields() -> None:
    mapping = parse(
        '[fields]\n"identifiers.user_id" = "uid"\nevent_name = "e"\n"properties.k" = "k2"\n'
        '[merge]\nproperties = ["props"]\n',
        "m.toml",
    )
    user = mapping.apply({"uid": "u", "e": "x", "k": 1, "k2": 3, "props": {"k": 2, "p": 4}})
    assert user == {
        "identifiers": {"user_id": "u"},
        "events": [{"event_name": "x", "k": 3, "p": 4}],
    }


def test_a_record_without_identifiers_says_where_they_were_looked_for() -> None:
    with pytest.raises(MappingError, match="none of userId has a value"):
        renames(["userId=user_id"]).apply({"event_name": "x"})


PRODUCT = """\
[fields]
"identifiers.user_id" = "u"
event_name = { value = "e" }
revenue = { from = ["total", { product = ["price", "qty"], missing = { qty = 1 } }] }
"""


@pytest.mark.parametrize(
    ("record", "revenue"),
    [
        ({"price": 9.99, "qty": 3}, 29.97),  # in decimal, not 29.970000000000002
        ({"price": "0.1", "qty": "3"}, 0.3),
        ({"price": 4, "qty": 5}, 20),  # integers stay integers
        ({"price": 4}, 4),  # missing: the given value
        ({"price": 4, "qty": None}, 4),  # null as absent
        ({"total": 7, "price": 4, "qty": 5}, 7),  # the list's order
    ],
)
def test_a_product_multiplies_its_factors(record: dict[str, object], revenue: object) -> None:
    (event,) = parse(PRODUCT, "m").apply({"u": "1", **record})["events"]
    assert event["revenue"] == revenue and type(event["revenue"]) is type(revenue)


def test_a_product_without_a_required_factor_has_no_value() -> None:
    (event,) = parse(PRODUCT, "m").apply({"u": "1", "qty": 2})["events"]
    assert "revenue" not in event


def test_a_product_factor_that_is_no_number_says_which() -> None:
    with pytest.raises(MappingError, match=r"revenue True is not a number \(from price\)"):
        parse(PRODUCT, "m").apply({"u": "1", "price": True, "qty": 2})
