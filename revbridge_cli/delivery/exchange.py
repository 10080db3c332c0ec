"""One HTTP exchange with the API, under one deadline, turned into plain data.

The sender decides what an answer means; this module only makes sure that whatever a server
(or something pretending to be one) does on the wire comes back as an `Answer` and never as
an exception: a refused connection, a reset, an answer trickled a byte at a time (the
deadline covers connect to last byte, which httpx's per-read timeouts do not), a body far
larger than any API answer (read only up to a cap), or one whose `Content-Encoding` lies
(`httpx.DecodingError` is no `TransportError`, so it is caught on its own).

It is also where outside text enters: a body or an exception's words that quote the request's
headers (a debugging proxy, a wrong `--base-url`) would carry the key into every output, so
the body and every message leave here scrubbed of it and on one line (`text`).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import Any

import httpx

from revbridge_cli.delivery.permanent import permanent_failure
from revbridge_cli.text import clean, scrub_bytes


@dataclass(slots=True)
class Progress:
    """How far one exchange got, from httpcore's trace events: a deadline that strikes
    before the body was all written leaves nothing on the server to doubt. Without events
    (another transport) the exchange counts as in doubt, the safe side."""

    traced: bool = False
    body_sent: bool = False

    async def trace(self, name: str, info: dict[str, Any]) -> None:
        self.traced = True
        if name.endswith("send_request_body.complete"):
            self.body_sent = True

    @property
    def in_doubt(self) -> bool:
        return self.body_sent or not self.traced


@dataclass(slots=True)
class Answer:
    """A status with its body, or the error that kept it from coming."""

    status: int | None = None
    headers: httpx.Headers | None = None
    content: bytes | None = None  # None: not read (too large, undecodable) or no answer
    unreadable: str | None = None  # why the body was not read
    oversize: bool = False
    error: str | None = None  # no status: why
    retryable_error: bool = False  # a network failure or timeout: the policy may resend
    in_doubt: bool = False  # the body may have reached the server
    timed_out: bool = False
    permanent: str | None = None  # no retry can mend it (a name, a certificate): the fix


def in_doubt(exc: httpx.TransportError) -> bool:
    """Did the body possibly reach the server? Only failures before or while writing say no."""
    return not isinstance(
        exc,
        httpx.ConnectError
        | httpx.ConnectTimeout
        | httpx.PoolTimeout
        | httpx.WriteError
        | httpx.WriteTimeout,
    )


def unbind(response: httpx.Response) -> None:
    """Break the cycle httpx 0.28 makes between a read response and its stream (encode/httpx
    #3733). Left alone, each response and the request body it holds wait for the cyclic GC:
    with bodies of hundreds of kilobytes that was tens of megabytes of peak memory."""
    response.stream = httpx.ByteStream(b"")


def describe(exc: BaseException, secrets: tuple[str, ...] = ()) -> str:
    """The exception's class and words, scrubbed of `secrets` (and every registered key)."""
    text = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    return clean(text, secrets)


def bearer_secret(headers: dict[str, str]) -> tuple[str, ...]:
    """The key in the request's own Authorization header: the one secret an echo can hold."""
    value = headers.get("authorization", "")
    key = value.removeprefix("Bearer ").strip()
    return (key,) if key else ()


async def read_capped(response: httpx.Response, cap: int, answer: Answer) -> None:
    """The body, decoded, up to `cap` bytes; past it the rest is left unread."""
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > cap:
        answer.oversize = True
    else:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > cap:
                answer.oversize = True
                break
            chunks.append(chunk)
        else:
            answer.content = b"".join(chunks)
    if answer.oversize:
        answer.unreadable = f"its body is over {cap:,} bytes (an API answer is a few hundred)"


async def exchange(
    client: httpx.AsyncClient,
    url: str,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    cap: int,
) -> Answer:
    """One POST, connect to last byte within `deadline` seconds, its answer read up to `cap`."""
    answer = Answer()
    progress = Progress()
    secrets = bearer_secret(headers)
    try:
        async with asyncio.timeout(deadline):
            async with client.stream(
                "POST", url, content=body, headers=headers, extensions={"trace": progress.trace}
            ) as response:
                answer.status, answer.headers = response.status_code, response.headers
                try:
                    await read_capped(response, cap, answer)
                except httpx.DecodingError as exc:
                    encoding = response.headers.get("content-encoding", "")
                    answer.unreadable = clean(
                        f"its body could not be decoded (Content-Encoding {encoding!r}: "
                        f"{describe(exc)})",
                        secrets,
                    )
                if answer.content is not None and secrets:
                    answer.content = scrub_bytes(answer.content, secrets)
            unbind(response)
    except TimeoutError:
        return Answer(
            error=f"no complete answer within --timeout {deadline:g} s",
            retryable_error=True,
            in_doubt=progress.in_doubt,
            timed_out=True,
        )
    except httpx.ConnectError as exc:
        lasting = permanent_failure(exc, url)
        if lasting is None:
            return Answer(error=describe(exc, secrets), retryable_error=True, in_doubt=False)
        return Answer(error=describe(exc, secrets), permanent=clean(lasting, secrets))
    except httpx.TransportError as exc:  # refused, reset, a broken answer, httpx's timeouts
        return Answer(
            error=describe(exc, secrets),
            retryable_error=True,
            in_doubt=in_doubt(exc),
            timed_out=isinstance(exc, httpx.TimeoutException),
        )
    except httpx.HTTPError as exc:  # anything else httpx raises: no verdict, not retried
        return Answer(error=describe(exc, secrets), in_doubt=progress.in_doubt)
    return answer
