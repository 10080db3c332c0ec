"""Profile updates without an event (docs/profiles.md): recognised by the shaper, carried on
the person's events by the packer's side, and what is left at the end held or sent as events.

The plain functions first (shape, the carrier over a real packer); then the vendors' exports,
built here in their documented shapes, through the real command to the sandbox.
"""

from __future__ import annotations

from typing import Any

import orjson

from revbridge_cli.pack.carry import Carrier
from revbridge_cli.pack.packer import Packer
from revbridge_cli.shape.parts import Invalid, ProfileUpdate, UserPart, shape
from revbridge_cli.shape.profile import pairs

ORIGIN = (0, 1, 10)


def only(record: Any) -> Any:
    (item,) = shape(record, ORIGIN)
    return item


# ---- recognition ------------------------------------------------------------------------


def test_a_flat_user_with_properties_and_no_event_is_a_profile_update() -> None:
    update = only({"user_id": "u1", "user_properties": {"plan": "pro"}})
    assert isinstance(update, ProfileUpdate)
    assert update.identifiers == {"user_id": "u1"} and update.props == {"plan": "pro"}


def test_an_api_shaped_user_without_events_is_a_profile_update() -> None:
    user = {"identifiers": {"email": "a@example.com"}, "user_properties": {"plan": "pro"}}
    assert isinstance(only(user), ProfileUpdate)
    items = shape({"users": [user, {**user, "events": []}]}, ORIGIN)
    assert [type(item) for item in items] == [ProfileUpdate, ProfileUpdate]


def test_a_profile_update_keeps_its_timestamp_for_profile_event() -> None:
    update = only({"user_id": "u1", "user_properties": {}, "timestamp": "2026-01-01T00:00:00Z"})
    assert isinstance(update, ProfileUpdate) and update.timestamp == "2026-01-01T00:00:00Z"
    event = update.as_event("identify")
    assert event["events"] == [{"event_name": "identify", "timestamp": "2026-01-01T00:00:00Z"}]


def test_a_record_with_any_other_key_stays_an_event_missing_its_name() -> None:
    """A misspelled event must not pass for an update: it would vanish into a profile."""
    item = only({"user_id": "u1", "user_properties": {"plan": "pro"}, "evnt_name": "buy"})
    assert isinstance(item, Invalid) and item.message == "events[0]: event_name is required"


def test_an_update_without_an_identifier_is_invalid_with_the_contracts_message() -> None:
    item = only({"identifiers": {"first_name": "Ada"}, "user_properties": {"plan": "pro"}})
    assert isinstance(item, Invalid) and item.message.startswith("at least one identifier")
    bad = only({"identifiers": {"user_id": "u1"}, "user_properties": "pro", "events": []})
    assert isinstance(bad, Invalid) and bad.message == "user_properties must be an object"


def test_identifiers_alone_are_not_an_update() -> None:
    item = only({"identifiers": {"user_id": "u1"}})
    assert isinstance(item, Invalid) and item.message == "events[0]: event_name is required"


def test_vendor_operations_set_and_set_once_are_read_and_the_rest_left_out() -> None:
    props = {"$set": {"plan": "pro"}, "$setOnce": {"first": "x"}, "$add": {"n": 1}, "city": "Oslo"}
    update = only({"identifiers": {"user_id": "u1"}, "user_properties": props})
    assert isinstance(update, ProfileUpdate)
    assert update.props == {"plan": "pro", "city": "Oslo"} and update.once == {"first": "x"}
    assert update.as_user()["user_properties"] == {"$set_once": {"first": "x"}, **update.props}


def test_pairs_are_the_primary_identifier_values_that_count() -> None:
    ids = {"user_id": "u1", "email": "", "anon_id": "a1", "first_name": "Ada"}
    assert pairs(ids) == [("user_id", "u1"), ("anon_id", "a1")]


# ---- carrying, over a real packer ---------------------------------------------------------


def part(line: int, props: dict[str, Any] | None = None, **ids: Any) -> UserPart:
    (item,) = shape({**ids, "event_name": "e", "user_properties": props or {}}, (0, line, line))
    assert isinstance(item, UserPart)
    return item


def update(line: int, props: dict[str, Any], **ids: Any) -> ProfileUpdate:
    (item,) = shape({**ids, "user_properties": props}, (0, line, line))
    assert isinstance(item, ProfileUpdate)
    return item


def sent_users(packer: Packer) -> list[dict[str, Any]]:
    return [u for b in packer.flush() for u in orjson.loads(b.body())["users"]]


def test_an_update_after_the_event_wins_and_one_before_loses() -> None:
    packer = Packer()
    carrier = Carrier(packer)
    assert carrier.update(update(1, {"plan": "free", "name": "Ada"}, user_id="u1")) == 0
    first = part(2, {"plan": "trial"}, user_id="u1")
    packer.add(first)
    carrier.event(first)  # the waiting update joins, ahead of the event's own values
    assert carrier.update(update(3, {"color": "red"}, user_id="u1", email="u1@example.com")) == 1
    (user,) = sent_users(packer)
    assert user["user_properties"] == {"plan": "trial", "name": "Ada", "color": "red"}
    assert user["identifiers"] == {"user_id": "u1", "email": "u1@example.com"}
    assert carrier.carried == 2 and carrier.left_over() == []


def test_later_waiting_updates_win_over_earlier_ones() -> None:
    packer = Packer()
    carrier = Carrier(packer)
    carrier.update(update(1, {"plan": "free", "a": 1}, anon_id="a1"))
    carrier.update(update(2, {"plan": "pro"}, anon_id="a1"))
    event = part(3, {}, user_id="u1", anon_id="a1")
    packer.add(event)
    carrier.event(event)
    (user,) = sent_users(packer)
    assert user["user_properties"] == {"plan": "pro", "a": 1}


def test_an_update_for_a_user_already_sent_waits_for_the_next_event() -> None:
    packer = Packer()
    carrier = Carrier(packer)
    carrier.update(update(1, {"x": 0}, user_id="other"))  # the carrier is active from here
    first = part(2, {"plan": "free"}, user_id="u1")
    packer.add(first)
    carrier.event(first)
    assert len(sent_users(packer)) == 1  # u1's object is gone: the update must wait
    assert carrier.update(update(3, {"plan": "pro"}, user_id="u1")) == 0
    later = part(4, {"seen": True}, user_id="u1")
    packer.add(later)
    carrier.event(later)
    (user,) = sent_users(packer)
    assert user["user_properties"] == {"plan": "pro", "seen": True}
    assert [u.origin for u in carrier.left_over()] == [(0, 1, 1)]


def test_two_different_user_ids_never_share_an_update() -> None:
    packer = Packer()
    carrier = Carrier(packer)
    carrier.update(update(1, {"plan": "pro"}, user_id="u1", anon_id="shared"))
    other = part(2, {}, user_id="u2", anon_id="shared")
    packer.add(other)
    carrier.event(other)
    (user,) = sent_users(packer)
    assert user["user_properties"] == {}
    assert len(carrier.left_over()) == 1


def test_an_update_joins_every_open_object_of_its_person() -> None:
    """The anonymous object and the logged-in one are one profile to the graph: both get the
    update, so whichever the server folds last holds its values."""
    packer = Packer()
    carrier = Carrier(packer)
    for line, ids in ((1, {"anon_id": "a1"}), (2, {"user_id": "u1", "anon_id": "a1"})):
        packer.add(part(line, {"plan": "free"}, **ids))
    assert carrier.update(update(3, {"plan": "pro"}, user_id="u1", anon_id="a1")) == 2
    users = sent_users(packer)
    assert [u["user_properties"] for u in users] == [{"plan": "pro"}, {"plan": "pro"}]
    assert carrier.carried == 1


def test_profile_event_in_a_profile_is_a_name_not_a_path() -> None:
    """Profile strings are paths taken relative to the config file, except the names:
    `profile_event` and `timestamps` (whose "lenient" became /etc/revbridge/lenient)."""
    from pathlib import Path

    from revbridge_cli.config.profiles import check_profile

    table = {"profile_event": "identify", "timestamps": "lenient", "state": "run.state"}
    checked = check_profile(table, "p", Path("/etc/revbridge"), {})
    assert checked == {**table, "state": "/etc/revbridge/run.state"}


def test_held_updates_do_not_make_a_run_incomplete_but_anything_else_in_the_file_does() -> None:
    """The exit code's rule (docs/profiles.md, "Exit code"): 0 when every event arrived and
    every update was carried, held or sent as an event; 1 for a fault, as before."""
    from revbridge_cli.report.summary import Summary

    held = Summary(profile_updates_read=2, profile_updates_carried=1, profile_updates_held=1,
                   rejected_rows=1, rejected_rows_held=1)  # fmt: skip
    assert held.complete and held.unaccounted_profile_updates == 0
    assert held.to_json()["unaccounted_profile_updates"] == 0
    assert any("--profile-event identify" in w for w in held.warnings())
    faulty = Summary(rejected_rows=2, rejected_rows_held=1, records_invalid=1)
    assert not faulty.complete
    lost = Summary(profile_updates_read=1)
    assert lost.unaccounted_profile_updates == 1 and any("bug" in w for w in lost.warnings())
