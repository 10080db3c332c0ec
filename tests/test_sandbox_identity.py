"""The sandbox's identity graph (docs/contract.md, "Identity"): user objects sharing a primary
identifier value are one profile, transitively, in one request or across requests; two
different user_ids never are. Through real HTTP to a real sandbox, read back from its file
(`sb.profiles()`, a plain sqlite3 connection, `revbridge sandbox stats`); the rules themselves
also as plain functions on the graph, which is pure."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from conftest import cli, cli_json, write_ndjson
from sandbox_helpers import API_KEY, CUSTOMER_ID, post

from revbridge_cli.sandbox import Sandbox
from revbridge_cli.sandbox.identity import IdentityGraph

TS = "2026-01-15T14:30:00Z"


def user(props: dict[str, Any] | None = None, **identifiers: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "identifiers": identifiers,
        "events": [{"event_name": "seen", "timestamp": TS}],
    }
    if props is not None:
        body["user_properties"] = props
    return body


def send(client: httpx.Client, *users: dict[str, Any]) -> None:
    response = post(client, {"users": list(users)})
    assert response.status_code == 202, response.text
    assert response.json()["users_accepted"] == len(users)


def only(sb: Sandbox) -> dict[str, Any]:
    profiles = sb.profiles()
    assert len(profiles) == 1, profiles
    (profile,) = profiles.values()
    return profile


def by_user_id(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {p["identifiers"]["user_id"]: p for p in sb.profiles().values()}


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url) as http:
        yield http


# -- through the sandbox ---------------------------------------------------------------------


@pytest.mark.e2e
def test_objects_sharing_an_identifier_in_one_request_are_one_profile(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    send(
        client,
        user({"plan": "free"}, user_id="u1", anon_id="a1"),
        user({"city": "Oslo"}, anon_id="a1", email="ada@example.com"),
        user(phone_number="+4712345678", email="ada@example.com"),
    )
    profile = only(sandbox)
    assert profile["identities"] == {
        "user_id": ["u1"],
        "anon_id": ["a1"],
        "email": ["ada@example.com"],
        "phone_number": ["+4712345678"],
    }
    assert profile["user_properties"] == {"plan": "free", "city": "Oslo"}
    assert len(sandbox.events()) == 3  # events keep the identifiers their object was sent with


@pytest.mark.e2e
def test_a_link_in_a_later_request_merges_profiles_transitively(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    send(client, user({"a": 1}, anon_id="a1", email="ada@example.com"))
    send(client, user({"c": 3}, phone_number="+47"))
    assert len(sandbox.profiles()) == 2
    send(client, user({"b": 2}, email="ada@example.com", phone_number="+47"))
    profile = only(sandbox)
    assert profile["user_properties"] == {"a": 1, "b": 2, "c": 3}
    assert sorted(profile["identities"]) == ["anon_id", "email", "phone_number"]
    assert profile["profile_id"] == 1  # the older profile survives the merge


@pytest.mark.e2e
def test_two_anonymous_profiles_merge_when_a_later_object_links_them(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    send(client, user({"device": "phone"}, anon_id="phone-1"))
    send(client, user({"device": "laptop"}, anon_id="laptop-1"))
    send(client, user(user_id="u1", anon_id="phone-1"))
    send(client, user(user_id="u1", anon_id="laptop-1"))
    profile = only(sandbox)
    assert profile["identities"] == {"anon_id": ["phone-1", "laptop-1"], "user_id": ["u1"]}
    assert profile["user_properties"] == {"device": "laptop"}  # written last


@pytest.mark.e2e
def test_two_user_ids_are_never_one_profile(client: httpx.Client, sandbox: Sandbox) -> None:
    """A shared email would join A and B: the link is refused, each keeps its own profile
    and its own properties, and the email stays with the profile that had it first."""
    send(client, user({"tier": "gold"}, user_id="A", email="shared@example.com"))
    send(client, user({"tier": "silver"}, user_id="B", email="shared@example.com"))
    profiles = by_user_id(sandbox)
    assert set(profiles) == {"A", "B"}
    assert profiles["A"]["identities"] == {"user_id": ["A"], "email": ["shared@example.com"]}
    assert profiles["B"]["identities"] == {"user_id": ["B"]}
    assert "email" not in profiles["B"]["identifiers"]
    assert profiles["A"]["user_properties"] == {"tier": "gold"}
    assert profiles["B"]["user_properties"] == {"tier": "silver"}
    (link,) = sandbox.refused_links()
    assert (link["kind"], link["value"]) == ("email", "shared@example.com")
    assert link["profile_id"] == profiles["B"]["profile_id"]
    assert link["owner_profile_id"] == profiles["A"]["profile_id"]
    # the same object again: refused again, still two profiles
    send(client, user(user_id="B", email="shared@example.com"))
    assert len(sandbox.profiles()) == 2 and len(sandbox.refused_links()) == 2


@pytest.mark.e2e
def test_within_one_request_the_conflict_is_refused_too(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    send(
        client,
        user({"n": 1}, user_id="A", anon_id="device-1"),
        user({"n": 2}, user_id="B", anon_id="device-1"),
    )
    profiles = by_user_id(sandbox)
    assert profiles["A"]["identities"] == {"user_id": ["A"], "anon_id": ["device-1"]}
    assert profiles["B"]["identities"] == {"user_id": ["B"]}
    assert (profiles["A"]["user_properties"], profiles["B"]["user_properties"]) == (
        {"n": 1},
        {"n": 2},
    )


@pytest.mark.e2e
def test_an_object_without_user_id_goes_where_its_highest_identifier_leads(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    """anon_id leads to A's profile, email to B's: email outranks anon_id, so the object
    joins B and the anon_id link is the one refused."""
    send(client, user(user_id="A", anon_id="device-1"), user(user_id="B", email="b@example.com"))
    send(client, user({"plan": "pro"}, anon_id="device-1", email="b@example.com"))
    profiles = by_user_id(sandbox)
    assert profiles["B"]["user_properties"] == {"plan": "pro"}
    assert profiles["A"]["user_properties"] == {}
    assert profiles["A"]["identities"]["anon_id"] == ["device-1"]
    assert "anon_id" not in profiles["B"]["identities"]
    assert [link["kind"] for link in sandbox.refused_links()] == ["anon_id"]


@pytest.mark.e2e
def test_last_write_wins_per_key_across_a_merge(client: httpx.Client, sandbox: Sandbox) -> None:
    """Whichever profile survives, each key keeps the value written last before the merge."""
    send(client, user({"plan": "basic", "color": "red"}, first_name="Ada", anon_id="a1"))
    send(client, user({"plan": "pro"}, first_name="Ada L.", email="ada@example.com"))
    send(client, user({"color": "blue"}, anon_id="a1"))  # after the email profile's write
    send(client, user(anon_id="a1", email="ada@example.com"))
    profile = only(sandbox)
    assert profile["user_properties"] == {"plan": "pro", "color": "blue"}
    assert profile["identifiers"]["first_name"] == "Ada L."
    send(client, user({"plan": "team"}, email="ada@example.com"))  # after the merge: plain LWW
    assert only(sandbox)["user_properties"] == {"plan": "team", "color": "blue"}


@pytest.mark.e2e
def test_profiles_are_visible_to_sqlite3_and_stats_while_the_sandbox_serves(
    tmp_path: Path,
) -> None:
    db = tmp_path / "live.db"
    with (
        Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, db=db) as sb,
        httpx.Client(base_url=sb.url) as client,
    ):
        reader = sqlite3.connect(db)  # a reader of its own, as `sqlite3 live.db` would be
        try:
            for n in range(1, 4):
                send(client, user({"n": n}, anon_id=f"a{n}"), user({"n": n}, user_id="u1"))
                rows = reader.execute(
                    "SELECT user_key, user_properties FROM profiles ORDER BY profile_id"
                ).fetchall()
                assert [key for key, _ in rows] == [
                    '[null,null,null,"a1"]',
                    '["u1",null,null,null]',
                    *(f'[null,null,null,"a{k}"]' for k in range(2, n + 1)),
                ]
                assert orjson.loads(dict(rows)['["u1",null,null,null]']) == {"n": n}
                result, stats = cli_json("sandbox", "stats", "--db", str(db))
                assert result.returncode == 0, result.stderr
                assert stats["profiles"] == n + 1 and stats["events"] == 2 * n
            send(client, user(user_id="u1", anon_id="a1"), user(user_id="u1", anon_id="a2"))
            assert reader.execute("SELECT count(*) FROM profiles").fetchone() == (2,)
            owners = reader.execute(
                "SELECT DISTINCT profile_id FROM identities WHERE (kind, value) IN"
                " (VALUES ('user_id', json_quote('u1')), ('anon_id', json_quote('a2')))"
            ).fetchall()
            assert len(owners) == 1
            text = cli("sandbox", "stats", "--db", str(db))
            assert "users:    2 distinct (profiles)" in text.stdout
        finally:
            reader.close()


@pytest.mark.e2e
def test_a_restart_on_the_same_db_keeps_the_graph(tmp_path: Path) -> None:
    db = tmp_path / "kept.db"
    with (
        Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, db=db) as first,
        httpx.Client(base_url=first.url) as client,
    ):
        send(client, user({"plan": "free"}, user_id="u1", anon_id="a1"))
        send(client, user(user_id="u2", email="shared@example.com"))
        send(client, user({"plan": "pro"}, email="e2@example.com"))
        before = first.profiles()
    with (
        Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, db=db) as second,
        httpx.Client(base_url=second.url) as client,
    ):
        assert second.profiles() == before
        send(client, user({"city": "Oslo"}, anon_id="a1", email="e2@example.com"))
        send(client, user(user_id="u1", email="shared@example.com"))  # still refused
        profiles = by_user_id(second)
        assert set(profiles) == {"u1", "u2"}
        assert profiles["u1"]["user_properties"] == {"plan": "pro", "city": "Oslo"}
        assert profiles["u1"]["profile_id"] == before['["u1",null,null,"a1"]']["profile_id"]
        assert [link["kind"] for link in second.refused_links()] == ["email"]


@pytest.mark.e2e
def test_an_import_of_mixed_identifiers_lands_one_profile_per_person(
    tmp_path: Path, sandbox: Sandbox
) -> None:
    """The shape of a Segment export: userId sometimes missing, anonymousId on most calls,
    an email on a few. Three persons, three profiles, whatever the request boundaries."""
    rows: list[dict[str, Any]] = []
    for n in range(3):
        uid, anon, email = f"u{n}", f"a{n}", f"u{n}@example.com"
        rows += [
            {"anon_id": anon, "event_name": "page", "timestamp": TS},
            {"user_id": uid, "anon_id": anon, "event_name": "signup", "timestamp": TS},
            {"user_id": uid, "email": email, "event_name": "purchase", "timestamp": TS},
            {"user_id": uid, "event_name": "logout", "timestamp": TS},
        ]
    data = write_ndjson(tmp_path / "mixed.ndjson", rows)
    result, summary = cli_json("send", str(data), "--max-users", "1", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["unaccounted_events"] == 0
    assert summary["events_accepted"] == summary["records_read"] == 12
    profiles = by_user_id(sandbox)
    assert set(profiles) == {"u0", "u1", "u2"}
    assert profiles["u1"]["identities"] == {
        "anon_id": ["a1"],
        "user_id": ["u1"],
        "email": ["u1@example.com"],
    }


# -- the rules, as plain functions on the graph --------------------------------------------


def test_the_graph_merges_in_priority_order_and_keeps_one_user_id() -> None:
    graph = IdentityGraph()
    a = graph.apply({"user_id": "A", "email": "e"}, {}, "t1")
    b = graph.apply({"anon_id": "x"}, {}, "t2")
    c = graph.apply({"user_id": "C", "anon_id": "x", "email": "e"}, {}, "t3")
    assert c is b  # anon_id's anonymous profile takes user_id C; the email stays with A
    assert c.identities == {"anon_id": ["x"], "user_id": ["C"]}
    assert a.identities == {"user_id": ["A"], "email": ["e"]}
    assert [r.kind for r, _trace, _at in graph.take_changes().refused] == ["email"]


def test_the_graph_treats_empty_values_as_no_identifier_and_keeps_kinds_apart() -> None:
    graph = IdentityGraph()
    one = graph.apply({"user_id": "u1", "email": ""}, {}, "t1")
    assert one.identifiers == {"user_id": "u1"} and one.identities == {"user_id": ["u1"]}
    other = graph.apply({"anon_id": "u1"}, {}, "t2")  # same value, other kind: not a link
    number = graph.apply({"user_id": 1}, {}, "t3")
    text = graph.apply({"user_id": "1"}, {}, "t4")
    assert len({id(p) for p in (one, other, number, text)}) == 4


def test_a_repeated_value_is_no_new_write() -> None:
    graph = IdentityGraph()
    graph.apply({"anon_id": "a"}, {"plan": "basic"}, "t1")
    graph.take_changes()
    profile = graph.apply({"anon_id": "a"}, {"plan": "basic"}, "t2", key='[null,null,null,"a"]')
    assert profile.updated_at == "t1"
    assert graph.take_changes().profiles == set()  # nothing to write back
