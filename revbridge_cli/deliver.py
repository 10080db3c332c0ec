"""Delivery: one batch in, what became of each of its users out.

This is the HTTP edge. It asks the retry policy what to do and never decides alone; it splits
on 413, stops everything on 401, and classifies every failure so that no user is dropped:
each ends accepted, rejected (the server said why) or undelivered (we say why).

A request that got no answer (timeout, reset after the body went out) is "in doubt": the server
may have stored it and the API has no idempotency key. The vendor says to retry network
errors, so we resend, and count the batch's events as possible duplicates (CONTRACT.md).
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson

from revbridge_cli import contract
from revbridge_cli.batch import Batch, dumps
from revbridge_cli.errors import AuthError, RevbridgeError, UsageError
from revbridge_cli.retry import RetryPolicy

# Statuses after which nothing more is sent: exit code and what to check.
AUTH_STATUSES = frozenset({401, 403})
CONFIG_STATUSES = frozenset({404, 405})


@dataclass(slots=True)
class Outcome:
    """What one (sub-)batch became. `rejected` maps userIndex to the server's message; every
    other user is accepted, or undelivered when `undelivered` says why."""

    batch: Batch
    status: int | None = None
    trace_id: str | None = None
    rejected: dict[int, str] = field(default_factory=dict)
    undelivered: str | None = None
    in_doubt_resent: bool = False
    unanswered: bool = False  # retries used up and the last try got no answer at all

    @property
    def accepted_users(self) -> int:
        return 0 if self.undelivered else self.batch.n_users - len(self.rejected)

    @property
    def accepted_events(self) -> int:
        if self.undelivered:
            return 0
        batch = self.batch
        return batch.n_events - sum(batch.users[i].n_events for i in self.rejected)


@dataclass(frozen=True, slots=True)
class Fatal:
    """A stop for the whole run (bad credentials, wrong URL): no new request goes out."""

    family: type[RevbridgeError]  # AuthError or UsageError: errors.py gives its exit code
    message: str

    def error(self) -> RevbridgeError:
        return self.family(self.message)


@dataclass(frozen=True, slots=True)
class Attempt:
    """One HTTP exchange, for counters and the log file (trace ids of everything not plain)."""

    batch_seq: int
    status: int | None
    trace_id: str | None
    seconds: float
    error: str | None
    retry_in: float | None
    users: int
    body_bytes: int
    users_rejected: int = 0


class AdaptiveLimit:
    """How many requests may be in flight: halves when the server struggles (503/429, timeouts,
    latency well above its usual), grows back by one per round trip when it recovers."""

    def __init__(self, maximum: int, minimum: int = 1) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.limit = float(maximum)
        self.lowest = maximum  # for the summary: how far the server pushed us back
        self.in_flight = 0
        self._cond = asyncio.Condition()
        self._baseline: float | None = None
        self._last_cut = 0.0

    async def acquire(self) -> None:
        async with self._cond:
            await self._cond.wait_for(lambda: self.in_flight < int(self.limit))
            self.in_flight += 1

    async def release(self, congested: bool, latency: float | None) -> None:
        async with self._cond:
            self.in_flight -= 1
            self._adjust(congested, latency)
            self._cond.notify_all()

    def _adjust(self, congested: bool, latency: float | None) -> None:
        now = time.monotonic()
        if latency is not None and not congested:
            base = self._baseline
            self._baseline = latency if base is None else min(latency, base * 0.99 + latency * 0.01)
            congested = base is not None and latency > 3 * base + 0.5
        if congested:
            if now - self._last_cut > 1.0:  # one cut per second, not one per failed request
                self.limit = max(float(self.minimum), self.limit / 2)
                self.lowest = min(self.lowest, int(self.limit))
                self._last_cut = now
        else:
            self.limit = min(float(self.maximum), self.limit + 1 / max(self.limit, 1.0))


def split(batch: Batch) -> list[Batch]:
    """Halve a batch the server found too large: by users, or by events for a lone user."""
    users = batch.parts()
    if len(users) > 1:
        mid = len(users) // 2
        return [
            Batch.of(batch.seq, batch.lane, users[:mid]),
            Batch.of(batch.seq, batch.lane, users[mid:]),
        ]
    ((data, n_events, marks),) = users
    if n_events < 2:
        return []
    obj = orjson.loads(data)
    events = obj["events"]
    mid = len(events) // 2
    return [
        Batch.of(batch.seq, batch.lane, [(dumps({**obj, "events": chunk}), len(chunk), marks)])
        for chunk in (events[:mid], events[mid:])
    ]


def _in_doubt(exc: httpx.TransportError) -> bool:
    """Did the body possibly reach the server? Only failures before or while writing say no."""
    return not isinstance(
        exc,
        httpx.ConnectError
        | httpx.ConnectTimeout
        | httpx.PoolTimeout
        | httpx.WriteError
        | httpx.WriteTimeout,
    )


def _unbind(response: httpx.Response) -> None:
    """Break the cycle httpx 0.28 makes between a read response and its stream (encode/httpx
    #3733). Left alone, each response and the request body it holds wait for the cyclic GC:
    with bodies of hundreds of kilobytes that was tens of megabytes of peak memory."""
    response.stream = httpx.ByteStream(b"")


def _json(response: httpx.Response) -> dict[str, Any]:
    try:
        data = orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return {}
    return data if isinstance(data, dict) else {}


def _errors(data: dict[str, Any], n_users: int) -> dict[int, str]:
    out: dict[int, str] = {}
    for item in data.get("errors") or []:
        if isinstance(item, dict):
            index = item.get("userIndex")
            if isinstance(index, int) and 0 <= index < n_users:
                out[index] = str(item.get("message", "rejected"))
    return out


class Sender:
    """Sends batches with the retry policy over one shared async client."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        headers: dict[str, str],
        policy: RetryPolicy,
        limit: AdaptiveLimit,
        on_attempt: Callable[[Attempt], None] = lambda a: None,
        rand: Callable[[], float] = random.random,
    ) -> None:
        self.client = client
        self.url = base_url.rstrip("/") + contract.PATH
        self.headers = {**headers, "content-type": "application/json"}
        self.policy = policy
        self.limit = limit
        self.on_attempt = on_attempt
        self.rand = rand
        self.fatal: Fatal | None = None
        self.halted: str | None = None
        self._halt = asyncio.Event()

    def halt(self, why: str) -> None:
        """No new attempt after this (Ctrl-C, a fatal answer elsewhere); waits end at once."""
        self.halted = why
        self._halt.set()

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._halt.wait(), timeout=seconds)

    async def send(self, batch: Batch) -> list[Outcome]:
        """Deliver one batch; the list has one outcome per sub-batch after any 413 split."""
        outcome = await self._send_one(batch)
        if outcome is not None:
            return [outcome]
        halves = split(batch)
        if not halves:
            return [
                Outcome(
                    batch,
                    413,
                    undelivered="the server refuses even this single event as too large (413)",
                )
            ]
        results: list[Outcome] = []
        for half in halves:  # in order: the second half may hold later events of the same user
            results += await self.send(half)
        return results

    async def _send_one(self, batch: Batch) -> Outcome | None:
        """One batch through retries; None means "413: split it"."""
        body = batch.body()
        retries = 0
        in_doubt = False
        resent_in_doubt = False
        while True:
            if self.fatal is not None:
                return Outcome(
                    batch,
                    undelivered=f"not sent: {self.fatal.message}",
                    in_doubt_resent=resent_in_doubt,
                )
            if self.halted is not None:
                return Outcome(
                    batch, undelivered=f"not sent: {self.halted}", in_doubt_resent=resent_in_doubt
                )
            if in_doubt:
                resent_in_doubt = True
            await self.limit.acquire()
            started = time.monotonic()
            response: httpx.Response | None = None
            error: str | None = None
            congested = False
            try:
                response = await self.client.post(self.url, content=body, headers=self.headers)
                _unbind(response)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                in_doubt = in_doubt or _in_doubt(exc)
                congested = isinstance(exc, httpx.TimeoutException)
            finally:
                elapsed = time.monotonic() - started
                status = response.status_code if response is not None else None
                if status is not None:
                    congested = status in (429, 503)
                await self.limit.release(congested, elapsed if status == 202 else None)

            data = _json(response) if response is not None else {}
            trace_id = data.get("trace_id") or (
                response.headers.get("x-trace-id") if response is not None else None
            )
            retryable = error is not None or (
                status is not None and self.policy.is_retryable(status)
            )
            wait = None
            if retryable and self.policy.may_retry(retries):
                retry_after = response.headers.get("retry-after") if response is not None else None
                wait = self.policy.delay(retries, retry_after, self.rand())
            self.on_attempt(
                Attempt(
                    batch.seq,
                    status,
                    trace_id,
                    elapsed,
                    error,
                    wait,
                    batch.n_users,
                    len(body),
                    len(_errors(data, batch.n_users)) if status == 202 else 0,
                )
            )
            if wait is not None:
                retries += 1
                await self._wait(wait)
                continue
            outcome = Outcome(batch, status, trace_id, in_doubt_resent=resent_in_doubt)
            if retryable:
                outcome.unanswered = error is not None
                last = error or f"HTTP {status}"
                outcome.undelivered = (
                    f"gave up after {retries} retr{'y' if retries == 1 else 'ies'}: {last}"
                    + (
                        " (the last request got no answer: it may have been stored)"
                        if error and in_doubt
                        else ""
                    )
                )
                return outcome
            assert status is not None
            return self._judge(outcome, status, data)

    def _judge(self, outcome: Outcome, status: int, data: dict[str, Any]) -> Outcome | None:
        n_users = outcome.batch.n_users
        if status == 202:
            outcome.rejected = _errors(data, n_users)
            return outcome
        if status == 413:
            return None
        if status == 400:
            outcome.rejected = _errors(data, n_users)
            if len(outcome.rejected) < n_users:
                why = data.get("error") or "bad request"
                if outcome.rejected:  # some users named, the others not: keep them all aside
                    outcome.rejected = {
                        i: outcome.rejected.get(i, f"400 {why}: request refused as a whole")
                        for i in range(n_users)
                    }
                else:
                    outcome.undelivered = f"the server refused the request (400: {why})"
            return outcome
        if status in AUTH_STATUSES:
            self.fatal = Fatal(
                AuthError,
                f"authentication refused ({status}): check the API key "
                "(--api-key, --api-key-file or REVBRIDGE_API_KEY) and the "
                "x-customer-id header (--customer-id or REVBRIDGE_CUSTOMER_ID)",
            )
        elif status in CONFIG_STATUSES:
            self.fatal = Fatal(
                UsageError,
                f"the server answered {status} for POST {self.url}: check "
                "--base-url (it should be like https://api.revbridge.ai)",
            )
        if self.fatal is not None:
            outcome.undelivered = f"not sent: {self.fatal.message}"
            return outcome
        if status == 500:
            outcome.undelivered = (
                "server error 500: the request may have been partly "
                "processed, so it was not retried; resending may duplicate"
            )
        else:
            outcome.undelivered = f"unexpected answer HTTP {status}: {data.get('error', '')}"
        return outcome
