"""Which hosts are this machine: one rule for the client and the sandbox alike.

The client lets the API key travel over plain `http://` only to such a host, and the sandbox
warns when it is bound to any other, so the two must never disagree about what "loopback"
means. It is its own module because the sandbox may import from the rest of the package only
this and `contract.py` (tests/test_sandbox_cli.py checks it).
"""

from __future__ import annotations

import ipaddress


def is_loopback(host: str) -> bool:
    """`localhost` in any case, or an address in 127.0.0.0/8 or ::1 (no brackets)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
