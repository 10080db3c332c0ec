"""The key, echoed back: a server that quotes the request's headers in its answer (a debugging
proxy, a wrong --base-url) must not get the key into any output, and its words reach the user
on one line with no control byte (issue 24).

Through the real CLI against a real server on 127.0.0.1 (`odd_server`), with the known test
key; every output is read back whole: stdout, stderr, the rejected file, the log file and the
state file's SQLite bytes (with its WAL, if any). The books balance after every one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from books import assert_books_balance
from conftest import base_env, cli, cli_json, event, write_ndjson
from odd_server import API_KEY, OddServer, http_response
from test_operator import pty_run

from revbridge_cli.text import REDACTED

pytestmark = pytest.mark.e2e

USERS = 3
# Enough of the key to be of use to someone (its first dozen characters): none may show.
KEY_PARTS = (API_KEY, API_KEY[:12], API_KEY[-12:])


def quoting(status: int, body: Callable[[str], Any], **headers: str) -> OddServer:
    """A server answering `status` with `body(the request's head, as text)`."""
    server: OddServer

    def answer(n: int, request: bytes) -> bytes:
        head = server.heads[-1].decode("latin-1")
        return http_response(status, body(head), headers)

    server = OddServer(answer)
    return server


def _202_message(head: str) -> dict[str, Any]:
    return {
        "trace_id": f"t-{head}",
        "users_accepted": USERS - 1,
        "users_rejected": 1,
        "errors": [{"userIndex": 1, "message": f"refused; your request was {head}"}],
    }


def _unmappable(head: str) -> dict[str, Any]:
    return {"users_accepted": 0, "users_rejected": USERS, "errors": f"see {head}"}


def _not_json(head: str) -> bytes:
    """The key placed across the 300th character, where a message cuts the server's words."""
    pad = 290 - head.index(API_KEY)
    return ("x" * max(pad, 0) + head).encode("latin-1")


ECHOES: dict[str, tuple[int, Callable[[str], Any]]] = {
    "202 errors message": (202, _202_message),
    "202 unmappable": (202, _unmappable),
    "202 not json, key across the cut": (202, _not_json),
    "400 error": (400, lambda head: {"error": f"bad request {head}"}),
    "400 errors": (
        400,
        lambda head: {
            "error": head,
            "errors": [{"userIndex": i, "message": head} for i in (0, 1, 2)],
        },
    ),
    "501 error": (501, lambda head: {"error": f"not implemented: {head}"}),
}


def outputs(tmp_path: Path, result: Any) -> dict[str, str]:
    """Every output of the run, as text (the state's bytes decoded loosely)."""
    found = {"stdout": result.stdout, "stderr": result.stderr}
    for path in tmp_path.iterdir():
        if path.name.startswith(("rejected", "run.log", "run.state")):
            found[path.name] = path.read_bytes().decode("latin-1")
    return found


def assert_no_key(found: dict[str, str]) -> None:
    for name, text in found.items():
        for part in KEY_PARTS:
            assert part not in text, f"{part!r} in {name}: {text[:2000]}"
        if not name.startswith("run.state"):  # SQLite's own bytes are binary
            assert "\x1b" not in text, f"a control byte in {name}"


@pytest.mark.parametrize("kind", ECHOES.values(), ids=ECHOES.keys())
def test_a_server_quoting_the_key_gets_it_into_no_output(
    tmp_path: Path, kind: tuple[int, Callable[[str], Any]]
) -> None:
    status, body = kind
    data = write_ndjson(tmp_path / "e.ndjson", [event(f"u{i}", i) for i in range(USERS)])
    rejected = tmp_path / "rejected.ndjson"
    with quoting(status, body, **{"x-trace-id": "Bearer " + API_KEY}) as server:
        result, summary = cli_json(
            "send", str(data), "--rejected", str(rejected), "--log-file",
            str(tmp_path / "run.log"), "--state", str(tmp_path / "run.state"),
            "--max-retries", "0", "--concurrency", "1",
            env=base_env(None, **server.env()), cwd=tmp_path,
        )  # fmt: skip
        assert API_KEY in server.heads[0].decode()  # the server did have it to quote
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert summary["unaccounted_events"] == 0, summary
    assert_books_balance(summary, rejected)
    found = outputs(tmp_path, result)
    assert {"rejected.ndjson", "run.log", "run.state"} <= set(found)
    assert_no_key(found)
    assert REDACTED in found["rejected.ndjson"]  # the echo was there, and went out redacted


def test_a_servers_words_reach_stderr_and_json_on_one_line(tmp_path: Path) -> None:
    words = "bad request\nsecond line\r\x1b[2J\x00\u2028end"
    data = write_ndjson(tmp_path / "e.ndjson", [event(f"u{i}", i) for i in range(USERS)])
    rejected = tmp_path / "rejected.ndjson"
    with quoting(501, lambda head: {"error": words}) as server:
        result, summary = cli_json(
            "send", str(data), "--rejected", str(rejected), "--max-retries", "0",
            env=base_env(None, **server.env()), cwd=tmp_path,
        )  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert summary["unaccounted_events"] == 0
    assert_books_balance(summary, rejected)
    escaped = "bad request\\nsecond line\\r\\x1b[2J\\x00\\u2028end"
    assert escaped in result.stderr
    assert not any(c in result.stderr for c in "\r\x1b\x00\u2028")
    texts = [summary["fatal"] or "", *summary["examples"], *summary["reasons"]]
    assert any(escaped in t for t in texts), texts
    for row in orjson.loads(b"[" + b",".join(rejected.read_bytes().splitlines()) + b"]"):
        assert row["message"].isprintable(), row["message"]


@pytest.mark.parametrize(
    ("status", "body", "code"),
    [
        (401, lambda head: {"error": f"unauthorized: {head}"}, 3),
        (400, lambda head: {"error": head}, 2),
        (200, lambda head: head.encode("latin-1"), 2),
    ],
    ids=["401", "400 other error", "200 not json"],
)
def test_check_repeats_no_key(
    tmp_path: Path, status: int, body: Callable[[str], Any], code: int
) -> None:
    with quoting(status, body) as server:
        env = base_env(None, **server.env())
        text = cli("check", env=env, cwd=tmp_path)
        as_json = cli("check", "--json", env=env, cwd=tmp_path)
    assert text.returncode == as_json.returncode == code, text.stderr
    assert_no_key(outputs(tmp_path, text) | {"json": as_json.stdout, "err": as_json.stderr})
    assert len(text.stderr.splitlines()) == 1, text.stderr


def test_on_a_terminal_the_live_display_and_table_repeat_no_key(tmp_path: Path) -> None:
    data = write_ndjson(tmp_path / "e.ndjson", [event(f"u{i}", i) for i in range(USERS)])
    status, body = ECHOES["202 errors message"]
    with quoting(status, body, **{"x-trace-id": "Bearer " + API_KEY}) as server:
        env = base_env(None, TERM="xterm-256color", **server.env())
        output, code = pty_run(
            ["send", str(data), "--rejected", str(tmp_path / "rejected.ndjson")], env, tmp_path
        )
    assert code == 1, output
    assert "refused; your request was" in output  # the table's example, redacted
    for part in KEY_PARTS:
        assert part not in output, output
