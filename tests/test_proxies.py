"""Where the key travels: no proxy variable is honoured for a loopback base URL (the key
would go to the proxy in clear), the standard ones for https. Through the real CLI, with the
proxy variables pointing at a port that counts the connections it gets."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import base_env, cli_json, event, seqs, write_ndjson

from revbridge_cli.delivery.http_client import loopback_base_url, open_client
from revbridge_cli.sandbox import Sandbox

PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                   "all_proxy")  # fmt: skip


class ConnectionCounter:
    """A listening port that accepts, counts and closes: a proxy that never forwards."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def proxy() -> Iterator[ConnectionCounter]:
    counter = ConnectionCounter()
    yield counter
    counter.close()


def test_a_loopback_base_url_ignores_every_proxy_variable(
    tmp_path: Path, sandbox: Sandbox, proxy: ConnectionCounter
) -> None:
    url = f"http://127.0.0.1:{proxy.port}"
    env = base_env(sandbox, **dict.fromkeys(PROXY_VARIABLES, url))
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    data = write_ndjson(tmp_path / "e.ndjson", [event(f"u{i}", i) for i in range(20)])
    result, summary = cli_json("send", str(data), "--max-retries", "0", env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert proxy.connections == 0
    assert seqs(sandbox) == list(range(20))
    assert summary["records_read"] == summary["events_accepted"] == 20


@pytest.mark.parametrize(
    ("url", "loopback"),
    [
        ("http://127.0.0.1:8787", True),
        ("http://127.5.6.7:1", True),
        ("https://localhost:8443", True),
        ("http://[::1]:8787", True),
        ("https://api.revbridge.ai", False),
        ("https://api-dev.revbridge.ai", False),
    ],
)
def test_only_an_https_base_url_away_from_loopback_trusts_the_environment(
    url: str, loopback: bool
) -> None:
    assert loopback_base_url(url) is loopback
    client = open_client(url, 4, 30.0)
    assert client.trust_env is not loopback


@pytest.mark.e2e
def test_an_https_base_url_goes_through_the_standard_proxy_variable(
    tmp_path: Path, proxy: ConnectionCounter
) -> None:
    """HTTPS_PROXY applies to https://: the request is tunnelled (CONNECT), so the key stays
    inside TLS. The counting proxy hangs up, so nothing leaves the machine."""
    env = base_env(
        None,
        REVBRIDGE_BASE_URL="https://api.revbridge.ai",
        REVBRIDGE_API_KEY="rbk_test_proxy_000000",
        REVBRIDGE_CUSTOMER_ID="c",
        HTTPS_PROXY=f"http://127.0.0.1:{proxy.port}",
    )
    for name in ("NO_PROXY", "no_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
        env.pop(name, None)
    data = write_ndjson(tmp_path / "e.ndjson", [event("u1", 1)])
    result, summary = cli_json(
        "send", str(data), "--max-retries", "0", "--rejected", str(tmp_path / "r.ndjson"),
        env=env, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 69, result.stderr  # the proxy never answers: unreachable
    assert proxy.connections == 1
    assert summary["records_read"] == 1 and summary["events_accepted"] == 0
    assert summary["rejected_rows"] == 1
