"""Each injected fault, over a real socket, plus the pure decision rules behind them."""

from __future__ import annotations

import threading
import time
import uuid

import httpx
import pytest
from sandbox_helpers import API_KEY, CUSTOMER_ID, VENDOR_REQUEST, body_of_size, post, valid_user

from revbridge_cli.sandbox import Faults, Sandbox
from revbridge_cli.sandbox.faults import Decision, parse_numbers

pytestmark = pytest.mark.e2e  # every test here runs a sandbox or the real command


def one_user(i: int) -> dict[str, list[dict[str, object]]]:
    return {"users": [valid_user(f"u{i}")]}


# -- pure decisions --------------------------------------------------------------------------


def test_decisions_are_a_function_of_seed_and_number() -> None:
    a = Faults(seed=7, fail_rate=0.3, hang_rate=0.2, reset_rate=0.1)
    b = Faults(seed=7, fail_rate=0.3, hang_rate=0.2, reset_rate=0.1)
    assert [a.decide(n) for n in range(1, 200)] == [b.decide(n) for n in range(1, 200)]
    other = Faults(seed=8, fail_rate=0.3)
    assert [a.decide(n).fail for n in range(1, 200)] != [
        other.decide(n).fail for n in range(1, 200)
    ]
    share = sum(Faults(seed=1, fail_rate=0.3).decide(n).fail for n in range(1, 2001)) / 2000
    assert 0.25 < share < 0.35


def test_precedence_revoked_reset_fail_hang() -> None:
    faults = Faults(
        fail_requests=(1, 2, 3), hang_requests=(1, 2, 3, 4), reset_requests=(1, 2), revoke_after=1
    )
    assert faults.decide(1) == Decision(reset=True)
    assert faults.decide(2) == Decision(revoked=True)
    assert Faults(fail_requests=(3,), hang_requests=(3,)).decide(3) == Decision(fail=True)
    assert Faults(hang_requests=(4,)).decide(4) == Decision(hang=True)
    assert Faults().decide(1) == Decision()


@pytest.mark.parametrize(
    "settings",
    [{"fail_rate": 1.5}, {"hang_rate": -0.1}, {"fail_status": 404}, {"latency": -1}],
)
def test_bad_settings_are_refused(settings: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        Faults(**settings)  # type: ignore[arg-type]


def test_parse_numbers() -> None:
    assert parse_numbers("3, 5,") == (3, 5)
    assert parse_numbers(None) == ()
    with pytest.raises(ValueError):
        parse_numbers("0")


# -- over the wire ---------------------------------------------------------------------------


def test_latency_is_added_before_answering(client: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(latency=0.3)
    started = time.monotonic()
    assert post(client, VENDOR_REQUEST).status_code == 202
    assert time.monotonic() - started >= 0.3


def test_fail_requests_answer_503_and_store_nothing(client: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(fail_requests=(2,))
    statuses = [post(client, one_user(i)) for i in range(3)]
    assert [r.status_code for r in statuses] == [202, 503, 202]
    failed = statuses[1]
    assert set(failed.json()) == {"error", "trace_id"}
    assert failed.json()["error"] == "service temporarily unavailable"
    assert failed.headers["x-trace-id"] == failed.json()["trace_id"]
    assert "retry-after" not in failed.headers
    assert [e["identifiers"]["user_id"] for e in sandbox.events()] == ["u0", "u2"]
    assert [(r["status"], r["fault"]) for r in sandbox.requests()] == [
        (202, None),
        (503, "fail"),
        (202, None),
    ]


@pytest.mark.parametrize(
    ("status", "message"),
    [
        (429, "too many requests"),
        (500, "internal server error"),
        (502, "bad gateway"),
        (503, "service temporarily unavailable"),
        (504, "gateway timeout"),
    ],
)
def test_fail_status_and_retry_after(
    client: httpx.Client, sandbox: Sandbox, status: int, message: str
) -> None:
    sandbox.faults = Faults(fail_requests=(1,), fail_status=status, retry_after=2)
    response = post(client, VENDOR_REQUEST)
    assert response.status_code == status
    assert response.headers["retry-after"] == "2"
    assert response.json()["error"] == message
    uuid.UUID(response.json()["trace_id"])


def test_fail_rate_is_seeded(client: httpx.Client, sandbox: Sandbox) -> None:
    faults = Faults(seed=42, fail_rate=0.5)
    sandbox.faults = faults
    failed = [n for n in range(1, 21) if post(client, one_user(n)).status_code == 503]
    assert failed == [n for n in range(1, 21) if faults.decide(n).fail]
    assert 0 < len(failed) < 20
    again = Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, faults=faults)
    with again as sb2, httpx.Client(base_url=sb2.url) as c:
        rerun = [n for n in range(1, 21) if post(c, one_user(n)).status_code == 503]
    assert rerun == failed


def test_requests_are_numbered_after_auth(client: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(fail_requests=(1,))
    assert post(client, VENDOR_REQUEST, headers={}).status_code == 401
    client.get("/ingest/events")
    assert post(client, VENDOR_REQUEST).status_code == 503


def test_hang_stores_then_answers_too_late(sandbox: Sandbox) -> None:
    sandbox.faults = Faults(hang_requests=(1,), hang_seconds=600)  # longer than the test may take
    with httpx.Client(base_url=sandbox.url, timeout=0.5) as c, pytest.raises(httpx.ReadTimeout):
        post(c, VENDOR_REQUEST)
    assert [e["identifiers"]["user_id"] for e in sandbox.events()] == ["u1"]
    assert [(r["status"], r["fault"]) for r in sandbox.requests()] == [(202, "hang")]
    with httpx.Client(base_url=sandbox.url, timeout=5) as c:
        assert post(c, one_user(2)).status_code == 202  # only the numbered request hangs
    sandbox.stop()  # returns at all: stop() does not sit out the hang (pytest-timeout fails it)


def test_hang_answers_after_hang_seconds(client: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(hang_requests=(1,), hang_seconds=0.3)
    started = time.monotonic()
    assert post(client, VENDOR_REQUEST).status_code == 202
    assert time.monotonic() - started >= 0.3


def test_reset_without_store(client: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(reset_requests=(1,))
    with pytest.raises(httpx.TransportError):
        post(client, VENDOR_REQUEST)
    assert sandbox.events() == []
    assert [(r["status"], r["fault"]) for r in sandbox.requests()] == [(0, "reset")]
    assert sandbox.stats()["requests_by_status"] == {0: 1}
    assert post(client, one_user(2)).status_code == 202  # the client reconnects


def test_reset_after_store(client: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(reset_requests=(1,), reset_after_store=True)
    with pytest.raises(httpx.TransportError):
        post(client, VENDOR_REQUEST)
    assert len(sandbox.events()) == 1
    (row,) = sandbox.requests()
    assert (row["status"], row["fault"], row["users_accepted"]) == (0, "reset_after_store", 1)


def test_reset_rate_is_seeded(sandbox: Sandbox) -> None:
    faults = Faults(seed=3, reset_rate=0.5)
    sandbox.faults = faults
    outcomes = []
    for n in range(1, 11):
        with httpx.Client(base_url=sandbox.url, timeout=5) as c:
            try:
                outcomes.append(post(c, one_user(n)).status_code)
            except httpx.TransportError:
                outcomes.append(0)
    assert outcomes == [0 if faults.decide(n).reset else 202 for n in range(1, 11)]


def test_lower_body_limit(client: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(max_body_bytes=1000)
    assert post(client, body_of_size(1000)).status_code == 202
    response = post(client, body_of_size(1001))
    assert response.status_code == 413
    assert response.json()["error"] == "payload too large"
    assert [r["fault"] for r in sandbox.requests()] == [None, "max_body_bytes"]


def test_revoke_after(client: httpx.Client, sandbox: Sandbox) -> None:
    sandbox.faults = Faults(revoke_after=2)
    responses = [post(client, one_user(i)) for i in range(4)]
    assert [r.status_code for r in responses] == [202, 202, 401, 401]
    assert responses[2].json() == {"error": "unauthorized"}
    assert [r["fault"] for r in sandbox.requests()][2:] == ["revoked", "revoked"]


def test_faults_change_at_runtime(client: httpx.Client, sandbox: Sandbox) -> None:
    assert post(client, one_user(1)).status_code == 202
    sandbox.set_faults(fail_requests=(2,), fail_status=502)
    assert sandbox.faults.fail_status == 502
    assert post(client, one_user(2)).status_code == 502
    sandbox.faults = Faults()
    assert post(client, one_user(3)).status_code == 202


def test_faults_at_construction() -> None:
    with Sandbox(faults=Faults(fail_requests=(1,))) as sb, httpx.Client(base_url=sb.url) as c:
        assert post(c, VENDOR_REQUEST, headers=sb.headers).status_code == 503
        assert post(c, VENDOR_REQUEST, headers=sb.headers).status_code == 202


def test_reject_user_ids_refuses_listed_users_the_rules_pass(
    sandbox: Sandbox, client: httpx.Client
) -> None:
    from revbridge_cli.sandbox.faults import REJECTED_USER_MESSAGE

    sandbox.faults = Faults(reject_user_ids=("u2",))
    users = [valid_user("u1"), valid_user("u2"), {"events": []}]
    response = post(client, {"users": users})
    assert response.status_code == 202
    assert response.json()["errors"] == [
        {"userIndex": 1, "message": REJECTED_USER_MESSAGE},
        {"userIndex": 2, "message": "identifiers is required"},
    ]
    assert [e["identifiers"]["user_id"] for e in sandbox.events()] == ["u1"]
    sandbox.faults = Faults(reject_user_ids=("u1",))
    response = post(client, {"users": [valid_user("u1")]})
    assert response.status_code == 400
    assert response.json()["error"] == "validation failed"


def test_capacity_is_a_pure_rule_of_in_flight_and_time() -> None:
    faults = Faults(capacity=2, capacity_seconds=3.0)
    assert not faults.over_capacity(1, 0.0)
    assert faults.over_capacity(2, 0.0)
    assert not faults.over_capacity(2, 3.0)  # the window is over
    assert not Faults().over_capacity(100, 0.0)
    with pytest.raises(ValueError, match="capacity"):
        Faults(capacity=0)


def concurrent_posts(sb: Sandbox, n: int) -> list[int]:
    """`n` requests started at once, each on its own connection; their statuses."""
    statuses: list[int] = []
    barrier = threading.Barrier(n)

    def one(i: int) -> None:
        with httpx.Client(base_url=sb.url, timeout=30) as client:
            barrier.wait()
            statuses.append(post(client, one_user(i), headers=sb.headers).status_code)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(statuses)


@pytest.mark.e2e
def test_capacity_refuses_what_arrives_while_n_are_in_progress() -> None:
    faults = Faults(capacity=1, latency=2.0)  # long enough for the others to arrive meanwhile
    with Sandbox(faults=faults) as sb:
        statuses = concurrent_posts(sb, 3)
        assert statuses.count(503) >= 1 and 202 in statuses
        refused = [r for r in sb.requests() if r["status"] == 503]
        assert {r["fault"] for r in refused} == {"capacity"}
        assert sb.stats()["users_accepted"] == statuses.count(202)


@pytest.mark.e2e
def test_capacity_ends_after_its_window() -> None:
    with Sandbox(faults=Faults(capacity=1, capacity_seconds=0.0, latency=0.3)) as sb:
        assert concurrent_posts(sb, 3) == [202, 202, 202]
