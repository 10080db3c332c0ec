"""A tiny misbehaving HTTP server on 127.0.0.1, for wire-level oddities the sandbox has no
fault for: canned answers the API never gives, bodies trickled a byte at a time, answers far
too large, a lying Content-Encoding, an answer that quotes the request's headers (`heads`
holds them, key and all, as a debugging proxy would). It runs its own event loop in a thread,
reads each request whole (headers and Content-Length body), and answers with whatever
`answer` returns.
"""

from __future__ import annotations

import asyncio
import ssl
import threading
from collections.abc import Callable
from types import TracebackType
from typing import Self

import orjson

API_KEY = "rbk_test_odd_server_0"
CUSTOMER_ID = "cust_odd"


def http_response(
    status: int,
    body: bytes | dict[str, object] = b"",
    headers: dict[str, str] | None = None,
    length: bool = True,
) -> bytes:
    """Raw response bytes; `length=False` leaves out Content-Length and closes instead."""
    data = orjson.dumps(body) if isinstance(body, dict) else body
    lines = [f"HTTP/1.1 {status} Whatever"]
    all_headers = {"Content-Type": "application/json", **(headers or {})}
    if length:
        all_headers["Content-Length"] = str(len(data))
    else:
        all_headers["Connection"] = "close"
    lines += [f"{name}: {value}" for name, value in all_headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + data


class OddServer:
    """`answer(n, body)` gives the raw bytes for request number n (1-based); `trickle`
    seconds between bytes sends them one at a time; `close=True` closes after each answer."""

    def __init__(
        self,
        answer: Callable[[int, bytes], bytes],
        trickle: float = 0.0,
        close: bool = False,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.answer = answer
        self.tls = tls  # serve HTTPS with this server-side context
        self.trickle = trickle
        self.close = close
        self.bodies: list[bytes] = []
        self.heads: list[bytes] = []  # each request's line and headers, as received
        self.connections = 0
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://127.0.0.1:{self.port}"

    def env(self) -> dict[str, str]:
        return {
            "REVBRIDGE_BASE_URL": self.url,
            "REVBRIDGE_API_KEY": API_KEY,
            "REVBRIDGE_CUSTOMER_ID": CUSTOMER_ID,
        }

    def __enter__(self) -> Self:
        self._thread.start()
        self._ready.wait()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._serve, "127.0.0.1", 0, ssl=self.tls)
        )
        self.port = self._server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                body = await reader.readexactly(length)
                self.heads.append(head)
                self.bodies.append(body)
                data = self.answer(len(self.bodies), body)
                if self.trickle:
                    for i in range(len(data)):
                        writer.write(data[i : i + 1])
                        await writer.drain()
                        await asyncio.sleep(self.trickle)
                else:
                    writer.write(data)
                    await writer.drain()
                if self.close:
                    break
        except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
            pass
        finally:
            writer.close()


def api_in_other_words(empty_users_error: str) -> OddServer:
    """A server that checks the credentials as the API does (401 without this module's key
    and customer id) and refuses an empty `users` in its error shape, in its own words: the
    reference gives no exact text for that 400, so a real server may word it so."""
    server: OddServer

    def answer(n: int, body: bytes) -> bytes:
        head = server.heads[-1].lower()
        if f"authorization: bearer {API_KEY}".encode() not in head or (
            f"x-customer-id: {CUSTOMER_ID}".encode() not in head
        ):
            return http_response(401, {"error": "unauthorized"})
        if orjson.loads(body).get("users") == []:
            return http_response(400, {"error": empty_users_error, "trace_id": f"odd-{n}"})
        return http_response(500, {"error": "this server only answers checks", "trace_id": "x"})

    server = OddServer(answer)
    return server
