"""One identity rule for the importer and the sandbox (`contract.identity_key`): what the
importer groups into one user object is one profile to the server, and the other way round."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from conftest import cli_json, write_ndjson

from revbridge_cli.sandbox import Sandbox, store
from revbridge_cli.shape import parts as records
from revbridge_cli.shape.parts import UserPart, shape

TS = "2026-01-15T14:30:00Z"

# (identifiers a, identifiers b, one user?)
CASES: list[tuple[dict[str, Any], dict[str, Any], bool]] = [
    ({"user_id": "u1", "email": ""}, {"user_id": "u1"}, True),
    ({"user_id": "u1", "email": None}, {"user_id": "u1"}, True),
    ({"user_id": "u1", "email": False}, {"user_id": "u1"}, True),
    ({"user_id": "u1", "phone_number": {}}, {"user_id": "u1"}, True),
    ({"user_id": "u1", "anon_id": ["x"]}, {"user_id": "u1"}, True),
    ({"user_id": "u1", "first_name": "Ada"}, {"user_id": "u1"}, True),
    ({"email": "", "user_id": "u1"}, {"user_id": "u1", "anon_id": ""}, True),
    ({"user_id": "u1", "email": "a@example.com"}, {"user_id": "u1"}, False),
    ({"user_id": "u1", "email": " "}, {"user_id": "u1"}, False),  # a space is not empty
    ({"user_id": 1}, {"user_id": 1.0}, False),
    ({"user_id": 1}, {"user_id": "1"}, False),
    ({"email": "a@example.com"}, {"anon_id": "a@example.com"}, False),
    ({"user_id": 0}, {"user_id": "u0"}, False),  # zero is a number, so an identifier
]


@pytest.mark.parametrize(("a", "b", "same"), CASES)
def test_importer_and_sandbox_agree_on_who_is_one_user(
    a: dict[str, Any], b: dict[str, Any], same: bool
) -> None:
    assert (records.user_key(a) == records.user_key(b)) is same
    assert (store.user_key(a) == store.user_key(b)) is same
    assert records.user_key(a).decode() == store.user_key(a)


@pytest.mark.parametrize("identifiers", [a for a, _, _ in CASES] + [b for _, b, _ in CASES])
def test_the_fast_path_keys_a_flat_event_by_the_same_rule(identifiers: dict[str, Any]) -> None:
    """Flat events take the fast path when they can: its inline key must be the rule's."""
    record = {**identifiers, "event_name": "e", "timestamp": TS}
    items = shape(record, (0, 1, 0))
    for item in items:
        if isinstance(item, UserPart):
            assert item.key.decode() == store.user_key(item.identifiers)


def test_records_differing_only_in_an_empty_identifier_become_one_user_object(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    data = write_ndjson(
        tmp_path / "e.ndjson",
        [
            {"user_id": "u1", "email": "", "event_name": "first", "timestamp": TS},
            {"user_id": "u1", "event_name": "second", "timestamp": TS},
            {"user_id": "u1", "email": None, "event_name": "third", "timestamp": TS},
        ],
    )
    result, summary = cli_json("send", str(data), sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["requests"] == 1 and summary["users_sent"] == 1
    (request,) = sandbox.requests()
    assert request["users_accepted"] == 1
    events = sandbox.events()
    assert [e["event_name"] for e in events] == ["first", "second", "third"]
    assert {e["user_key"] for e in events} == {'["u1",null,null,null]'}
    assert len(sandbox.profiles()) == 1
