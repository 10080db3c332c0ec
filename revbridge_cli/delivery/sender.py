"""Delivery: one batch in, what became of each of its users out.

This is the HTTP edge. It asks the retry policy what to do and never decides alone; it splits
on 413, stops everything on 401 and on a network failure no retry can mend (a host that does
not resolve, a certificate that does not verify: `permanent`), and classifies every failure
so that no user is dropped: each ends accepted, rejected (the server said why) or undelivered
(we say why).

A request that got no answer (timeout, reset after the body went out) is "in doubt": the server
may have stored it and the API has no idempotency key. The vendor says to retry network
errors, so we resend, and count the batch's events as possible duplicates once for every
request in doubt that was resent (docs/contract.md).

Nothing the server sends may raise out of `Sender.send`: a trickled answer meets the
deadline, an oversized one is not read past `MAX_ANSWER_BYTES`, an undecodable one is judged
by its status alone, and an answer that cannot be mapped to users keeps them all aside
(`verdicts`). Each becomes an outcome, so a lane never dies of what a server said.
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
from revbridge_cli.config.retry import RetryPolicy
from revbridge_cli.delivery import verdicts
from revbridge_cli.delivery.exchange import Answer, bearer_secret, exchange
from revbridge_cli.delivery.limit import AdaptiveLimit
from revbridge_cli.errors import AuthError, ConfigError, RevbridgeError, UsageError
from revbridge_cli.pack.batch import Batch, dumps
from revbridge_cli.text import clean

# Statuses after which nothing more is sent: exit code and what to check.
AUTH_STATUSES = frozenset({401, 403})
CONFIG_STATUSES = frozenset({404, 405})
# Successes the API does not give (it answers 202): something else answered, maybe stored it.
OTHER_SUCCESSES = frozenset({200, 201, 204})
# The API's answers are a few hundred bytes; one this large is not the API, and is not read.
MAX_ANSWER_BYTES = 1_000_000
DEFAULT_DEADLINE = 30.0  # for a client built without a timeout

__all__ = ["AdaptiveLimit", "Attempt", "Fatal", "Outcome", "Sender", "split"]


@dataclass(slots=True)
class Outcome:
    """What one (sub-)batch became. `rejected` maps userIndex to the server's message; every
    other user is accepted, or undelivered when `undelivered` says why."""

    batch: Batch
    status: int | None = None
    trace_id: str | None = None
    rejected: dict[int, str] = field(default_factory=dict)
    undelivered: str | None = None
    # Requests of this batch that went unanswered after the body may have reached the server
    # and were then resent: each may have left one more copy there (a possible duplicate of
    # every event of the batch), so a batch in doubt twice is two copies, not one.
    resent_in_doubt: int = 0
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

    family: type[RevbridgeError]  # AuthError or a UsageError: errors.py gives its exit code
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
    # Decided once, here, from what the exchange saw on the wire: the body may have reached
    # the server and no answer says what became of it (the journal counts a copy for it).
    in_doubt: bool = False
    # The sender's last word on this batch: no further request of it follows (a retry or a
    # 413 split does follow).
    final: bool = True


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


class Sender:
    """Sends batches with the retry policy over one shared async client.

    `deadline` bounds one whole exchange, connect to last byte (httpx's own timeouts are per
    phase and per read, so a server trickling a byte a second would never trip them); by
    default it is the client's timeout, which `--timeout` sets."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        base_url: str,
        headers: dict[str, str],
        policy: RetryPolicy,
        limit: AdaptiveLimit,
        on_attempt: Callable[[Attempt], None] = lambda a: None,
        rand: Callable[[], float] = random.random,
        deadline: float | None = None,
        max_answer_bytes: int = MAX_ANSWER_BYTES,
    ) -> None:
        self.client = client
        self.url = base_url.rstrip("/") + contract.PATH
        self.headers = {**headers, "content-type": "application/json"}
        self.secrets = bearer_secret(self.headers)  # what no text repeated from a server holds
        self.policy = policy
        self.limit = limit
        self.on_attempt = on_attempt
        self.rand = rand
        self.deadline: float = deadline or client.timeout.read or DEFAULT_DEADLINE
        self.max_answer_bytes = max_answer_bytes
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
        ever_in_doubt = False  # some request of it may have been stored
        last_in_doubt = False  # the one just made
        resent_in_doubt = 0
        while True:
            stop = self.fatal.message if self.fatal is not None else self.halted
            if stop is not None:
                return Outcome(
                    batch, undelivered=f"not sent: {stop}", resent_in_doubt=resent_in_doubt
                )
            if last_in_doubt:
                resent_in_doubt += 1
            ticket = await self.limit.acquire()
            started = time.monotonic()
            answer = Answer(error="cancelled", in_doubt=True)
            try:
                answer = await exchange(
                    self.client, self.url, body, self.headers, self.deadline, self.max_answer_bytes
                )
            finally:
                elapsed = time.monotonic() - started
                status = answer.status
                congested = answer.timed_out or status in (429, 503)
                await self.limit.release(ticket, congested, elapsed if status == 202 else None)
            if answer.permanent is not None and self.fatal is None:
                self.fatal = Fatal(ConfigError, answer.permanent)  # as a wrong key: stop now
            last_in_doubt = answer.status is None and answer.in_doubt
            ever_in_doubt = ever_in_doubt or last_in_doubt
            data = verdicts.parse(answer.content)
            trace_id = _trace_id(data, answer.headers, self.secrets)
            retryable = answer.retryable_error or (
                status is not None and self.policy.is_retryable(status) and not answer.oversize
            )
            wait = None
            if retryable and self.policy.may_retry(retries):
                retry_after = answer.headers.get("retry-after") if answer.headers else None
                wait = self.policy.delay(retries, retry_after, self.rand())
            outcome = Outcome(batch, status, trace_id, resent_in_doubt=resent_in_doubt)
            judged = None if retryable or status is None else self._judge(outcome, answer, data)
            splits = judged is None and not retryable and status == 413
            self.on_attempt(
                Attempt(
                    batch.seq,
                    status,
                    trace_id,
                    elapsed,
                    answer.error or answer.unreadable,
                    wait,
                    batch.n_users,
                    len(body),
                    len(outcome.rejected) if status == 202 else 0,
                    in_doubt=last_in_doubt,
                    final=wait is None and not splits,
                )
            )
            if wait is not None:
                retries += 1
                await self._wait(wait)
                continue
            if answer.permanent is not None:
                outcome.undelivered = f"not sent: {answer.permanent}"
                return outcome
            if status is None or retryable:
                last = answer.error or f"HTTP {status}"
                if retryable:
                    outcome.unanswered = answer.error is not None
                    last = f"gave up after {retries} retr{'y' if retries == 1 else 'ies'}: {last}"
                else:
                    last = f"the exchange failed: {last}"
                stored = " (the last request got no answer: it may have been stored)"
                outcome.undelivered = last + (stored if answer.error and ever_in_doubt else "")
                return outcome
            return judged

    def _judge(
        self, outcome: Outcome, answer: Answer, data: dict[str, Any] | None
    ) -> Outcome | None:
        """A final answer (a status that is not retried) as each user's fate."""
        n_users = outcome.batch.n_users
        status = answer.status
        assert status is not None
        if answer.oversize:
            outcome.undelivered = f"unexpected answer HTTP {status}: {answer.unreadable}; " + (
                "the request may have been stored: check before resending"
                if 200 <= status < 300
                else "it was not read"
            )
            return outcome
        if status == 202:
            verdict = verdicts.accepted(data, answer.content, n_users, answer.unreadable)
            outcome.rejected = verdict.rejected
            return outcome
        if status == 413:
            return None
        if status == 400:
            verdict = verdicts.refused(data, answer.content, n_users, answer.unreadable)
            outcome.rejected, outcome.undelivered = verdict.rejected, verdict.undelivered
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
        elif status in OTHER_SUCCESSES:
            outcome.undelivered = (
                f"unexpected answer HTTP {status} (the API answers 202): the request may have "
                "been stored, check before resending"
            )
        else:
            error = data.get("error", "") if data is not None else ""
            if not isinstance(error, str) or not error:
                # A proxy's or a wrong host's page says more than a bare status; a short start
                # of it (the key already scrubbed from the body) is what tells them apart.
                start = (answer.content or b"")[:120].decode("utf-8", "replace").strip()
                error = f"its body starts {start!r}" if start else "with an empty body"
            outcome.undelivered = clean(f"unexpected answer HTTP {status}: {error}")
        return outcome


def _trace_id(
    data: dict[str, Any] | None, headers: httpx.Headers | None, secrets: tuple[str, ...]
) -> str | None:
    """The body's trace_id, else the header's; only ever a string (it goes to files and logs),
    on one line and without the key (the body is scrubbed already, a header is not)."""
    found = data.get("trace_id") if data is not None else None
    if isinstance(found, str) and found:
        return clean(found, secrets)[:200]
    header = headers.get("x-trace-id") if headers is not None else None
    return clean(header, secrets)[:200] if header else None
