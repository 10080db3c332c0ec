"""Network failures no retry can mend, and the fix to name for each. Pure: no I/O.

A refused connection or a reset is weather: the retry policy waits and resends. A host name
that does not exist, a certificate that does not verify, a TLS handshake the server cannot
finish are not: the next attempt fails the same way, and backing off only turns a typo into
minutes of waiting (147 s for a name, 120 s for a certificate with the default policy). So
they stop the run at the first such answer, as a wrong key does, with one line saying what to
check. A temporary resolver failure (`EAI_AGAIN`: no DNS server answered) is weather.

httpx wraps the socket's or the ssl module's exception (`raise ... from`), so the cause is
found down the exception's chain.
"""

from __future__ import annotations

import socket
import ssl
from collections.abc import Iterator
from urllib.parse import urlsplit

# The resolver's "no such name" (NXDOMAIN) and "no address for it": authoritative answers.
_NO_SUCH_NAME = frozenset(
    code
    for code in (getattr(socket, "EAI_NONAME", None), getattr(socket, "EAI_NODATA", None))
    if code is not None
)
# A TLS alert or record the handshake cannot get past (the server speaks plain HTTP, or no
# protocol version or cipher the two share); an EOF mid-handshake is left to the retries.
_TRANSIENT_SSL = (ssl.SSLEOFError, ssl.SSLZeroReturnError, ssl.SSLWantReadError)

CA_HINT = "for a corporate CA or a proxy that inspects TLS, set SSL_CERT_FILE to its bundle"


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def permanent_failure(exc: BaseException, url: str) -> str | None:
    """Why no request to `url` can succeed, with the fix; None when a retry may help."""
    host = urlsplit(url).hostname or url
    for cause in _chain(exc):
        if isinstance(cause, socket.gaierror) and cause.errno in _NO_SUCH_NAME:
            return (
                f"the host {host} of the base URL does not resolve ({cause.strerror}): "
                "check --base-url (or REVBRIDGE_BASE_URL, or the profile's base_url)"
            )
        if isinstance(cause, ssl.SSLCertVerificationError):
            # Both set by the ssl module's C code only: the code to search for, and why.
            words = (getattr(cause, "reason", None), getattr(cause, "verify_message", None))
            why = ": ".join(w for w in words if w) or "certificate verify failed"
            return (
                f"the certificate of {host} could not be verified ({why}): {CA_HINT}; "
                "otherwise check --base-url"
            )
        if isinstance(cause, ssl.SSLError) and not isinstance(cause, _TRANSIENT_SSL):
            why = getattr(cause, "reason", None) or cause.strerror or type(cause).__name__
            return (
                f"the TLS handshake with {host} failed ({why}): check --base-url (an https:// "
                "URL to a server that speaks plain HTTP fails so)"
            )
    return None
