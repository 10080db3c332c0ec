"""Shaping one parsed record into checked user parts: plain functions, no I/O."""

from __future__ import annotations

import copy
from typing import Any

import orjson
import pytest

from revbridge_cli import contract
from revbridge_cli.shape.parts import (
    Invalid,
    ShapeOptions,
    UserPart,
    epoch_to_iso,
    fast_flat_event,
    shape,
    user_key,
)

ORIGIN = (0, 7, 123)
TS = "2026-01-15T14:30:00Z"


def only(items: list[UserPart | Invalid]) -> UserPart | Invalid:
    assert len(items) == 1
    return items[0]


def test_flat_event_splits_identifiers_properties_and_event() -> None:
    record = {
        "user_id": "u1",
        "email": "a@example.com",
        "identifiers": {"first_name": "Ada"},
        "user_properties": {"tier": "gold"},
        "event_name": "purchase",
        "timestamp": TS,
        "revenue": 9.5,
        "product_id": "sku-1",
    }
    part = only(shape(record, ORIGIN))
    assert isinstance(part, UserPart)
    assert part.identifiers == {"first_name": "Ada", "user_id": "u1", "email": "a@example.com"}
    assert part.user_properties == {"tier": "gold"}
    assert part.events == [
        {"event_name": "purchase", "timestamp": TS, "revenue": 9.5, "product_id": "sku-1"}
    ]
    assert part.origin == ORIGIN
    assert part.key == b'["u1","a@example.com",null,null]'


def test_flat_event_top_level_identifier_wins_over_identifiers_object() -> None:
    record = {"user_id": "top", "identifiers": {"user_id": "nested"}, "event_name": "x"}
    part = only(shape(record, ORIGIN))
    assert isinstance(part, UserPart)
    assert part.identifiers == {"user_id": "top"}


def test_flat_event_does_not_mutate_the_input_identifiers() -> None:
    ids = {"first_name": "Ada"}
    shape({"anon_id": "a1", "identifiers": ids, "event_name": "x"}, ORIGIN)
    assert ids == {"first_name": "Ada"}


def test_flat_event_without_user_properties_has_none() -> None:
    part = only(shape({"phone_number": "+15550100", "event_name": "x"}, ORIGIN))
    assert isinstance(part, UserPart)
    assert part.user_properties is None
    assert "user_properties" not in part.as_user()


def test_user_in_api_shape_is_taken_as_is() -> None:
    user = {
        "identifiers": {"user_id": "u1"},
        "user_properties": {"p": 1},
        "events": [{"event_name": "a"}, {"event_name": "b", "timestamp": TS}],
    }
    part = only(shape(user, ORIGIN))
    assert isinstance(part, UserPart)
    assert part.as_user() == user


def test_request_body_line_yields_one_part_per_user() -> None:
    body = {
        "users": [
            {"identifiers": {"user_id": "u1"}, "events": [{"event_name": "a"}]},
            {"identifiers": {"user_id": "u2"}, "events": []},
        ]
    }
    first, second = shape(body, ORIGIN)
    assert isinstance(first, UserPart) and first.key == user_key({"user_id": "u1"})
    assert isinstance(second, Invalid) and second.message == contract.EVENTS_REQUIRED
    assert second.user == body["users"][1]


def test_rejected_row_sends_its_user() -> None:
    user = {"identifiers": {"user_id": "u1"}, "events": [{"event_name": "a", "timestamp": TS}]}
    row = {
        "userIndex": 3,
        "message": "events[0]: revenue must be a number",
        "trace_id": "t",
        "kind": "rejected",
        "user": user,
        "source": "in.ndjson:4",
    }
    part = only(shape(row, ORIGIN))
    assert isinstance(part, UserPart)
    assert part.as_user() == user


def test_rejected_row_still_invalid_is_set_aside_again_with_its_user() -> None:
    user = {"identifiers": {"user_id": "u1"}, "events": [{"event_name": "a", "revenue": "1"}]}
    row = {"userIndex": None, "message": "m", "kind": "invalid", "user": user, "source": "s"}
    item = only(shape(row, ORIGIN))
    assert isinstance(item, Invalid)
    assert item.message == "events[0]: revenue must be a number"
    assert item.user == user


def test_rejected_row_with_fixed_raw_is_reparsed_as_a_flat_event() -> None:
    raw = orjson.dumps({"user_id": "u9", "event_name": "login", "timestamp": TS}).decode()
    row = {"userIndex": None, "message": "invalid JSON", "user": None, "raw": raw}
    part = only(shape(row, ORIGIN))
    assert isinstance(part, UserPart)
    assert part.as_user() == {
        "identifiers": {"user_id": "u9"},
        "events": [{"event_name": "login", "timestamp": TS}],
    }


def test_rejected_row_with_raw_still_broken_keeps_the_raw_text() -> None:
    row = {"userIndex": None, "message": "invalid JSON", "user": None, "raw": '{"email": "'}
    item = only(shape(row, ORIGIN))
    assert isinstance(item, Invalid)
    # the reader's own words for the same fault: a row keeps its reason from round to round
    assert item.message.startswith("invalid JSON (") and " at column " in item.message
    assert item.raw == '{"email": "'


def test_rejected_row_with_raw_not_an_object() -> None:
    row = {"userIndex": None, "message": "m", "user": None, "raw": "[1, 2]"}
    item = only(shape(row, ORIGIN))
    assert isinstance(item, Invalid)
    assert item.message == "`raw` is not a JSON object"


def test_not_an_object_is_invalid() -> None:
    item = only(shape([1, 2], ORIGIN))
    assert isinstance(item, Invalid)
    assert item.message == "not a JSON object (got list)"


@pytest.mark.parametrize(
    ("record", "message"),
    [
        ({"event_name": "x"}, contract.IDENTIFIER_REQUIRED),
        ({"user_id": "", "event_name": "x"}, contract.IDENTIFIER_REQUIRED),
        ({"user_id": "u", "event_name": ""}, "events[0]: event_name is required"),
        ({"user_id": "u", "event_name": "x", "timestamp": "2026-02-30T00:00:00Z"},
         "events[0]: timestamp must be ISO 8601"),
        ({"user_id": "u", "event_name": "x", "revenue": "49.99"},
         "events[0]: revenue must be a number"),
        ({"user_id": "u", "event_name": "x", "event_value": True},
         "events[0]: event_value must be a number"),
        ({"user_id": "u", "event_name": "x", "user_properties": []},
         contract.USER_PROPERTIES_OBJECT),
        ({"user_id": "u", "identifiers": "nope", "event_name": "x"}, contract.IDENTIFIERS_REQUIRED),
    ],
)  # fmt: skip
def test_invalid_flat_event_gets_the_contract_message(record: dict, message: str) -> None:
    item = only(shape(record, ORIGIN))
    assert isinstance(item, Invalid)
    assert item.message == message
    assert item.user is not None  # the row shows what would have been sent


def test_identifiers_merge_key_ignores_profile_fields() -> None:
    record = {"user_id": "u1", "identifiers": {"first_name": "A"}, "event_name": "x"}
    a = only(shape(record, ORIGIN))
    b = only(shape({"user_id": "u1", "event_name": "y"}, ORIGIN))
    assert isinstance(a, UserPart) and isinstance(b, UserPart)
    assert a.key == b.key


def test_user_key_with_unhashable_value_still_works() -> None:
    key = user_key({"user_id": "u1", "email": ["not", "hashable"]})
    hash(key)
    assert key == user_key({"user_id": "u1", "email": ["not", "hashable"]})


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1768487400, "2026-01-15T14:30:00Z"),
        (1768487400.5, "2026-01-15T14:30:00.500Z"),
        (1768487400000, "2026-01-15T14:30:00Z"),
        (1768487400123, "2026-01-15T14:30:00.123Z"),
    ],
)
def test_epoch_seconds_and_milliseconds_become_iso(value: float, expected: str) -> None:
    assert epoch_to_iso(value) == expected
    assert contract.is_iso8601(expected)


def test_epoch_timestamps_option_converts_numbers() -> None:
    record = {"user_id": "u", "event_name": "x", "timestamp": 1768487400000}
    part = only(shape(record, ORIGIN, ShapeOptions(epoch_timestamps=True)))
    assert isinstance(part, UserPart)
    assert part.events[0]["timestamp"] == "2026-01-15T14:30:00Z"


def test_numeric_timestamp_without_the_option_is_invalid() -> None:
    item = only(shape({"user_id": "u", "event_name": "x", "timestamp": 1768487400}, ORIGIN))
    assert isinstance(item, Invalid)
    assert item.message == "events[0]: timestamp must be ISO 8601"


def test_unusable_epoch_is_set_aside() -> None:
    record = {"user_id": "u", "event_name": "x", "timestamp": 1e300}
    item = only(shape(record, ORIGIN, ShapeOptions(epoch_timestamps=True)))
    assert isinstance(item, Invalid)
    assert "is not a usable epoch time" in item.message


def test_require_timestamp_sets_aside_events_without_one() -> None:
    user = {"identifiers": {"user_id": "u"}, "events": [{"event_name": "a", "timestamp": TS},
                                                        {"event_name": "b"}]}  # fmt: skip
    item = only(shape(user, ORIGIN, ShapeOptions(require_timestamp=True)))
    assert isinstance(item, Invalid)
    assert item.message == "events[1]: timestamp is missing (--require-timestamp)"


def test_without_require_timestamp_missing_ones_are_counted() -> None:
    user = {"identifiers": {"user_id": "u"}, "events": [{"event_name": "a", "timestamp": TS},
                                                        {"event_name": "b"}]}  # fmt: skip
    part = only(shape(user, ORIGIN))
    assert isinstance(part, UserPart)
    assert part.untimed == 1


def test_require_timestamp_keeps_profile_fields_in_the_identifiers_of_the_row() -> None:
    record = {"user_id": "u", "identifiers": {"first_name": "Ada"}, "event_name": "x", "seq": 1}
    item = only(shape(record, ORIGIN, ShapeOptions(require_timestamp=True)))
    assert isinstance(item, Invalid)
    assert item.message == "events[0]: timestamp is missing (--require-timestamp)"
    assert item.user == {
        "identifiers": {"first_name": "Ada", "user_id": "u"},
        "events": [{"event_name": "x", "seq": 1}],
    }


def test_require_timestamp_keeps_user_properties_out_of_the_event() -> None:
    record = {"user_id": "u", "user_properties": {"p": 1}, "event_name": "x"}
    item = only(shape(record, ORIGIN, ShapeOptions(require_timestamp=True)))
    assert isinstance(item, Invalid)
    assert item.user == {
        "identifiers": {"user_id": "u"},
        "user_properties": {"p": 1},
        "events": [{"event_name": "x"}],
    }


def test_empty_top_level_identifier_wins_over_the_nested_one() -> None:
    record = {"user_id": "", "identifiers": {"user_id": "nested"}, "event_name": "x"}
    item = only(shape(record, ORIGIN))
    assert isinstance(item, Invalid)
    assert item.message == contract.IDENTIFIER_REQUIRED
    assert item.user["identifiers"] == {"user_id": ""}


FAST_PATH_EVENTS: list[dict[str, Any]] = [
    {
        "email": "a@example.com",
        "user_properties": {"p": 2},
        "event_name": "e",
        "timestamp": TS,
        "revenue": 1,
        "event_value": 2.5,
        "k": "v",
    },
    {"user_id": "u1", "anon_id": "a1", "phone_number": "", "event_name": "e", "nested": {"x": [1]}},
    {"user_id": 42, "event_name": "e", "timestamp": "2026-01-15T14:30:00.125+02:00"},
]


@pytest.mark.parametrize("record", FAST_PATH_EVENTS)
def test_fast_and_general_paths_agree_on_valid_flat_events(record: dict[str, Any]) -> None:
    fast = fast_flat_event(record, ORIGIN)
    assert fast is not None, "the fast path refused a plain valid flat event"
    assert only(shape(record, ORIGIN)) == fast  # and `shape` takes it too
    # --epoch-timestamps bypasses the fast path; an ISO timestamp is left as it is.
    general = only(shape(record, ORIGIN, ShapeOptions(epoch_timestamps=True)))
    assert isinstance(general, UserPart)
    assert general == fast  # key, identifiers, properties, events, origin, untimed
    assert general.key == user_key(fast.identifiers)


@pytest.mark.parametrize(
    ("record", "options"),
    [
        *((r, ShapeOptions()) for r in FAST_PATH_EVENTS),
        ({"user_id": "u", "user_properties": {"p": 1}, "event_name": "x"}, ShapeOptions()),
        (  # the fast path takes it, then --require-timestamp sends it down the general path
            {"user_id": "u", "user_properties": {"p": 1}, "event_name": "x"},
            ShapeOptions(require_timestamp=True),
        ),
        (
            {"user_id": "u", "identifiers": {"a": 1}, "event_name": "x", "timestamp": 1768487400},
            ShapeOptions(epoch_timestamps=True),
        ),
        (
            {
                "identifiers": {"user_id": "u"},
                "events": [{"event_name": "x", "timestamp": 1768487400123}, {"event_name": "y"}],
            },
            ShapeOptions(epoch_timestamps=True, require_timestamp=True),
        ),
        (
            {"users": [{"identifiers": {"email": "e@x"}, "events": [{"event_name": "x"}]}]},
            ShapeOptions(epoch_timestamps=True),
        ),
        (
            {
                "userIndex": 0,
                "message": "m",
                "user": {"identifiers": {"user_id": "u"}, "events": [{"timestamp": 1e12}]},
            },
            ShapeOptions(epoch_timestamps=True),
        ),
    ],
)
def test_shaping_never_changes_the_record_it_is_given(
    record: dict[str, Any], options: ShapeOptions
) -> None:
    """A library caller may keep the records it hands in: nothing is popped or converted in
    place, on the fast path or the general one."""
    before = copy.deepcopy(record)
    fast_flat_event(record, ORIGIN)
    assert record == before
    items = shape(record, ORIGIN, options)
    assert record == before
    assert items  # something came out
