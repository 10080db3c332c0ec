"""Every row and message of docs/contract.md, asked of a real sandbox over a real socket.

Expected messages are written out literally: they are the vendor's words, and a test that
imported them from the code under test could not catch a changed message.
"""

from __future__ import annotations

import http.client
import socket
import sqlite3
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sandbox_helpers import (
    API_KEY,
    CUSTOMER_ID,
    VENDOR_PARTIAL_ERRORS,
    VENDOR_PARTIAL_REQUEST,
    VENDOR_REQUEST,
    auth_headers,
    body_of_size,
    post,
    valid_user,
)

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e  # every test here runs a sandbox or the real command

IDENTIFIER_REQUIRED = (
    "at least one identifier is required (user_id, email, phone_number, or anon_id)"
)


def assert_trace(response: httpx.Response) -> str:
    trace_id = response.json()["trace_id"]
    assert uuid.UUID(trace_id).version == 4
    assert response.headers["x-trace-id"] == trace_id
    return trace_id


def error_body(response: httpx.Response) -> dict[str, Any]:
    """The body without its (random) trace_id, after checking the trace_id is right."""
    assert_trace(response)
    body = response.json()
    del body["trace_id"]
    return body


# -- 202 -------------------------------------------------------------------------------------


def test_vendor_example_is_accepted(client: httpx.Client) -> None:
    response = post(client, VENDOR_REQUEST)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    assert error_body(response) == {"users_accepted": 1, "users_rejected": 0, "errors": []}


def test_partial_acceptance_matches_vendor_example(client: httpx.Client, sandbox: Sandbox) -> None:
    response = post(client, VENDOR_PARTIAL_REQUEST)
    assert response.status_code == 202
    body = response.json()
    assert list(body) == ["trace_id", "users_accepted", "users_rejected", "errors"]
    assert error_body(response) == {
        "users_accepted": 1,
        "users_rejected": 2,
        "errors": VENDOR_PARTIAL_ERRORS,
    }
    assert [e["identifiers"]["user_id"] for e in sandbox.events()] == ["u1"]


def test_errors_are_in_user_index_order_with_exact_counts(client: httpx.Client) -> None:
    users = [
        {"identifiers": {}},
        valid_user("a"),
        valid_user("b", user_properties=[1]),
        valid_user("c"),
        {"identifiers": {"email": "x@example.com"}, "events": []},
    ]
    response = post(client, {"users": users})
    assert response.status_code == 202
    assert error_body(response) == {
        "users_accepted": 2,
        "users_rejected": 3,
        "errors": [
            {"userIndex": 0, "message": IDENTIFIER_REQUIRED},
            {"userIndex": 2, "message": "user_properties must be an object"},
            {"userIndex": 4, "message": "events is required"},
        ],
    }


def test_a_thousand_users_is_accepted(client: httpx.Client) -> None:
    response = post(client, {"users": [valid_user(f"u{i}") for i in range(1000)]})
    assert response.status_code == 202
    assert response.json()["users_accepted"] == 1000


def test_content_type_parameters_are_accepted(client: httpx.Client) -> None:
    headers = auth_headers(content_type="application/json; charset=utf-8")
    assert post(client, VENDOR_REQUEST, headers=headers).status_code == 202


# -- per-user messages -----------------------------------------------------------------------

EVENT_OK = {"event_name": "purchase"}


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"events": [EVENT_OK]}, "identifiers is required"),
        ({"identifiers": "u1", "events": [EVENT_OK]}, "identifiers is required"),
        ("not an object", "identifiers is required"),
        ({"identifiers": {}, "events": [EVENT_OK]}, IDENTIFIER_REQUIRED),
        ({"identifiers": {"first_name": "Ada"}, "events": [EVENT_OK]}, IDENTIFIER_REQUIRED),
        ({"identifiers": {"email": ""}, "events": [EVENT_OK]}, IDENTIFIER_REQUIRED),
        (valid_user(user_properties="gold"), "user_properties must be an object"),
        (valid_user(user_properties=None), "user_properties must be an object"),
        ({"identifiers": {"anon_id": "a"}}, "events is required"),
        ({"identifiers": {"anon_id": "a"}, "events": []}, "events is required"),
        ({"identifiers": {"anon_id": "a"}, "events": {"event_name": "x"}}, "events is required"),
        ({"identifiers": {"user_id": "u"}, "events": [{}]}, "events[0]: event_name is required"),
        (
            {"identifiers": {"user_id": "u"}, "events": [EVENT_OK, {"event_name": ""}]},
            "events[1]: event_name is required",
        ),
        (
            {
                "identifiers": {"user_id": "u"},
                "events": [{**EVENT_OK, "timestamp": "2026-13-01T00:00:00Z"}],
            },
            "events[0]: timestamp must be ISO 8601",
        ),
        (
            {
                "identifiers": {"user_id": "u"},
                "events": [{**EVENT_OK, "timestamp": "2026-02-30T00:00:00"}],
            },
            "events[0]: timestamp must be ISO 8601",
        ),
        (
            {"identifiers": {"user_id": "u"}, "events": [{**EVENT_OK, "revenue": "49.99"}]},
            "events[0]: revenue must be a number",
        ),
        (
            {"identifiers": {"user_id": "u"}, "events": [{**EVENT_OK, "revenue": True}]},
            "events[0]: revenue must be a number",
        ),
        (
            {"identifiers": {"user_id": "u"}, "events": [{**EVENT_OK, "event_value": None}]},
            "events[0]: event_value must be a number",
        ),
    ],
)
def test_each_user_message(client: httpx.Client, user: Any, message: str) -> None:
    response = post(client, {"users": [valid_user(), user]})
    assert response.status_code == 202
    assert error_body(response) == {
        "users_accepted": 1,
        "users_rejected": 1,
        "errors": [{"userIndex": 1, "message": message}],
    }


@pytest.mark.parametrize(
    ("user", "message"),
    [
        ({"user_properties": 1}, "identifiers is required"),
        (
            {"identifiers": {"email": "e"}, "user_properties": 1},
            "user_properties must be an object",
        ),
        (
            {"identifiers": {"email": "e"}, "events": [{"revenue": "x", "timestamp": "now"}]},
            "events[0]: event_name is required",
        ),
        (
            {
                "identifiers": {"email": "e"},
                "events": [{**EVENT_OK, "timestamp": "x", "revenue": "x"}],
            },
            "events[0]: timestamp must be ISO 8601",
        ),
        (
            {
                "identifiers": {"email": "e"},
                "events": [{**EVENT_OK, "revenue": "x", "event_value": "x"}],
            },
            "events[0]: revenue must be a number",
        ),
        (
            {
                "identifiers": {"email": "e"},
                "events": [EVENT_OK, {**EVENT_OK, "event_value": "1"}, {}],
            },
            "events[1]: event_value must be a number",
        ),
    ],
)
def test_first_fault_wins(client: httpx.Client, user: Any, message: str) -> None:
    response = post(client, {"users": [valid_user(), user]})
    assert response.json()["errors"] == [{"userIndex": 1, "message": message}]


# -- 400 -------------------------------------------------------------------------------------


def test_every_user_invalid_is_validation_failed(client: httpx.Client, sandbox: Sandbox) -> None:
    users = [{"identifiers": {"first_name": "Ada"}, "events": [EVENT_OK]}, {"events": []}]
    response = post(client, {"users": users})
    assert response.status_code == 400
    assert list(response.json()) == ["error", "trace_id", "errors"]
    assert error_body(response) == {
        "error": "validation failed",
        "errors": [
            {"userIndex": 0, "message": IDENTIFIER_REQUIRED},
            {"userIndex": 1, "message": "identifiers is required"},
        ],
    }
    assert sandbox.events() == []


@pytest.mark.parametrize(
    ("body", "content_type", "message"),
    [
        (VENDOR_REQUEST, "text/plain", "content type must be application/json"),
        (VENDOR_REQUEST, "", "content type must be application/json"),
        (b'{"users": [', "application/json", "malformed JSON"),
        (b"", "application/json", "malformed JSON"),
        (b"\xff\xfe", "application/json", "malformed JSON"),
        ([VENDOR_REQUEST], "application/json", "request body must be a JSON object"),
        ("users", "application/json", "request body must be a JSON object"),
        ({}, "application/json", "users is required"),
        ({"users": {"identifiers": {}}}, "application/json", "users is required"),
        ({"users": []}, "application/json", "users must not be empty"),
        (
            {"users": [valid_user(f"u{i}") for i in range(1001)]},
            "application/json",
            "too many users: at most 1000 per request",
        ),
    ],
)
def test_each_request_error(
    client: httpx.Client, sandbox: Sandbox, body: Any, content_type: str, message: str
) -> None:
    response = post(client, body, headers=auth_headers(content_type=content_type))
    assert response.status_code == 400
    assert error_body(response) == {"error": message}
    assert sandbox.events() == []


def test_content_type_is_checked_before_json(client: httpx.Client) -> None:
    response = post(client, b"not json", headers=auth_headers(content_type="text/plain"))
    assert response.json()["error"] == "content type must be application/json"


# -- 401 -------------------------------------------------------------------------------------

GOOD = auth_headers()


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(
            {k: v for k, v in GOOD.items() if k != "Authorization"}, id="no-authorization"
        ),
        pytest.param({**GOOD, "Authorization": API_KEY}, id="no-bearer-prefix"),
        pytest.param({**GOOD, "Authorization": f"Basic {API_KEY}"}, id="other-scheme"),
        pytest.param({**GOOD, "Authorization": f"bearer {API_KEY}"}, id="lowercase-bearer"),
        pytest.param({**GOOD, "Authorization": "Bearer rbk_wrong"}, id="wrong-key"),
        pytest.param({**GOOD, "Authorization": f"Bearer{API_KEY}"}, id="no-space"),
        pytest.param({k: v for k, v in GOOD.items() if k != "x-customer-id"}, id="no-customer"),
        pytest.param({**GOOD, "x-customer-id": "cust_other"}, id="key-of-other-customer"),
    ],
)
def test_each_unauthorized_cause(client: httpx.Client, headers: dict[str, str]) -> None:
    response = post(client, VENDOR_REQUEST, headers=headers)
    assert response.status_code == 401
    assert response.json() == {"error": "unauthorized"}
    assert "x-trace-id" not in response.headers


def test_auth_comes_before_size_type_and_json(client: httpx.Client) -> None:
    headers = {**auth_headers(content_type="text/plain"), "Authorization": "Bearer nope"}
    assert post(client, b"{" * 10_000_001, headers=headers).status_code == 401


# -- 404, 405, 413 ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE", "OPTIONS"])
def test_other_methods_are_not_allowed(client: httpx.Client, method: str) -> None:
    response = client.request(method, "/ingest/events")  # no credentials: 405 comes first
    assert response.status_code == 405
    assert error_body(response) == {"error": "method not allowed"}
    assert response.headers["allow"] == "POST"


@pytest.mark.parametrize("path", ["/", "/ingest", "/ingest/events/", "/v1/ingest/events"])
def test_other_paths_are_not_found(client: httpx.Client, path: str) -> None:
    response = client.post(path, content=orjson.dumps(VENDOR_REQUEST), headers=auth_headers())
    assert response.status_code == 404
    assert error_body(response) == {"error": "not found"}


def test_query_string_does_not_change_the_path(client: httpx.Client) -> None:
    response = client.post(
        "/ingest/events?x=1", content=orjson.dumps(VENDOR_REQUEST), headers=auth_headers()
    )
    assert response.status_code == 202


def test_body_at_the_limit_is_accepted_and_one_byte_more_is_too_large(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    response = post(client, body_of_size(10_000_000))
    assert response.status_code == 202
    response = post(client, body_of_size(10_000_001))
    assert response.status_code == 413
    assert error_body(response) == {"error": "payload too large"}
    assert len(sandbox.events()) == 1


def test_chunked_bodies_are_read_and_limited(client: httpx.Client) -> None:
    def chunks(body: bytes) -> Iterator[bytes]:
        for start in range(0, len(body), 1 << 20):
            yield body[start : start + (1 << 20)]

    ok = client.post("/ingest/events", content=chunks(orjson.dumps(VENDOR_REQUEST)), headers=GOOD)
    assert ok.status_code == 202
    big = client.post("/ingest/events", content=chunks(body_of_size(10_000_001)), headers=GOOD)
    assert big.status_code == 413
    assert error_body(big) == {"error": "payload too large"}


# -- connections -----------------------------------------------------------------------------


def test_keep_alive_serves_many_requests_on_one_connection(sandbox: Sandbox) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", sandbox.port, timeout=10)
    first_socket = None
    bodies = [
        (orjson.dumps(VENDOR_REQUEST), GOOD, 202),
        (b"{", GOOD, 400),
        (b"{}", {**GOOD, "Authorization": "Bearer no"}, 401),
        (body_of_size(10_000_001), GOOD, 413),
        (orjson.dumps(VENDOR_REQUEST), GOOD, 202),
    ]
    for body, headers, status in bodies:
        conn.request("POST", "/ingest/events", body=body, headers=headers)
        response = conn.getresponse()
        response.read()
        assert response.status == status
        first_socket = first_socket or conn.sock
        assert conn.sock is first_socket  # not reconnected
    conn.close()


def test_many_concurrent_connections(sandbox: Sandbox) -> None:
    statuses: list[int] = []

    def send(i: int) -> None:
        with httpx.Client(base_url=sandbox.url, timeout=10) as c:
            statuses.append(post(c, {"users": [valid_user(f"u{i}")]}).status_code)

    threads = [threading.Thread(target=send, args=(i,)) for i in range(32)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert statuses == [202] * 32
    assert sandbox.stats()["users_accepted"] == 32


def test_survives_garbage_and_clients_that_vanish_mid_body(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        raw.sendall(b"this is not http\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 400")
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        head = (
            f"POST /ingest/events HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {API_KEY}\r\n"
            f"x-customer-id: {CUSTOMER_ID}\r\nContent-Type: application/json\r\n"
            "Content-Length: 5000\r\n\r\n"
        )
        raw.sendall(head.encode() + b'{"users": [')
    with socket.create_connection(("127.0.0.1", sandbox.port), timeout=5) as raw:
        raw.sendall(b"POST /ingest/events HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
        assert raw.recv(100).startswith(b"HTTP/1.1 4")
    assert post(client, VENDOR_REQUEST).status_code == 202


# -- storage ---------------------------------------------------------------------------------


def test_accepted_events_are_stored_with_properties_and_trace_id(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    trace_id = post(client, VENDOR_PARTIAL_REQUEST).json()["trace_id"]
    (event,) = sandbox.events()
    assert event["trace_id"] == trace_id
    assert event["identifiers"] == {"user_id": "u1", "email": "a@example.com", "first_name": "Ada"}
    assert event["user_key"] == '["u1","a@example.com",null,null]'
    assert event["event_name"] == "purchase"
    assert event["timestamp"] == "2026-01-15T14:30:00Z"
    assert event["revenue"] == 49.99
    assert event["event_value"] == 1
    assert event["properties"] == {"product_id": "sku-1"}


def test_missing_timestamp_is_stamped_with_arrival_time(
    client: httpx.Client, sandbox: Sandbox
) -> None:
    post(client, {"users": [{"identifiers": {"anon_id": "a"}, "events": [EVENT_OK]}]})
    (event,) = sandbox.events()
    assert event["timestamp"] == event["received_at"]
    assert event["revenue"] is None


def test_profile_properties_merge_last_write_wins(client: httpx.Client, sandbox: Sandbox) -> None:
    first = valid_user("u1", user_properties={"tier": "gold", "city": "Oslo"})
    second = valid_user("u1", user_properties={"tier": "platinum", "score": None})
    post(client, {"users": [first]})
    post(client, {"users": [second, valid_user("u2")]})
    profiles = sandbox.profiles()
    assert profiles['["u1",null,null,null]']["user_properties"] == {
        "tier": "platinum",
        "city": "Oslo",
        "score": None,
    }
    assert profiles['["u2",null,null,null]']["user_properties"] == {}
    assert len(sandbox.events()) == 3


def test_every_request_gets_a_row(client: httpx.Client, sandbox: Sandbox) -> None:
    post(client, VENDOR_PARTIAL_REQUEST)
    post(client, b"{")
    post(client, VENDOR_REQUEST, headers={})
    client.get("/ingest/events")
    rows = sandbox.requests()
    assert [row["status"] for row in rows] == [202, 400, 401, 405]
    assert rows[0]["users_accepted"] == 1
    assert rows[0]["users_rejected"] == 2
    assert rows[0]["events_accepted"] == 1
    assert rows[0]["bytes"] == len(orjson.dumps(VENDOR_PARTIAL_REQUEST))
    assert rows[2]["trace_id"] is None
    assert all(row["fault"] is None for row in rows)
    assert sandbox.stats() == {
        "requests": 4,
        "requests_by_status": {202: 1, 400: 1, 401: 1, 405: 1},
        "users_accepted": 1,
        "users_rejected": 2,
        "events_accepted": 1,
    }


def test_no_store_mode_counts_but_stores_nothing(tmp_path: Any) -> None:
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, store=False) as sb:
        with httpx.Client(base_url=sb.url) as c:
            assert post(c, VENDOR_PARTIAL_REQUEST).status_code == 202
        assert sb.db_path is None
        assert sb.events() == [] and sb.requests() == [] and sb.profiles() == {}
        assert sb.stats()["events_accepted"] == 1
    assert sb.stats()["requests_by_status"] == {202: 1}


def test_made_up_credentials_and_temporary_db_lifecycle() -> None:
    sb = Sandbox().start()
    try:
        assert sb.api_key.startswith("rbk_sandbox_") and sb.customer_id == "cust_sandbox"
        assert sb.url.startswith("http://127.0.0.1:")
        with httpx.Client(base_url=sb.url) as c:
            assert post(c, VENDOR_REQUEST, headers=sb.headers).status_code == 202
        db = sb.db_path
        assert db is not None and db.exists()
    finally:
        sb.stop()
    assert not db.exists()
    with pytest.raises(RuntimeError):
        sb.events()


def test_db_file_is_kept(tmp_path: Any) -> None:
    db = tmp_path / "kept.db"
    sandbox = Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, db=db)
    with sandbox as sb, httpx.Client(base_url=sb.url) as c:
        assert post(c, VENDOR_REQUEST).status_code == 202
    assert db.exists()
    assert len(sb.events()) == 1


def test_profiles_are_current_after_every_request(client: httpx.Client, sandbox: Sandbox) -> None:
    """The profile rows are written in the request's own transaction: a plain sqlite3 reader
    (no flush, no fold) sees every answered request's profiles, merged last write wins."""
    assert sandbox.db_path is not None
    conn = sqlite3.connect(sandbox.db_path)
    try:
        for n in range(5):
            props = {"n": n, f"only_{n}": True}
            post(client, {"users": [valid_user("u1", user_properties=props), valid_user(f"v{n}")]})
            rows = dict(conn.execute("SELECT user_key, user_properties FROM profiles"))
            assert len(rows) == n + 2
            assert orjson.loads(rows['["u1",null,null,null]']) == {
                "n": n,
                **{f"only_{k}": True for k in range(n + 1)},
            }
    finally:
        conn.close()


def test_a_database_of_the_old_layout_opens_merged(tmp_path: Path) -> None:
    """Before the identity graph, profiles were kept per exact identifier tuple, with updates
    appended and folded later: such a file is replayed into the graph when a sandbox opens it."""
    from revbridge_cli.sandbox import reads

    db = tmp_path / "old.db"
    conn = sqlite3.connect(db)
    try:
        conn.executescript(
            "CREATE TABLE profiles (user_key TEXT PRIMARY KEY, identifiers TEXT NOT NULL,"
            " user_properties TEXT NOT NULL, updated_at TEXT NOT NULL);"
            "CREATE TABLE profile_updates (id INTEGER PRIMARY KEY, user_key TEXT NOT NULL,"
            " identifiers TEXT NOT NULL, user_properties TEXT NOT NULL, updated_at TEXT NOT NULL)"
        )
        conn.execute(
            "INSERT INTO profiles VALUES (?, ?, ?, 'a')",
            ('["u1",null,null,"a1"]', '{"user_id":"u1","anon_id":"a1"}', '{"tier":"gold"}'),
        )
        conn.execute(
            "INSERT INTO profile_updates VALUES (1, ?, ?, ?, 'b')",
            ('[null,null,null,"a1"]', '{"anon_id":"a1"}', '{"tier":"platinum"}'),
        )
        conn.commit()
    finally:
        conn.close()
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, db=db):
        pass
    profiles = reads.read_profiles(db)
    assert list(profiles) == ['["u1",null,null,"a1"]']
    assert profiles['["u1",null,null,"a1"]']["user_properties"] == {"tier": "platinum"}
    assert reads.db_stats(db)["profiles"] == 1
