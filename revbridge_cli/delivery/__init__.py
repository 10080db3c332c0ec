"""Delivery: request bodies -> the server, with retries, lanes and a concurrency limit.

httpx's package root imports its own command line (`httpx._main`: Click, Rich, Pygments)
whenever Click is installed, as Dask installs it. The library needs none of that, and
`import revbridge_cli` must not load the CLI's packages (tests/test_layers.py), so httpx is
first imported here with `httpx._main` marked absent: httpx then keeps the stub `main` it has
for a missing extra. The mark is removed at once, so `httpx._main` can still be imported on
purpose, and the `httpx` command runs in a process of its own.
"""

import sys

if "httpx" not in sys.modules:
    sys.modules["httpx._main"] = None  # type: ignore[assignment]
    try:
        import httpx  # noqa: F401
    finally:
        del sys.modules["httpx._main"]
