"""The HTTP side of the sandbox: read a request, answer exactly as the contract says.

Built on the stdlib's threading HTTP server: one thread per connection is plenty for a local
server, keep-alive comes with HTTP/1.1, and there is no dependency to install. Every rule and
message comes from `revbridge_cli.contract`; this module only decides the order in which they
apply and injects the faults `faults.Faults` asks for.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import struct
import sys
import threading
import time
import traceback
import uuid
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from io import BufferedReader
from typing import Any, TextIO, cast
from urllib.parse import urlsplit

import orjson

from revbridge_cli.contract import (
    ERR_METHOD,
    ERR_NOT_FOUND,
    ERR_TOO_LARGE,
    ERR_UNAUTHORIZED,
    ERR_UNAVAILABLE,
    MAX_BODY_BYTES,
    PATH,
    SERVER_TIMEOUT_SECONDS,
)
from revbridge_cli.sandbox.answers import judge
from revbridge_cli.sandbox.bodies import BadFraming, Body, read_body
from revbridge_cli.sandbox.connections import BUSY, IDLE, READING, Connections
from revbridge_cli.sandbox.faults import Decision, Faults
from revbridge_cli.sandbox.store import (
    Batch,
    Counters,
    NullStore,
    RequestRecord,
    SqliteStore,
    now_iso,
)

IDLE_TIMEOUT = 120.0
READ_DEADLINE = SERVER_TIMEOUT_SECONDS  # a request must arrive whole within it
MAX_CONNECTIONS = 256  # beyond it, a new connection sheds the one waiting longest on its client
REAP_EVERY = 0.25
LINGER_SECONDS = 2.0


class SandboxHTTPServer(ThreadingHTTPServer):
    """Holds what every handler thread shares: credentials, faults, store, counters."""

    daemon_threads = True
    request_queue_size = 1024

    def __init__(
        self,
        address: tuple[str, int],
        *,
        api_key: str,
        customer_id: str,
        store: SqliteStore | NullStore,
        faults: Faults,
        log: TextIO | None = None,
    ) -> None:
        self.api_key = api_key
        self.customer_id = customer_id
        self.store = store
        self.storing = isinstance(store, SqliteStore)
        self.faults = faults
        self.counters = Counters()
        self.log = log
        self.stopping = threading.Event()
        self._number = 0
        self._in_flight = 0  # numbered requests being worked on, for the `capacity` fault
        self._capacity_for: Faults | None = None  # the policy whose window is running
        self._capacity_since = 0.0
        self._lock = threading.Lock()
        self.connections = Connections(MAX_CONNECTIONS, IDLE_TIMEOUT, READ_DEADLINE)
        super().__init__(address, SandboxHandler)
        self._reaper = threading.Thread(target=self._reap, name="sandbox-reaper", daemon=True)
        self._reaper.start()

    def _reap(self) -> None:
        while not self.stopping.wait(REAP_EVERY):
            self.connections.reap()

    def process_request(self, request: Any, client_address: Any) -> None:
        """Admit the connection before a thread is made for it: at the cap it sheds a
        client that keeps a thread waiting, so a flood of slow ones cannot lock others out."""
        if not self.connections.add(request):
            self.shutdown_request(request)
            return
        super().process_request(request, client_address)

    def server_bind(self) -> None:
        """Skip HTTPServer's reverse DNS lookup of the host: it can take seconds."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)

    def next_number(self) -> int:
        with self._lock:
            self._number += 1
            return self._number

    def admit(self, faults: Faults) -> bool:
        """Take a place among the requests in progress, or False: over `capacity` (a 503).
        The capacity window starts with the first request a policy sees."""
        with self._lock:
            now = time.monotonic()
            if faults.capacity is not None and self._capacity_for is not faults:
                self._capacity_for, self._capacity_since = faults, now
            if faults.over_capacity(self._in_flight, now - self._capacity_since):
                return False
            self._in_flight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self._in_flight -= 1

    def close_connections(self) -> None:
        """Wake handler threads blocked on idle keep-alive sockets so nothing outlives stop()."""
        self.connections.close_all()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that vanishes is normal; anything else is a bug worth a traceback."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError | ValueError) or self.stopping.is_set():
            return
        traceback.print_exc()


class SandboxHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT
    server: SandboxHTTPServer

    def setup(self) -> None:
        super().setup()
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.connections.remove(self.connection)

    def _phase(self, phase: int) -> None:
        self.server.connections.phase(self.connection, phase)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the one-line-per-request log is `_log`, and only with --verbose."""

    def handle_one_request(self) -> None:
        """Like the stdlib's, but every method reaches `_route` and a vanished client is quiet."""
        self._linger = False
        self._number: int | None = None
        try:
            self._phase(IDLE)
            if not cast(BufferedReader, self.rfile).peek(1):  # idle until a first byte, or EOF
                self.close_connection = True
                return
            self._phase(READING)  # from here the request has READ_DEADLINE to arrive whole
            self.raw_requestline = self.rfile.readline(65537)
            if len(self.raw_requestline) > 65536:
                self.requestline = self.request_version = self.command = ""
                self.send_error(HTTPStatus.REQUEST_URI_TOO_LONG)
                return
            if not self.raw_requestline:
                self.close_connection = True
                return
            if not self.parse_request():
                return
            if self.connection not in self.server.connections:
                self.close_connection = True  # shed or past its deadline: the head is cut off
                return
            if self.request_version == "HTTP/0.9":  # no client speaks it; a scanner might
                self.send_error(HTTPStatus.BAD_REQUEST)
                return
            self._started = time.perf_counter()
            self._received_at = now_iso()
            try:
                self._route()
            except BadFraming:
                self.send_error(HTTPStatus.BAD_REQUEST)
            if not self.wfile.closed:
                self.wfile.flush()
            if self._linger:
                self._linger_close()
        except (OSError, ValueError):  # reset, timeout, or I/O on a socket we closed
            self.close_connection = True

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Protocol-level garbage gets a JSON answer too, then the connection is closed."""
        self.close_connection = True
        self.request_version = self.protocol_version  # answer garbage with a full status line
        trace_id = str(uuid.uuid4())
        self._answer(code, {"error": HTTPStatus(code).phrase.lower(), "trace_id": trace_id})

    # -- routing ---------------------------------------------------------------------------

    def _route(self) -> None:
        if urlsplit(self.path).path != PATH:
            self._refuse(404, ERR_NOT_FOUND)
            return
        if self.command != "POST":
            self._refuse(405, ERR_METHOD, headers={"Allow": "POST"})
            return
        if not self._authorized():
            self._refuse(401, ERR_UNAUTHORIZED, trace=False)
            return
        self._number = self.server.next_number()
        faults = self.server.faults
        decision = faults.decide(self._number)
        if decision.revoked:
            self._refuse(401, ERR_UNAUTHORIZED, trace=False, fault="revoked", faults=faults)
            return
        if not self.server.admit(faults):
            self._refuse(503, ERR_UNAVAILABLE, fault="capacity", faults=faults)
            return
        try:
            self._admitted(faults, decision)
        finally:
            self.server.leave()

    def _admitted(self, faults: Faults, decision: Decision) -> None:
        body = self._read_body(faults.max_body_bytes)
        size = body.size
        if body.data is None:
            fault = "max_body_bytes" if size <= MAX_BODY_BYTES else None
            self._refuse(413, ERR_TOO_LARGE, fault=fault, faults=faults, size=size)
            return
        if decision.fail:
            self._refuse(
                faults.fail_status,
                faults.fail_message(),
                headers=faults.fail_headers(),
                fault="fail",
                faults=faults,
                size=size,
            )
            return
        self._serve(body.data, faults, decision)

    def _authorized(self) -> bool:
        """All five 401 causes of the contract collapse into this one comparison."""
        authorization = self.headers.get("Authorization") or ""
        if not authorization.startswith("Bearer "):
            return False
        key = authorization[len("Bearer ") :]
        customer = self.headers.get("x-customer-id")
        return key == self.server.api_key and customer == self.server.customer_id

    def _serve(self, body: bytes, faults: Faults, decision: Decision) -> None:
        trace_id = str(uuid.uuid4())
        if decision.reset and not faults.reset_after_store:
            self._record(RequestRecord(trace_id, 0, len(body), 0.0, "", fault="reset"))
            self._delay(faults.latency)
            self._reset()
            return
        status, payload, record, batch = judge(
            body,
            self.headers.get("Content-Type"),
            trace_id,
            faults,
            self._received_at if self.server.storing else None,
        )
        if decision.reset:
            record.status, record.fault = 0, "reset_after_store"
        elif decision.hang:
            record.fault = "hang"
        self._record(record, batch)
        if decision.reset:
            self._delay(faults.latency)
            self._reset()
            return
        if decision.hang and self._delay(faults.hang_seconds):
            self._reset()  # stopping: the answer was never going to arrive in time anyway
            return
        self._delay(faults.latency)
        self._answer(status, payload)

    def _refuse(
        self,
        status: int,
        message: str,
        *,
        trace: bool = True,
        headers: dict[str, str] | None = None,
        fault: str | None = None,
        faults: Faults | None = None,
        size: int | None = None,
    ) -> None:
        """Answer without looking at the body, after discarding it to keep the connection."""
        if size is None:
            size = self._read_body(-1).size
        trace_id = str(uuid.uuid4()) if trace else None
        payload: dict[str, Any] = {"error": message}
        if trace_id is not None:
            payload["trace_id"] = trace_id
        self._record(RequestRecord(trace_id, status, size, 0.0, "", fault=fault))
        if faults is not None:
            self._delay(faults.latency)
        self._answer(status, payload, headers)

    # -- answering -------------------------------------------------------------------------

    def _answer(
        self, status: int, payload: dict[str, Any], headers: dict[str, str] | None = None
    ) -> None:
        self._phase(BUSY)
        body = orjson.dumps(payload)
        self.send_response_only(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        trace_id = payload.get("trace_id")
        if trace_id:
            self.send_header("x-trace-id", trace_id)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if self.close_connection:
            self.send_header("Connection", "close")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _read_body(self, limit: int) -> Body:
        body = read_body(self.rfile, self.headers, limit)
        self._phase(BUSY)  # read whole: working on it, fault delays included, is never shed
        if body.undrained:
            self.close_connection = self._linger = True
        return body

    def _delay(self, seconds: float) -> bool:
        """Sleep that stop() interrupts; True when the server is stopping."""
        if seconds <= 0:
            return self.server.stopping.is_set()
        return self.server.stopping.wait(seconds)

    def _reset(self) -> None:
        """Close with SO_LINGER 0: the kernel sends RST, the client sees a connection error."""
        self.close_connection = True
        sock = self.connection
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.rfile.close()
        self.wfile.close()  # the file objects hold the descriptor open until they close too
        sock.close()

    def _linger_close(self) -> None:
        """After answering an undrained body, read a little more so our answer is not reset."""
        sock = self.connection
        sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + LINGER_SECONDS
        while (left := deadline - time.monotonic()) > 0:
            sock.settimeout(left)
            if not sock.recv(1 << 16):
                break

    def _record(self, record: RequestRecord, batch: Batch | None = None) -> None:
        record.duration_ms = round((time.perf_counter() - self._started) * 1000, 3)
        record.received_at = self._received_at
        self.server.counters.add(record)
        self.server.store.record(record, batch)
        if self.server.log is not None:
            self._log(record)

    def _log(self, record: RequestRecord) -> None:
        number = f"#{self._number}" if self._number is not None else "-"
        parts = [
            record.received_at,
            number,
            self.command,
            self.path,
            str(record.status),
            f"users={record.users_accepted}/{record.users_rejected}",
            f"events={record.events_accepted}",
            f"{record.duration_ms:.1f}ms",
            record.trace_id or "-",
        ]
        if record.fault:
            parts.append(f"fault={record.fault}")
        print(" ".join(parts), file=self.server.log, flush=True)
