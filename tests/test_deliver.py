"""Delivery edge cases through httpx.MockTransport; the rest is proven over the real sandbox."""

from __future__ import annotations

import asyncio
import gc
import weakref
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from revbridge_cli.config.retry import RetryPolicy
from revbridge_cli.delivery.exchange import in_doubt, unbind
from revbridge_cli.delivery.sender import AdaptiveLimit, Attempt, Outcome, Sender, split
from revbridge_cli.pack.batch import Batch
from revbridge_cli.pack.packer import Packer
from revbridge_cli.shape.parts import UserPart, shape

TS = "2026-01-15T14:30:00Z"


def batch_of(*users: tuple[str, int], props: dict[str, Any] | None = None) -> Batch:
    """One batch; `users` are (user_id, number of events)."""
    packer = Packer()
    n = 0
    for user_id, events in users:
        for _ in range(events):
            n += 1
            record: dict[str, Any] = {"user_id": user_id, "event_name": "e", "seq": n}
            if props is not None:
                record["user_properties"] = props
            (item,) = shape(record, (0, n, 0))
            assert isinstance(item, UserPart)
            packer.add(item)
    (batch,) = packer.flush()
    return batch


def test_split_halves_users() -> None:
    batch = batch_of(("a", 1), ("b", 2), ("c", 1))
    first, second = split(batch)
    assert [len(first.users), len(second.users)] == [1, 2]
    assert first.parts() + second.parts() == batch.parts()
    assert first.seq == second.seq == batch.seq and first.lane == batch.lane


def test_split_lone_user_halves_its_events_in_order() -> None:
    batch = batch_of(("a", 5), props={"tier": "gold"})
    halves = split(batch)
    assert [h.n_events for h in halves] == [2, 3]
    users = [orjson.loads(h.body())["users"][0] for h in halves]
    for user in users:
        assert user["identifiers"] == {"user_id": "a"}
        assert user["user_properties"] == {"tier": "gold"}
    assert [e["seq"] for u in users for e in u["events"]] == [1, 2, 3, 4, 5]
    assert all(h.size == len(h.body()) for h in halves)


def test_split_lone_event_is_impossible() -> None:
    assert split(batch_of(("a", 1))) == []


@pytest.mark.parametrize(
    ("exc", "doubt"),
    [
        (httpx.ConnectError("refused"), False),
        (httpx.ConnectTimeout("slow connect"), False),
        (httpx.PoolTimeout("pool"), False),
        (httpx.WriteError("broken pipe"), False),
        (httpx.WriteTimeout("slow write"), False),
        (httpx.ReadTimeout("no answer"), True),
        (httpx.ReadError("reset"), True),
        (httpx.RemoteProtocolError("server disconnected"), True),
    ],
)
def test_in_doubt_only_when_the_body_may_have_arrived(exc: Exception, doubt: bool) -> None:
    assert in_doubt(exc) is doubt  # type: ignore[arg-type]


Handler = Callable[[httpx.Request], httpx.Response]


def deliver(
    handler: Handler, batch: Batch, policy: RetryPolicy | None = None, key: str = "k"
) -> tuple[list[Outcome], list[Attempt], Sender]:
    attempts: list[Attempt] = []

    async def go() -> tuple[list[Outcome], Sender]:
        transport = httpx.MockTransport(handler)
        async with httpx.AsyncClient(transport=transport) as client:
            sender = Sender(
                client,
                "http://revbridge.test",
                {"authorization": f"Bearer {key}", "x-customer-id": "c"},
                policy or RetryPolicy(initial_delay=0.0),
                AdaptiveLimit(2),
                on_attempt=attempts.append,
                rand=lambda: 0.0,
            )
            return await sender.send(batch), sender

    outcomes, sender = asyncio.run(go())
    return outcomes, attempts, sender


def failing_then_202(exc: Exception, failures: int = 1) -> tuple[Handler, list[int]]:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        if len(calls) <= failures:
            raise exc
        return httpx.Response(202, json={"trace_id": "t-ok", "errors": []})

    return handler, calls


def test_resent_after_a_read_timeout_counts_as_possible_duplicate() -> None:
    handler, calls = failing_then_202(httpx.ReadTimeout("no answer"))
    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 2)))
    assert len(calls) == 2
    assert outcome.status == 202 and outcome.undelivered is None
    assert outcome.resent_in_doubt == 1
    assert outcome.accepted_events == 2
    assert attempts[0].error is not None and attempts[0].retry_in == 0.0
    assert [(a.in_doubt, a.final) for a in attempts] == [(True, False), (False, True)]


def test_a_batch_in_doubt_twice_is_two_possible_copies() -> None:
    handler, calls = failing_then_202(httpx.ReadError("reset after store"), failures=2)
    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 3)))
    assert len(calls) == 3
    assert outcome.status == 202 and outcome.resent_in_doubt == 2
    assert [(a.in_doubt, a.final) for a in attempts] == [
        (True, False),
        (True, False),
        (False, True),
    ]


def test_resent_after_a_connect_error_is_not_a_duplicate() -> None:
    handler, calls = failing_then_202(httpx.ConnectError("refused"))
    (outcome,), _, _ = deliver(handler, batch_of(("a", 2)))
    assert len(calls) == 2
    assert outcome.resent_in_doubt == 0
    assert outcome.accepted_users == 1


def test_network_errors_until_retries_run_out_say_it_may_be_stored() -> None:
    handler, calls = failing_then_202(httpx.ReadError("reset"), failures=99)
    (outcome,), _, _ = deliver(handler, batch_of(("a", 1)), RetryPolicy(2, initial_delay=0.0))
    assert len(calls) == 3
    assert outcome.undelivered is not None
    assert outcome.undelivered.startswith("gave up after 2 retries: ReadError: reset")
    assert "it may have been stored" in outcome.undelivered
    assert outcome.resent_in_doubt == 2  # the third may be stored too: it is undelivered


def test_400_with_errors_for_every_user_rejects_them_by_index() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        errors = [{"userIndex": 1, "message": "m1"}, {"userIndex": 0, "message": "m0"}]
        body = {"error": "validation failed", "trace_id": "t4", "errors": errors}
        return httpx.Response(400, json=body)

    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 1), ("b", 1)))
    assert outcome.rejected == {0: "m0", 1: "m1"}
    assert outcome.undelivered is None and outcome.trace_id == "t4"
    assert outcome.accepted_users == 0
    assert len(attempts) == 1  # never retried


def test_400_without_errors_leaves_the_users_undelivered() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(400, json={"error": "malformed JSON", "trace_id": "t"})

    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 1), ("b", 1)))
    assert outcome.undelivered == "the server refused the request (400: malformed JSON)"
    assert outcome.rejected == {}
    assert len(attempts) == 1


def test_400_naming_only_some_users_keeps_every_user_aside() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        body = {"error": "validation failed", "errors": [{"userIndex": 1, "message": "bad"}]}
        return httpx.Response(400, json=body)

    (outcome,), _, _ = deliver(handler, batch_of(("a", 1), ("b", 1), ("c", 1)))
    assert outcome.rejected[1] == "bad"
    assert set(outcome.rejected) == {0, 1, 2}
    assert outcome.rejected[0] == "400 validation failed: request refused as a whole"


def test_202_errors_that_cannot_be_mapped_keep_every_unnamed_user_aside() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        errors = [{"userIndex": 5, "message": "x"}, {"userIndex": "0"}, "junk",
                  {"userIndex": 0, "message": "real"}]  # fmt: skip
        return httpx.Response(202, json={"trace_id": "t", "errors": errors})

    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 1), ("b", 1), ("c", 1)))
    assert outcome.rejected[0] == "real"
    assert set(outcome.rejected) == {0, 1, 2}
    assert outcome.rejected[1].startswith("the server's answer could not be mapped to users")
    assert "userIndex 5 is outside 0..2" in outcome.rejected[1]
    assert outcome.accepted_users == 0
    assert attempts[0].users_rejected == 3


def test_401_is_fatal_and_names_key_and_customer_id() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(401, json={"error": "unauthorized"})

    (outcome,), attempts, sender = deliver(handler, batch_of(("a", 1)))
    assert sender.fatal is not None and sender.fatal.error().exit_code == 3
    assert "API key" in sender.fatal.message and "x-customer-id" in sender.fatal.message
    assert outcome.undelivered == f"not sent: {sender.fatal.message}"
    assert len(attempts) == 1


def test_trace_id_from_header_when_the_body_has_none() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500, text="oops", headers={"x-trace-id": "hdr"})

    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 1)))
    assert outcome.trace_id == "hdr" and attempts[0].trace_id == "hdr"
    assert outcome.undelivered is not None and outcome.undelivered.startswith("server error 500")


def test_a_read_response_is_freed_without_waiting_for_the_cyclic_gc() -> None:
    """httpx 0.28 ties a response and its stream in a cycle (encode/httpx#3733), which keeps
    the request body alive until a collection; `unbind` breaks it, so refcounting frees it."""

    async def scenario() -> weakref.ref[httpx.Response]:
        transport = httpx.MockTransport(lambda request: httpx.Response(202, json={}))
        async with httpx.AsyncClient(transport=transport) as client:
            response = await client.post("http://x/ingest/events", content=b"{}")
            unbind(response)
            return weakref.ref(response)

    gc.disable()
    try:
        ref = asyncio.run(scenario())
        assert ref() is None
    finally:
        gc.enable()


@pytest.mark.parametrize(
    "exc",
    [
        httpx.DecodingError("bad gzip"),
        httpx.TooManyRedirects("loop"),
        httpx.RemoteProtocolError("garbage status line"),
    ],
    ids=lambda e: type(e).__name__,
)
def test_no_httpx_error_escapes_send(exc: Exception) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 1)), RetryPolicy(1, 0.0))
    assert outcome.undelivered is not None
    assert type(exc).__name__ in outcome.undelivered
    assert attempts[-1].error is not None


def test_the_deadline_bounds_the_whole_exchange() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(30)
        return httpx.Response(202, json={})

    async def go() -> Outcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
            sender = Sender(client, "http://x", {}, RetryPolicy(0), AdaptiveLimit(1), deadline=0.05)
            (outcome,) = await sender.send(batch_of(("a", 1)))
            return outcome

    outcome = asyncio.run(go())
    assert outcome.undelivered is not None
    assert "no complete answer within --timeout 0.05 s" in outcome.undelivered
    assert "may have been stored" in outcome.undelivered  # no trace of the body: in doubt


def test_a_503_until_retries_run_out_says_so() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, json={"error": "service temporarily unavailable"})

    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 1)), RetryPolicy(1, 0.0))
    assert outcome.undelivered == "gave up after 1 retry: HTTP 503"
    assert outcome.unanswered is False and len(attempts) == 2


ECHOED_KEY = "rbk_echoed_0123456789abcdef"


@pytest.mark.parametrize(
    "answer",
    [
        httpx.ReadError(f"peer said: authorization: Bearer {ECHOED_KEY}\r\nnext"),
        httpx.Response(400, json={"error": f"bad: Bearer {ECHOED_KEY}"}),
        httpx.Response(418, json={"error": f"teapot {ECHOED_KEY}"},
                       headers={"x-trace-id": ECHOED_KEY}),
        httpx.Response(202, json={"users_accepted": 0, "users_rejected": 1,
                                  "errors": [{"userIndex": 0, "message": f"no\n{ECHOED_KEY}"}]}),
    ],
    ids=["exception text", "400 error", "other status and header", "202 message"],
)  # fmt: skip
def test_the_key_quoted_back_leaves_the_sender_redacted_and_on_one_line(answer: Any) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(answer, Exception):
            raise answer
        return answer

    (outcome,), attempts, _ = deliver(handler, batch_of(("a", 1)), RetryPolicy(0), ECHOED_KEY)
    said = [outcome.undelivered or "", outcome.trace_id or "", *outcome.rejected.values()]
    said += [a.error or "" for a in attempts] + [a.trace_id or "" for a in attempts]
    assert any(said)
    for text in said:
        assert ECHOED_KEY not in text and text.isprintable(), said
