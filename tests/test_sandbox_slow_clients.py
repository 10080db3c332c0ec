"""Slow and idle clients cannot stop the sandbox answering, or stopping: a request must
arrive whole within the read deadline, and past the connection cap a new connection sheds
the one that has waited longest on its client."""

from __future__ import annotations

import contextlib
import signal
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sandbox_helpers import VENDOR_REQUEST, auth_headers, post
from test_sandbox_cli import running

from revbridge_cli.sandbox import Sandbox, server

pytestmark = pytest.mark.e2e  # real sockets, a real sandbox

PARTIAL_HEAD = b"POST /ingest/events HTTP/1.1\r\nHost: x\r\n"


@contextlib.contextmanager
def slow_clients(port: int, n: int, every: float = 0.2) -> Iterator[list[socket.socket]]:
    """`n` connections that each start a request and then trickle a header byte at a time."""
    socks: list[socket.socket] = []
    stop = threading.Event()
    for _ in range(n):
        sock = socket.create_connection(("127.0.0.1", port), timeout=30)
        with contextlib.suppress(OSError):
            sock.sendall(PARTIAL_HEAD)
        socks.append(sock)

    def trickle() -> None:
        while not stop.wait(every):
            for sock in socks:
                with contextlib.suppress(OSError):
                    sock.send(b"X")

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    try:
        yield socks
    finally:
        stop.set()
        thread.join()
        for sock in socks:
            sock.close()


def closed_by_peer(sock: socket.socket) -> bool:
    """Wait (up to the socket's timeout) for the server to hang up."""
    try:
        while sock.recv(65536):
            pass
    except ConnectionResetError:
        return True
    except TimeoutError:
        return False
    return True


def test_a_request_trickled_past_the_read_deadline_is_cut_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "READ_DEADLINE", 0.5)
    with Sandbox(api_key="k", customer_id="c") as sb:
        with slow_clients(sb.port, 1, every=0.05) as (sock,):
            assert closed_by_peer(sock)  # a byte every 50 ms never trips a per-read timeout
        with httpx.Client(base_url=sb.url) as client:
            assert post(client, VENDOR_REQUEST, headers=auth_headers("k", "c")).status_code == 202


def test_past_the_cap_idle_and_slow_connections_are_shed_for_new_ones(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(server, "MAX_CONNECTIONS", 8)
    with Sandbox(api_key="k", customer_id="c") as sb:
        idle = [socket.create_connection(("127.0.0.1", sb.port), timeout=30) for _ in range(8)]
        # The idle ones are the longest waiting only once the server has admitted them all
        # (its accept loop may lag on a loaded machine): wait for that, not a while.
        held = sb._server.connections  # type: ignore[union-attr]
        while len(held) < 8:
            time.sleep(0.005)
        with slow_clients(sb.port, 8):
            with httpx.Client(base_url=sb.url) as client:
                answer = post(client, VENDOR_REQUEST, headers=auth_headers("k", "c"))
                assert answer.status_code == 202
            assert all(closed_by_peer(sock) for sock in idle)  # the longest waiting went first
        for sock in idle:
            sock.close()
        assert sb.stats()["users_accepted"] == 1


@pytest.mark.timeout(600)
def test_sigterm_ends_it_while_thousands_of_slow_clients_hold_connections(
    tmp_path: Path,
) -> None:
    """3,000 clients trickling their headers (10,000 held 9,000 threads and kept a real
    request unanswered for 30 s): the sandbox still answers, keeps its threads near the cap,
    and SIGTERM ends it (waited on, not timed)."""
    with running("--api-key", "k", "--customer-id", "c") as (process, env):
        port = int(env["REVBRIDGE_BASE_URL"].rsplit(":", 1)[1])
        with slow_clients(port, 3000, every=0.5):
            with httpx.Client(base_url=env["REVBRIDGE_BASE_URL"], timeout=120) as client:
                answer = post(client, VENDOR_REQUEST, headers=auth_headers("k", "c"))
                assert answer.status_code == 202
            status = Path(f"/proc/{process.pid}/status")
            if status.exists():
                threads = int(status.read_text().split("Threads:")[1].split()[0])
                assert threads < server.MAX_CONNECTIONS + 50
            process.send_signal(signal.SIGTERM)
            out, err = process.communicate()
    assert process.returncode == 0
    assert "Traceback" not in err
    assert "stopped: 1 requests, 1 users and 1 events accepted" in out
