"""The one HTTP client of a send, configured where the key's safety is decided.

The bearer key goes in every request, so what the environment may change about where the
requests travel is settled here, once. For a loopback base URL (the sandbox, a local tunnel)
no environment variable is honoured: an `HTTP_PROXY` or `ALL_PROXY` meant for the outside
world would otherwise receive the key in clear over plain HTTP. For an `https://` base URL the
standard variables apply (`HTTPS_PROXY`, `ALL_PROXY`, `NO_PROXY`, and `SSL_CERT_FILE` /
`SSL_CERT_DIR` for a corporate CA), as any HTTPS client honours them: through a proxy the
request is tunnelled, so the key stays inside TLS.

`SSL_CERT_FILE` / `SSL_CERT_DIR` are honoured for every base URL, loopback included (a local
TLS-terminating tunnel with its own CA): they only add trust, they send nothing elsewhere.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import httpx

from revbridge_cli.loopback import is_loopback


def loopback_base_url(base_url: str) -> bool:
    return is_loopback(urlsplit(base_url).hostname or "")


def open_client(base_url: str, concurrency: int, timeout: float) -> httpx.AsyncClient:
    """An async client with a connection per lane; `timeout` is also the sender's deadline
    for a whole exchange (`sender.Sender`), connect to last byte."""
    n = max(1, concurrency)
    return httpx.AsyncClient(
        timeout=httpx.Timeout(timeout),
        limits=httpx.Limits(max_connections=n, max_keepalive_connections=n),
        trust_env=not loopback_base_url(base_url),
        verify=httpx.create_ssl_context(trust_env=True),  # SSL_CERT_FILE / SSL_CERT_DIR
    )
