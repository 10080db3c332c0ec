"""`revbridge check` and `send --check-only` against the real sandbox: one harmless request."""

from __future__ import annotations

import socket
from pathlib import Path

import orjson
import pytest
from conftest import base_env, cli, cli_json, event, write_ndjson
from odd_server import API_KEY, OddServer, api_in_other_words, http_response

from revbridge_cli.sandbox import Sandbox


def test_a_good_key_passes_and_nothing_is_stored(sandbox: Sandbox) -> None:
    done, verdict = cli_json("check", sb=sandbox)
    assert done.returncode == 0, done.stderr
    assert verdict["ok"] is True and verdict["exit_code"] == 0 and verdict["schema_version"] == 1
    assert (verdict["status"], verdict["requests"]) == (400, 1)
    (request,) = sandbox.requests()
    assert verdict["trace_id"] == request["trace_id"]
    assert sandbox.events() == [] and sandbox.stats()["users_accepted"] == 0
    text = cli("check", sb=sandbox)
    assert text.returncode == 0 and "key, customer id and server are good" in text.stdout
    assert sandbox.api_key not in text.stdout + text.stderr


def test_a_wrong_key_or_customer_id_exits_3(sandbox: Sandbox) -> None:
    env = base_env(sandbox, REVBRIDGE_API_KEY="rbk_wrong_key_000000")
    done, verdict = cli_json("check", env=env)
    assert done.returncode == 3 and verdict["exit_code"] == 3 and verdict["status"] == 401
    assert "refused the credentials" in verdict["error"] and "revbridge: error:" in done.stderr
    done = cli("check", env=base_env(sandbox, REVBRIDGE_CUSTOMER_ID="cust_other"))
    assert done.returncode == 3 and "refused the credentials" in done.stderr
    assert "Traceback" not in done.stderr and "rbk_wrong_key_000000" not in done.stderr


def test_a_dead_port_exits_2_with_the_reason(sandbox: Sandbox) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = base_env(sandbox, REVBRIDGE_BASE_URL=f"http://127.0.0.1:{port}")
    done, verdict = cli_json("check", env=env)
    assert done.returncode == 2 and verdict["exit_code"] == 2
    assert f"cannot reach http://127.0.0.1:{port}/ingest/events" in done.stderr
    assert "Traceback" not in done.stderr


def test_missing_credentials_are_a_usage_error_before_any_request(sandbox: Sandbox) -> None:
    env = base_env(sandbox)
    del env["REVBRIDGE_API_KEY"]
    done, verdict = cli_json("check", env=env)
    assert done.returncode == 2 and "no API key" in verdict["error"]
    assert sandbox.requests() == []


def test_send_check_only_checks_inputs_and_credentials_and_reads_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", [event("u1", 1)])
    done = cli("send", "--check-only", str(data), sb=sandbox)
    assert done.returncode == 0, done.stderr
    assert len(sandbox.requests()) == 1 and sandbox.events() == []
    missing = cli("send", "--check-only", str(tmp_path / "nope.ndjson"), sb=sandbox)
    assert missing.returncode == 2 and "no such file" in missing.stderr
    assert len(sandbox.requests()) == 1  # refused before the request
    wrong = cli("send", "--check-only", str(data), "--api-key", "rbk_nope_1234567890", sb=sandbox)
    assert wrong.returncode == 3


def test_check_retries_503_as_send_would_and_says_when_it_never_cleared(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "events.ndjson", [event("u1", 1)])
    fast = ("--max-retries", "1", "--retry-initial-delay", "0.01", "--json")
    sandbox.set_faults(fail_requests=(1,))
    done = cli("send", "--check-only", str(data), *fast, sb=sandbox)
    assert done.returncode == 0, done.stderr
    assert orjson.loads(done.stdout)["requests"] == 2
    sandbox.set_faults(fail_requests=(3, 4))  # numbers go on: 1 and 2 were taken
    done = cli("send", "--check-only", str(data), *fast, sb=sandbox)
    verdict = orjson.loads(done.stdout)
    assert done.returncode == 2 and verdict["status"] == 503 and verdict["requests"] == 2
    assert "unavailable" in verdict["error"]


@pytest.mark.e2e
def test_a_differently_worded_400_passes_and_is_printed() -> None:
    """Any 400 in the API's error shape to the empty request proves the credentials; the
    check prints what this server said, not the sandbox's words."""
    with api_in_other_words("users must hold 1 to 1000 users") as server:
        done, verdict = cli_json("check", env=base_env(None, **server.env()))
        assert done.returncode == 0, done.stderr
        assert verdict["ok"] is True and verdict["status"] == 400
        assert verdict["trace_id"] == "odd-1"
        text = cli("check", env=base_env(None, **server.env()))
        assert text.returncode == 0, text.stderr
        assert "answered the empty request with 400 'users must hold 1 to 1000 users'" in (
            text.stdout
        )
        assert API_KEY not in text.stdout + text.stderr
        env = {**server.env(), "REVBRIDGE_API_KEY": "rbk_nope_0"}
        wrong = cli("check", env=base_env(None, **env))
        assert wrong.returncode == 3 and "refused the credentials" in wrong.stderr


@pytest.mark.e2e
def test_a_400_outside_the_error_shape_is_not_the_api() -> None:
    for body in (b"bad request", {"message": "users must not be empty"}, {"error": "x"}):
        with OddServer(lambda n, request, body=body: http_response(400, body)) as server:
            done, verdict = cli_json("check", env=base_env(None, **server.env()))
        assert done.returncode == 2, (body, done.stderr)
        assert verdict["ok"] is False and "Traceback" not in done.stderr
