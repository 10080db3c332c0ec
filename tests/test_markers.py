"""The e2e/pure split holds: a test not marked e2e cannot reach a socket or a process.

These tests are pure themselves, so conftest's guard is active in them: they show it refuses
what would make `pytest -m "not e2e"` slow or dependent on the machine.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys

import httpx
import pytest
from conftest import NotPure


def test_a_pure_test_cannot_connect(purity_guard: list[str]) -> None:
    with pytest.raises(NotPure):
        socket.create_connection(("127.0.0.1", 9))
    with pytest.raises(NotPure), httpx.Client() as client:
        client.get("http://127.0.0.1:9/")
    assert purity_guard == ["socket.connect"] * 2
    purity_guard.clear()  # refused as it should be: the test itself passes


def test_a_pure_test_cannot_connect_from_asyncio(purity_guard: list[str]) -> None:
    async def connect() -> None:
        await asyncio.open_connection("127.0.0.1", 9)

    with pytest.raises(NotPure):
        asyncio.run(connect())
    assert purity_guard == ["socket.connect"]
    purity_guard.clear()


def test_a_pure_test_cannot_serve(purity_guard: list[str]) -> None:
    with socket.socket() as sock, pytest.raises(NotPure):
        sock.bind(("127.0.0.1", 0))
    assert purity_guard == ["socket.bind"]
    purity_guard.clear()


def test_a_pure_test_cannot_start_a_process(purity_guard: list[str]) -> None:
    with pytest.raises(NotPure):
        subprocess.run([sys.executable, "-c", "pass"], check=False)
    with pytest.raises(NotPure):
        os.fork()
    assert purity_guard == ["a child process", "os.fork"]
    purity_guard.clear()


@pytest.mark.e2e
def test_an_e2e_test_may(purity_guard: list[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
    assert subprocess.run([sys.executable, "-c", "pass"], check=False).returncode == 0
    assert purity_guard == []


def test_the_sandbox_fixtures_mark_a_test_e2e(request: pytest.FixtureRequest) -> None:
    assert request.node.get_closest_marker("e2e") is None  # this one uses none of them
    items = request.session.items
    marked = {item.name for item in items if item.get_closest_marker("e2e") is not None}
    users = {
        item.name
        for item in items
        if {"sandbox", "sb", "client"} & set(getattr(item, "fixturenames", ()))
    }
    assert users <= marked
