"""Permanent network failures stop at once, with the fix named (issue 24).

A host name that does not resolve, a certificate that does not verify, a TLS handshake that
cannot succeed: the first such answer stops the run (exit 2, the configuration's family, as a
wrong --base-url's 404 does) with one line naming what to check, where retrying used to wait
out the whole backoff. A temporary resolver failure (EAI_AGAIN) is still retried.

Through the real CLI: a `.invalid` host (RFC 6761: it never resolves) and a loopback HTTPS
server whose certificate comes from a CA made in the test (trustme), with and without
SSL_CERT_FILE pointing at that CA; nothing leaves loopback but the resolver's NXDOMAIN.
Pure tests of the classification and of the sender with a mock transport sit at the end.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import socketserver
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trustme
from books import assert_books_balance
from conftest import base_env, cli, cli_json, event, write_ndjson
from odd_server import API_KEY, CUSTOMER_ID, OddServer, http_response

from revbridge_cli.config.retry import RetryPolicy
from revbridge_cli.delivery.limit import AdaptiveLimit
from revbridge_cli.delivery.permanent import permanent_failure
from revbridge_cli.delivery.sender import Sender
from revbridge_cli.errors import ConfigError
from revbridge_cli.pack.batch import Batch, dumps

RECORDS = [event(f"u{i}", i) for i in range(40)]


def accepted(n: int, body: bytes) -> bytes:
    """The API's 202 for a body whose every user is accepted."""
    users = len(orjson.loads(body)["users"])
    return http_response(202, {"trace_id": "t-tls", "users_accepted": users, "errors": []})


def clean_env(**extra: str) -> dict[str, str]:
    env = base_env(None, REVBRIDGE_API_KEY=API_KEY, REVBRIDGE_CUSTOMER_ID=CUSTOMER_ID, **extra)
    if "SSL_CERT_FILE" not in extra:
        env.pop("SSL_CERT_FILE", None)
    env.pop("SSL_CERT_DIR", None)
    return env


def send(tmp_path: Path, env: dict[str, str], *args: str) -> tuple[Any, dict[str, Any], Path]:
    data = write_ndjson(tmp_path / "e.ndjson", RECORDS)
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json(
        "send", str(data), "--rejected", str(rejected), "--max-users", "5", *args,
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result, summary, rejected


def fatal_lines(stderr: str, summary: dict[str, Any]) -> list[str]:
    """The summary's line for what stopped the run (as for a wrong key), and it is `fatal`."""
    lines = [line for line in stderr.splitlines() if line == f"warning: {summary['fatal']}"]
    assert len(lines) == 1, stderr
    return lines


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(ca: trustme.CA) -> Iterator[OddServer]:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    with OddServer(accepted, tls=context) as server:
        yield server


class _PlainHTTP(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        self.request.recv(4096)
        self.request.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")


@contextlib.contextmanager
def plain_http_server() -> Iterator[int]:
    with socketserver.ThreadingTCPServer(("127.0.0.1", 0), _PlainHTTP) as server:
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        try:
            yield server.server_address[1]
        finally:
            server.shutdown()
            thread.join()


# ---- through the real CLI -------------------------------------------------------------------


@pytest.mark.e2e
def test_a_host_that_does_not_resolve_stops_at_the_first_request(tmp_path: Path) -> None:
    env = clean_env(REVBRIDGE_BASE_URL="https://api.revbridge.invalid")
    result, summary, rejected = send(tmp_path, env)
    assert result.returncode == 2, result.stderr
    assert summary["exit_code"] == 2
    assert (summary["requests"], summary["retries"]) == (1, 0)  # no backoff at all
    (line,) = fatal_lines(result.stderr, summary)
    assert "api.revbridge.invalid" in line and "does not resolve" in line
    assert "check --base-url" in line
    assert summary["unaccounted_events"] == 0, summary
    rows = assert_books_balance(summary, rejected)
    assert rows and all(r["kind"] == "undelivered" for r in rows)
    assert all("does not resolve" in r["message"] for r in rows)


@pytest.mark.e2e
def test_a_certificate_that_does_not_verify_stops_and_names_ssl_cert_file(
    tmp_path: Path, tls_server: OddServer
) -> None:
    result, summary, rejected = send(tmp_path, clean_env(REVBRIDGE_BASE_URL=tls_server.url))
    assert result.returncode == 2, result.stderr
    assert (summary["requests"], summary["retries"]) == (1, 0)
    (line,) = fatal_lines(result.stderr, summary)
    assert "certificate of 127.0.0.1 could not be verified" in line
    assert "SSL_CERT_FILE" in line
    assert tls_server.bodies == []  # the key never went over an unverified connection
    assert summary["unaccounted_events"] == 0, summary
    assert_books_balance(summary, rejected)


@pytest.mark.e2e
def test_ssl_cert_file_naming_the_ca_makes_the_same_server_work(
    tmp_path: Path, ca: trustme.CA, tls_server: OddServer
) -> None:
    bundle = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    env = clean_env(REVBRIDGE_BASE_URL=tls_server.url, SSL_CERT_FILE=str(bundle))
    result, summary, rejected = send(tmp_path, env, "--max-users", "40")
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == len(RECORDS)
    assert len(tls_server.bodies) == summary["requests"] >= 1
    assert summary["unaccounted_events"] == 0
    assert_books_balance(summary, rejected)
    check = cli("check", env=env, cwd=tmp_path)  # check trusts the same bundle
    assert "could not be verified" not in check.stderr


@pytest.mark.e2e
def test_https_to_a_plain_http_server_stops_at_the_handshake(tmp_path: Path) -> None:
    with plain_http_server() as port:  # answers a TLS hello as any HTTP server does: 400
        url = f"https://127.0.0.1:{port}"
        result, summary, rejected = send(tmp_path, clean_env(REVBRIDGE_BASE_URL=url))
    assert result.returncode == 2, result.stderr
    assert (summary["requests"], summary["retries"]) == (1, 0)
    (line,) = fatal_lines(result.stderr, summary)
    assert "TLS handshake with 127.0.0.1 failed" in line and "check --base-url" in line
    assert summary["unaccounted_events"] == 0
    assert_books_balance(summary, rejected)


@pytest.mark.e2e
def test_check_names_the_fix_for_a_name_and_a_certificate(
    tmp_path: Path, tls_server: OddServer
) -> None:
    name = cli("check", env=clean_env(REVBRIDGE_BASE_URL="https://x.invalid"), cwd=tmp_path)
    cert = cli("check", env=clean_env(REVBRIDGE_BASE_URL=tls_server.url), cwd=tmp_path)
    assert name.returncode == cert.returncode == 2
    assert "does not resolve" in name.stderr and "check --base-url" in name.stderr
    assert "SSL_CERT_FILE" in cert.stderr
    assert len(name.stderr.splitlines()) == len(cert.stderr.splitlines()) == 1


# ---- pure: the classification, and the sender's stop -----------------------------------------


def wrapped(cause: BaseException) -> httpx.ConnectError:
    """As httpx raises it: its ConnectError from httpcore's, from the socket's or ssl's."""
    try:
        try:
            raise cause
        except BaseException as inner:
            raise httpx.ConnectError(str(inner)) from inner
    except httpx.ConnectError as outer:
        return outer


URL = "https://api.example.test/ingest/events"


def test_a_name_that_does_not_exist_is_permanent_a_resolver_that_did_not_answer_is_not() -> None:
    nxdomain = wrapped(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))
    again = wrapped(socket.gaierror(socket.EAI_AGAIN, "Temporary failure in name resolution"))
    assert "api.example.test of the base URL does not resolve" in (
        permanent_failure(nxdomain, URL) or ""
    )
    assert permanent_failure(again, URL) is None
    assert permanent_failure(wrapped(ConnectionRefusedError(111, "refused")), URL) is None


def test_tls_failures_that_no_retry_mends_and_one_that_may_pass() -> None:
    verify = ssl.SSLCertVerificationError(1, "certificate verify failed")
    verify.verify_message = "self-signed certificate"
    assert "SSL_CERT_FILE" in (permanent_failure(wrapped(verify), URL) or "")
    handshake = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    assert "TLS handshake" in (permanent_failure(wrapped(handshake), URL) or "")
    eof = ssl.SSLEOFError(8, "EOF occurred in violation of protocol")
    assert permanent_failure(wrapped(eof), URL) is None


def test_the_sender_stops_every_lane_at_the_first_permanent_failure() -> None:
    calls: list[int] = []

    def handler(request: httpx.Request) -> httpx.Response:
        calls.append(1)
        raise wrapped(socket.gaierror(socket.EAI_NONAME, "Name or service not known"))

    async def go() -> Any:
        client = httpx.AsyncClient(transport=httpx.MockTransport(handler))
        sender = Sender(
            client, "https://api.example.test", {}, RetryPolicy(8, initial_delay=60.0),
            AdaptiveLimit(1),
        )  # fmt: skip
        batch = Batch.of(1, 0, [(dumps({"identifiers": {"user_id": "a"}, "events": []}), 1, [])])
        first = await sender.send(batch)
        second = await sender.send(batch)
        await client.aclose()
        return sender, first, second

    sender, (first,), (second,) = asyncio.run(go())
    assert len(calls) == 1  # no retry, and no request for the next batch
    assert sender.fatal is not None and sender.fatal.family is ConfigError
    assert first.undelivered is not None and "does not resolve" in first.undelivered
    assert second.undelivered is not None and second.undelivered.startswith("not sent:")
