"""Shared fixtures: a real sandbox on 127.0.0.1 per test, and the real `revbridge` command.

`cli()` runs the installed entry point in a child process (`python -m revbridge_cli`), so
exit codes, signals, stdout/stderr and environment are exactly what a user or cron sees.

Markers: a test is `e2e` (a sandbox, a child process or a socket) or pure. A test that uses
the sandbox fixtures is marked here; others say `@pytest.mark.e2e` (or `pytestmark`). Pure
tests are checked to be pure: one that connects or binds a socket, or starts a process,
fails, so `pytest -m "not e2e"` stays the fast core it claims to be.
"""

from __future__ import annotations

import gzip
import os
import resource
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import sandbox_helpers

from revbridge_cli import Connection
from revbridge_cli.sandbox import Faults, Sandbox

API_KEY = sandbox_helpers.API_KEY
CUSTOMER_ID = sandbox_helpers.CUSTOMER_ID
E2E_FIXTURES = frozenset(("sandbox", "client"))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if E2E_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.e2e)


class NotPure(Exception):
    """Raised in a test without the e2e marker that reached for a socket or a process."""


@pytest.fixture(autouse=True)
def purity_guard(
    request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> Iterator[list[str]]:
    """Refuse sockets and child processes to tests not marked e2e, and fail such a test even
    if the code under test caught the refusal. Yields what was refused (tests/test_markers.py
    checks the guard with it)."""
    seen: list[str] = []
    if request.node.get_closest_marker("e2e") is not None:
        yield seen
        return

    def refuse(what: str) -> Any:
        def guard(*args: Any, **kwargs: Any) -> Any:
            seen.append(what)
            raise NotPure(f"{what} in a test not marked e2e: mark it @pytest.mark.e2e")

        return guard

    for name in ("connect", "connect_ex", "bind"):
        monkeypatch.setattr(socket.socket, name, refuse(f"socket.{name}"))
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse("a child process"))
    for name in ("fork", "forkpty", "posix_spawn", "posix_spawnp"):
        monkeypatch.setattr(os, name, refuse(f"os.{name}"))
    yield seen
    if seen:
        pytest.fail(f"not marked e2e, yet used {', '.join(sorted(set(seen)))}", pytrace=False)


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=sandbox.url, timeout=10) as c:
        yield c


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    """The one sandbox of the suite: a real server on 127.0.0.1 with the one test key, faults
    off until a test switches them on (seeded, so a rate is the same run to run)."""
    with Sandbox(api_key=API_KEY, customer_id=CUSTOMER_ID, faults=Faults(seed=1)) as sb:
        yield sb


def conn(sb: Sandbox) -> Connection:
    """The Python API's connection to a test sandbox."""
    return Connection(sb.url, api_key=sb.api_key, customer_id=sb.customer_id)


def base_env(sb: Sandbox | None = None, **extra: str) -> dict[str, str]:
    """A clean environment: no REVBRIDGE_* from the developer's shell, no colour, no config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVBRIDGE_")}
    env.pop("NO_COLOR", None)
    env["XDG_CONFIG_HOME"] = "/nonexistent-revbridge-test-config"
    env["COLUMNS"] = "120"
    if sb is not None:
        env.update(
            REVBRIDGE_BASE_URL=sb.url,
            REVBRIDGE_API_KEY=sb.api_key,
            REVBRIDGE_CUSTOMER_ID=sb.customer_id,
        )
    env.update(extra)
    return env


def cli(
    *args: str,
    sb: Sandbox | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    input: bytes | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run `revbridge ARGS` for real and wait for it; `input` may be any bytes (gzip too)."""
    done = subprocess.run(
        [sys.executable, "-m", "revbridge_cli", *args],
        cwd=cwd,
        env=env if env is not None else base_env(sb),
        input=input if input is not None else b"",
        capture_output=True,
        timeout=timeout,
    )
    return subprocess.CompletedProcess(
        done.args,
        done.returncode,
        done.stdout.decode("utf-8", "replace"),
        done.stderr.decode("utf-8", "replace"),
    )


def wait_for_requests(sb: Sandbox, n: int, proc: subprocess.Popen[Any]) -> None:
    """Until the sandbox has `n` requests or the run ended; no deadline of its own, since a
    loaded machine is slow, not wrong (pytest-timeout ends a run that truly hangs)."""
    while len(sb.requests()) < n:
        if proc.poll() is not None:
            raise AssertionError(f"the run ended before {n} requests: {proc.communicate()}")
        time.sleep(0.005)


STOPPING = "finishing requests in flight"  # what a run says once it has taken a first signal


def stderr_until(proc: subprocess.Popen[str], text: str) -> str:
    """The child's stderr up to and including the line holding `text`. A second signal sent
    after it cannot merge with the first in the kernel: the child has already handled one."""
    assert proc.stderr is not None
    seen: list[str] = []
    for line in proc.stderr:
        seen.append(line)
        if text in line:
            return "".join(seen)
    raise AssertionError(f"stderr ended without {text!r}: {''.join(seen)}")


def cli_json(*args: str, **kwargs: Any) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """`cli` with `--json`: the summary parsed from stdout."""
    result = cli(*args, "--json", **kwargs)
    try:
        summary = orjson.loads(result.stdout)
    except orjson.JSONDecodeError:
        raise AssertionError(f"no JSON summary; stderr:\n{result.stderr}") from None
    return result, summary


def write_ndjson(path: Path, records: list[Any], gz: bool = False) -> Path:
    data = b"".join(orjson.dumps(r) + b"\n" for r in records)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def read_ndjson(path: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines() if line.strip()]


def event(user: str, n: int, **extra: Any) -> dict[str, Any]:
    """A flat event that the API accepts; `seq` makes each one countable in the sandbox."""
    return {
        "user_id": user,
        "event_name": "purchase",
        "timestamp": "2026-01-15T14:30:00Z",
        "seq": n,
        **extra,
    }


def seqs(sb: Sandbox) -> list[int]:
    """The `seq` property of every stored event, sorted (duplicates stay visible)."""
    return sorted(e["properties"]["seq"] for e in sb.events())


def limited_file_size(limit: int) -> Any:
    """A `preexec_fn` giving the child a real OS file-size limit: writes past it fail with
    EFBIG, as on a full disk, instead of the default SIGXFSZ kill."""

    def preexec() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return preexec
