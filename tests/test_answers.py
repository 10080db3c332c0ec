"""Answers the API never gives, through the real CLI against a real (misbehaving) server on
127.0.0.1: none may read as "accepted", none may kill a lane, and the books balance."""

from __future__ import annotations

import contextlib
import gzip
import socket
import threading
from pathlib import Path
from typing import Any

import orjson
import pytest
from books import assert_books_balance
from conftest import base_env, cli_json, event, write_ndjson
from odd_server import OddServer, http_response

pytestmark = pytest.mark.e2e  # every test runs the real command against a real server

TRACE = "t-odd-1"
USERS = 3


def send_to(server: OddServer, tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any], Path]:
    data = write_ndjson(tmp_path / "e.ndjson", [event(f"u{i}", i) for i in range(USERS)])
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json(
        "send", str(data), "--rejected", str(rejected), "--max-retries", "1",
        "--retry-initial-delay", "0.01", "--concurrency", "1", *args,
        env=base_env(None, **server.env()), cwd=tmp_path,
    )  # fmt: skip
    assert "Traceback" not in result.stderr, result.stderr
    return result, summary, rejected


def answers_with(status: int, body: bytes | dict[str, Any], **headers: str) -> OddServer:
    return OddServer(
        lambda n, request: http_response(status, body, {"x-trace-id": TRACE, **headers})
    )


def counts(errors: Any, **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"trace_id": TRACE, "users_accepted": 2, "users_rejected": 1}
    if errors is not ...:
        body["errors"] = errors
    return {**body, **extra}


UNMAPPABLE_202 = {
    "errors missing": counts(...),
    "errors empty": counts([]),
    "errors not a list": counts({"userIndex": 1, "message": "bad"}),
    "item not an object": counts(["user 1 is bad"]),
    "index out of range": counts([{"userIndex": 3, "message": "bad"}]),
    "index negative": counts([{"userIndex": -1, "message": "bad"}]),
    "index a string": counts([{"userIndex": "1", "message": "bad"}]),
    "index true": counts([{"userIndex": True, "message": "bad"}]),
    "index a float": counts([{"userIndex": 1.0, "message": "bad"}]),
    "index twice": counts(
        [{"userIndex": 1, "message": "bad"}, {"userIndex": 1, "message": "bad"}],
        users_accepted=1,
        users_rejected=2,
    ),
    "fewer than counted": counts([{"userIndex": 1, "message": "bad"}], users_rejected=2),
    "body not JSON": b"<html>accepted</html>",
}


@pytest.mark.parametrize("body", UNMAPPABLE_202.values(), ids=UNMAPPABLE_202.keys())
def test_a_202_that_cannot_be_mapped_keeps_the_unnamed_users_as_rejected(
    tmp_path: Path, body: bytes | dict[str, Any]
) -> None:
    with answers_with(202, body) as server:
        result, summary, rejected = send_to(server, tmp_path)
    assert result.returncode == 1, result.stderr
    assert summary["events_accepted"] == 0  # not one of them reads as accepted
    rows = assert_books_balance(summary, rejected)
    assert len(rows) == USERS
    assert {row["kind"] for row in rows} == {"rejected"}
    assert {row["trace_id"] for row in rows} == {TRACE}
    unnamed = [row for row in rows if row["message"] != "bad"]
    assert unnamed
    for row in unnamed:
        assert row["message"].startswith("the server's answer could not be mapped to users")
        assert "the server said" in row["message"]
        assert "check before resending" in row["message"]
    assert len(server.bodies) == 1  # a 202 is never resent


def test_a_202_naming_its_rejections_is_taken_as_it_says(tmp_path: Path) -> None:
    body = counts([{"userIndex": 1, "message": "bad"}])
    with answers_with(202, body) as server:
        result, summary, rejected = send_to(server, tmp_path)
    assert result.returncode == 1
    rows = assert_books_balance(summary, rejected)
    assert [(row["userIndex"], row["message"]) for row in rows] == [(1, "bad")]
    assert summary["events_accepted"] == 2


def test_a_400_whose_errors_cannot_be_mapped_keeps_every_user_as_rejected(
    tmp_path: Path,
) -> None:
    body = {"error": "validation failed", "trace_id": TRACE, "errors": [{"userIndex": "x"}]}
    with answers_with(400, body) as server:
        result, summary, rejected = send_to(server, tmp_path)
    assert result.returncode == 1
    rows = assert_books_balance(summary, rejected)
    assert len(rows) == USERS and {row["kind"] for row in rows} == {"rejected"}
    assert all("nothing of the request was stored" in row["message"] for row in rows)
    assert all('"x"' in row["message"] for row in rows)  # the server's words


def test_a_202_with_a_broken_content_encoding_is_an_outcome_not_a_crash(
    tmp_path: Path,
) -> None:
    """httpx raises DecodingError, which is no TransportError: it used to kill the lane."""
    with answers_with(202, b"this is not gzip", **{"Content-Encoding": "gzip"}) as server:
        result, summary, rejected = send_to(server, tmp_path)
    assert result.returncode == 1
    rows = assert_books_balance(summary, rejected)
    assert len(rows) == USERS and {row["kind"] for row in rows} == {"rejected"}
    assert all("could not be decoded" in row["message"] for row in rows)


def test_a_503_with_a_broken_content_encoding_is_still_retried(tmp_path: Path) -> None:
    good = counts([], users_accepted=USERS, users_rejected=0)

    def answer(n: int, request: bytes) -> bytes:
        if n == 1:
            return http_response(503, b"garbage", {"Content-Encoding": "gzip"})
        return http_response(202, gzip.compress(orjson.dumps(good)), {"Content-Encoding": "gzip"})

    with OddServer(answer) as server:
        result, summary, rejected = send_to(server, tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == USERS and summary["retries"] == 1
    assert_books_balance(summary, rejected)


@pytest.mark.parametrize("status", [200, 201, 204])
def test_a_success_the_api_does_not_give_is_undelivered_and_may_have_been_stored(
    tmp_path: Path, status: int
) -> None:
    body: bytes | dict[str, Any] = b"" if status == 204 else {"ok": True}
    with answers_with(status, body) as server:
        result, summary, rejected = send_to(server, tmp_path)
    assert result.returncode == 1
    rows = assert_books_balance(summary, rejected)
    assert len(rows) == USERS and {row["kind"] for row in rows} == {"undelivered"}
    for row in rows:
        assert f"unexpected answer HTTP {status} (the API answers 202)" in row["message"]
        assert "may have been stored" in row["message"]
    assert len(server.bodies) == 1


@pytest.mark.parametrize("with_length", [True, False], ids=["content-length", "until-close"])
def test_an_answer_over_the_cap_is_not_read_whole(tmp_path: Path, with_length: bool) -> None:
    huge = b'{"trace_id": "' + b"x" * 3_000_000 + b'"}'
    with OddServer(
        lambda n, request: http_response(202, huge, length=with_length), close=not with_length
    ) as server:
        result, summary, rejected = send_to(server, tmp_path)
    assert result.returncode == 1
    rows = assert_books_balance(summary, rejected)
    assert len(rows) == USERS and {row["kind"] for row in rows} == {"undelivered"}
    for row in rows:
        assert "its body is over 1,000,000 bytes" in row["message"]
        assert "may have been stored" in row["message"]


TRICKLED_HEADERS = b"HTTP/1.1 202 Accepted\r\nX-Pad: " + b"a" * 10_000
TRICKLED_BODY = http_response(202, counts([], users_accepted=USERS, users_rejected=0))


@pytest.mark.parametrize("data", [TRICKLED_HEADERS, TRICKLED_BODY], ids=["headers", "body"])
def test_a_server_that_trickles_its_answer_meets_the_deadline(tmp_path: Path, data: bytes) -> None:
    """A byte every 20 ms never trips httpx's per-read timeout; `--timeout` bounds the whole
    exchange. No answer in time: in doubt, resent per policy, counted as possible duplicates."""
    with OddServer(lambda n, request: data, trickle=0.02) as server:
        result, summary, rejected = send_to(server, tmp_path, "--timeout", "0.5")
    assert result.returncode == 69, result.stderr  # the first request never answered: unreachable
    rows = assert_books_balance(summary, rejected)
    assert len(rows) == USERS and {row["kind"] for row in rows} == {"undelivered"}
    for row in rows:
        assert "gave up after 1 retry: no complete answer within --timeout 0.5 s" in row["message"]
        assert "it may have been stored" in row["message"]
    assert len(server.bodies) == 2  # the first try and its one retry
    assert summary["possible_duplicate_events"] == USERS


def test_a_deadline_before_the_body_was_written_is_not_in_doubt(tmp_path: Path) -> None:
    """A server that accepts and never reads: the body cannot be all written, so nothing
    can have been stored; the resend is no possible duplicate."""
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # no kernel-sized window
    listener.bind(("127.0.0.1", 0))
    listener.listen()
    held: list[socket.socket] = []

    def hold() -> None:
        with contextlib.suppress(OSError):  # the listener closed: done
            while True:
                held.append(listener.accept()[0])

    threading.Thread(target=hold, daemon=True).start()
    records = [event("u0", 0, pad="x" * 9_000_000)]  # one 9 MB request: past the send buffer
    data = write_ndjson(tmp_path / "e.ndjson", records)
    rejected = tmp_path / "rejected.ndjson"
    env = base_env(None, REVBRIDGE_BASE_URL=f"http://127.0.0.1:{listener.getsockname()[1]}",
                   REVBRIDGE_API_KEY="rbk_test_never_reads", REVBRIDGE_CUSTOMER_ID="c")  # fmt: skip
    result, summary = cli_json(
        "send", str(data), "--rejected", str(rejected), "--concurrency", "1",
        "--max-retries", "1", "--retry-initial-delay", "0.01", "--timeout", "0.5",
        env=env, cwd=tmp_path,
    )  # fmt: skip
    listener.close()
    for sock in held:
        sock.close()
    assert result.returncode == 69, result.stderr  # the first request never answered: unreachable
    assert len(held) == 2  # the first try and its retry
    rows = assert_books_balance(summary, rejected)
    assert rows and {row["kind"] for row in rows} == {"undelivered"}
    assert all("may have been stored" not in row["message"] for row in rows)
    assert summary["possible_duplicate_events"] == 0
