"""`revbridge send` as a user runs it: the real command in a child process, a real sandbox on a
socket, and assertions on what the sandbox stored and on the rejected file."""

from __future__ import annotations

import gzip
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import API_KEY, base_env, cli, cli_json, event, read_ndjson, seqs, write_ndjson

from revbridge_cli.sandbox import Sandbox
from revbridge_cli.sandbox.faults import REJECTED_USER_MESSAGE

pytestmark = pytest.mark.e2e  # every test here runs a sandbox or the real command

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
FAST_RETRY = ("--retry-initial-delay", "0.01", "--retry-max-delay", "0.05")
SUMMARY_FIELDS = {
    "records_read",
    "records_invalid",
    "users_sent",
    "events_sent",
    "users_accepted",
    "events_accepted",
    "users_rejected",
    "events_rejected",
    "users_undelivered",
    "events_undelivered",
    "requests",
    "retries",
    "bytes_sent",
    "batches",
    "possible_duplicate_events",
    "elapsed_seconds",
    "rejected_file",
    "rejected_rows",
    "input_errors",
    "reasons",
    "examples",
    "interrupted",
    "fatal",
    "dry_run",
    "exit_code",
}


def send(
    sb: Sandbox, tmp_path: Path, *args: str, **kwargs: Any
) -> tuple[Any, dict[str, Any], Path]:
    """`revbridge send ARGS --rejected tmp/rejected.ndjson --json` against the sandbox."""
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json(
        "send", *args, "--rejected", str(rejected), sb=sb, cwd=tmp_path, **kwargs
    )
    return result, summary, rejected


def rows_of(path: Path) -> list[dict[str, Any]]:
    return read_ndjson(path) if path.exists() else []


def row_seqs(rows: list[dict[str, Any]]) -> list[int]:
    return sorted(e["seq"] for r in rows for e in r["user"]["events"])


def seqs_of_user(sb: Sandbox, user_id: str) -> list[int]:
    """Seq of that user's stored events in arrival order (the events table's id order)."""
    return [e["properties"]["seq"] for e in sb.events() if e["identifiers"]["user_id"] == user_id]


def fat(user: str, n: int, size: int) -> dict[str, Any]:
    return event(user, n, pad="x" * size)


# ---- grouping and limits ------------------------------------------------------------------


def test_send_groups_a_users_records_into_one_user_object(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [
        event("u1", 1, user_properties={"tier": "silver", "city": "Oslo"}),
        event("u2", 2, user_properties={"tier": "bronze"}),
        event("u1", 3),
        event("u1", 4, user_properties={"tier": "gold"}),
        event("u2", 5),
    ]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, _ = send(sandbox, tmp_path, str(path), "--concurrency", "1")
    assert result.returncode == 0, result.stderr
    (request,) = sandbox.requests()
    assert request["status"] == 202
    assert (request["users_accepted"], request["events_accepted"]) == (2, 5)
    assert (summary["users_accepted"], summary["events_accepted"]) == (2, 5)
    assert seqs_of_user(sandbox, "u1") == [1, 3, 4]
    assert seqs_of_user(sandbox, "u2") == [2, 5]
    profiles = sandbox.profiles()
    assert profiles['["u1",null,null,null]']["user_properties"] == {"tier": "gold", "city": "Oslo"}
    assert profiles['["u2",null,null,null]']["user_properties"] == {"tier": "bronze"}


def test_send_keeps_every_request_under_max_bytes(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [fat(f"u{n % 7}", n, 150 + 40 * (n % 9)) for n in range(120)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, _ = send(sandbox, tmp_path, str(path), "--max-bytes", "2000")
    assert result.returncode == 0, result.stderr
    requests = sandbox.requests()
    assert len(requests) > 10
    assert all(r["bytes"] <= 2000 for r in requests)
    assert max(r["bytes"] for r in requests) > 1500  # batches are filled, not one per event
    assert sum(r["bytes"] for r in requests) == summary["bytes_sent"]
    assert seqs(sandbox) == list(range(120))


def test_send_keeps_every_request_under_max_users(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [fat(f"u{n}", n, 200) for n in range(25)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, _, _ = send(sandbox, tmp_path, str(path), "--max-users", "10", "--concurrency", "1")
    assert result.returncode == 0, result.stderr
    assert [r["users_accepted"] for r in sandbox.requests()] == [10, 10, 5]
    assert seqs(sandbox) == list(range(25))


def test_send_splits_a_user_too_big_for_one_request(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [fat("whale", n, 300) for n in range(30)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, _, _ = send(sandbox, tmp_path, str(path), "--max-bytes", "1500")
    assert result.returncode == 0, result.stderr
    requests = sandbox.requests()
    assert len(requests) >= 6
    assert all(r["bytes"] <= 1500 and r["users_accepted"] == 1 for r in requests)
    assert seqs_of_user(sandbox, "whale") == list(range(30))


def test_send_sets_aside_an_event_too_big_for_any_request(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [event("u1", 1), fat("u1", 2, 3000), event("u1", 3)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, rejected = send(sandbox, tmp_path, str(path), "--max-bytes", "1024")
    assert result.returncode == 1
    assert seqs(sandbox) == [1, 3]
    (row,) = rows_of(rejected)
    assert row["kind"] == "invalid" and row["userIndex"] is None
    assert re.fullmatch(
        r"event is 3,\d{3} bytes: with its user's identifiers and properties the request "
        r"would exceed the 1,024-byte limit",
        row["message"],
    )
    assert row["source"] == f"{path}:2"
    assert row["user"]["events"][0]["seq"] == 2
    assert summary["records_invalid"] == 1


def test_send_splits_a_batch_the_server_finds_too_large(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(max_body_bytes=3000)
    records = [fat(f"u{n % 5}", n, 200) for n in range(60)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, rejected = send(sandbox, tmp_path, str(path), "--concurrency", "1")
    assert result.returncode == 0, result.stderr
    statuses = [r["status"] for r in sandbox.requests()]
    assert statuses[0] == 413 and 202 in statuses
    assert set(statuses) == {413, 202}
    assert all(r["bytes"] <= 3000 for r in sandbox.requests() if r["status"] == 202)
    assert seqs(sandbox) == list(range(60))
    assert summary["events_accepted"] == 60
    assert not rejected.exists()


# ---- concurrency and order ----------------------------------------------------------------


def test_send_keeps_each_users_order_under_concurrency(sandbox: Sandbox, tmp_path: Path) -> None:
    """Fat events and a small --max-bytes: each user's 12 events need 4 user objects, so they
    cross several requests, which 8 lanes send side by side."""
    sandbox.set_faults(latency=0.01)
    users = [f"u{i}" for i in range(30)]
    records = [
        event(user, n * 100 + i, pad="x" * 3000) for n in range(12) for i, user in enumerate(users)
    ]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, _, _ = send(
        sandbox,
        tmp_path,
        str(path),
        *("--concurrency", "8", "--max-users", "2", "--max-bytes", "10000", "--quiet"),
    )
    assert result.returncode == 0, result.stderr
    assert len(sandbox.requests()) > 50
    assert seqs(sandbox) == sorted(r["seq"] for r in records)
    for user in users:
        arrived = seqs_of_user(sandbox, user)
        assert len(arrived) == 12
        assert arrived == sorted(arrived), f"{user} overtook itself: {arrived}"


# ---- retries ------------------------------------------------------------------------------


def test_send_rides_out_a_503_storm(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(fail_rate=0.5, seed=7)
    records = [event(f"u{n % 40}", n) for n in range(200)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, rejected = send(
        sandbox, tmp_path, str(path), "--max-users", "5", *FAST_RETRY, "--max-retries", "20"
    )
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == list(range(200))  # exactly once each
    statuses = [r["status"] for r in sandbox.requests()]
    failed = statuses.count(503)
    assert failed > 3
    assert summary["retries"] == failed
    assert summary["requests"] == len(statuses)
    assert summary["possible_duplicate_events"] == 0
    assert not rejected.exists()


def test_send_honours_retry_after(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(fail_requests=(1,), retry_after=1)
    path = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    started = time.monotonic()
    result, summary, _ = send(
        sandbox, tmp_path, str(path), "--retry-initial-delay", "0.01", "--retry-max-delay", "5"
    )
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.0
    assert summary["elapsed_seconds"] >= 0.95
    assert [r["status"] for r in sandbox.requests()] == [503, 202]


def test_send_caps_retry_after_at_retry_max_delay(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(fail_requests=(1,), retry_after=30)
    path = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    log = tmp_path / "run.log"
    result, summary, _ = send(
        sandbox, tmp_path, str(path), "--retry-max-delay", "0.5", "--log-file", str(log)
    )
    assert result.returncode == 0, result.stderr
    assert summary["retries"] == 1
    (wait,) = re.findall(r"503 .*; retry in ([0-9.]+) s", log.read_text())
    assert float(wait) <= 0.5  # the cap, not the server's 30 s
    assert [r["status"] for r in sandbox.requests()] == [503, 202]


def test_send_with_max_retries_0_does_not_retry(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(fail_requests=(1,))
    records = [event("u1", 1), event("u2", 2), event("u1", 3)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, rejected = send(
        sandbox, tmp_path, str(path), "--max-retries", "0", "--concurrency", "1"
    )
    assert result.returncode == 1
    (request,) = sandbox.requests()
    assert request["status"] == 503
    assert summary["retries"] == 0
    assert (summary["users_undelivered"], summary["events_undelivered"]) == (2, 3)
    rows = rows_of(rejected)
    assert len(rows) == 2
    for row in rows:
        assert row["kind"] == "undelivered"
        assert row["message"] == "gave up after 0 retries: HTTP 503"
        assert row["trace_id"] == request["trace_id"]
        assert row["userIndex"] is None
    assert row_seqs(rows) == [1, 2, 3]
    by_user = {r["user"]["identifiers"]["user_id"]: r for r in rows}
    assert by_user["u1"]["source"] == f"{path}:1, {path}:3"


def test_send_does_not_retry_a_500(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(fail_requests=(1,), fail_status=500)
    path = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1), event("u2", 2)])
    result, summary, rejected = send(
        sandbox, tmp_path, str(path), *FAST_RETRY, "--concurrency", "1"
    )

    assert result.returncode == 1
    assert [r["status"] for r in sandbox.requests()] == [500]
    assert summary["retries"] == 0
    rows = rows_of(rejected)
    assert {r["kind"] for r in rows} == {"undelivered"}
    assert all(r["message"].startswith("server error 500") for r in rows)
    assert row_seqs(rows) == [1, 2]


def test_send_counts_resent_in_doubt_events_as_possible_duplicates(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.set_faults(reset_requests=(1,), reset_after_store=True)
    path = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1), event("u1", 2)])
    result, summary, _ = send(sandbox, tmp_path, str(path), *FAST_RETRY)
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [1, 1, 2, 2]  # stored before the reset, then resent
    assert summary["possible_duplicate_events"] == 2
    assert summary["retries"] == 1


# ---- authentication -----------------------------------------------------------------------


def test_send_stops_at_a_401_mid_run(sandbox: Sandbox, tmp_path: Path) -> None:
    sandbox.set_faults(revoke_after=2)
    records = [event(f"u{n}", n) for n in range(1, 61)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, rejected = send(
        sandbox, tmp_path, str(path), "--concurrency", "1", "--max-users", "5"
    )
    assert result.returncode == 3
    assert summary["exit_code"] == 3
    assert "API key" in result.stderr and "x-customer-id" in result.stderr
    assert API_KEY not in result.stdout + result.stderr
    assert [r["status"] for r in sandbox.requests()] == [202, 202, 401]  # nothing after it
    accepted = seqs(sandbox)
    assert accepted == list(range(1, 11))
    rows = rows_of(rejected)
    assert {r["kind"] for r in rows} == {"undelivered"}
    stopped = re.search(r"reading stopped after (.+):(\d+)", result.stderr)
    not_read = list(range(int(stopped[2]) + 1, 61)) if stopped else []
    assert sorted(accepted + row_seqs(rows) + not_read) == list(range(1, 61))


def test_send_without_credentials_names_the_variable(tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    result = cli("send", str(path), env=base_env(), cwd=tmp_path)
    assert result.returncode == 2
    assert "REVBRIDGE_API_KEY" in result.stderr
    assert list(tmp_path.glob("rejected-*")) == []


# ---- server-side rejections -------------------------------------------------------------


def test_send_maps_server_rejections_by_user_index(sandbox: Sandbox, tmp_path: Path) -> None:
    # the server refuses users the client's checks pass (a sandbox fault), as when its rules
    # are stricter than ours
    sandbox.set_faults(reject_user_ids=("bad1", "bad5", "bad6", "bad7"))
    names = ["ok0", "bad1", "ok2", "ok3", "ok4", "bad5", "bad6", "bad7"]
    records = [event(name, n) for n, name in enumerate(names)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, rejected = send(
        sandbox, tmp_path, str(path), "--concurrency", "1", "--max-users", "3"
    )
    assert result.returncode == 1
    requests = sandbox.requests()
    assert [r["status"] for r in requests] == [202, 202, 400]
    assert seqs(sandbox) == [0, 2, 3, 4]
    rows = rows_of(rejected)
    got = [
        (r["user"]["identifiers"]["user_id"], r["userIndex"], r["trace_id"], r["kind"])
        for r in rows
    ]
    assert got == [
        ("bad1", 1, requests[0]["trace_id"], "rejected"),
        ("bad5", 2, requests[1]["trace_id"], "rejected"),
        ("bad6", 0, requests[2]["trace_id"], "rejected"),
        ("bad7", 1, requests[2]["trace_id"], "rejected"),
    ]
    assert {r["message"] for r in rows} == {REJECTED_USER_MESSAGE}
    assert rows[0]["user"] == {
        "identifiers": {"user_id": "bad1"},
        "events": [{"event_name": "purchase", "timestamp": "2026-01-15T14:30:00Z", "seq": 1}],
    }
    assert rows[0]["source"] == f"{path}:2"
    assert (summary["users_rejected"], summary["events_rejected"]) == (4, 4)


# ---- the rejected file --------------------------------------------------------------------


def test_fix_the_rejected_file_and_send_it_back(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "in.ndjson"
    lines = [
        orjson.dumps(event("u1", 1)),
        orjson.dumps(event("u1", 2, revenue="49.99")),
        orjson.dumps(event("u2", 3)),
        orjson.dumps(event("u2", 4, timestamp="15/01/2026 14:30")),
        b'{"user_id": "u3", "event_name": "login", "seq": 5',
        orjson.dumps(event("u1", 6)),
    ]
    path.write_bytes(b"\n".join(lines) + b"\n")
    result, _, rejected = send(sandbox, tmp_path, str(path))
    assert result.returncode == 1
    assert seqs(sandbox) == [1, 3, 6]
    rows = rows_of(rejected)
    assert [r["source"] for r in rows] == [f"{path}:2", f"{path}:4", f"{path}:5"]

    for row in rows:  # what a user does with a small script or an editor
        if row["user"] is None:
            row["raw"] = row["raw"] + "}"
            continue
        for ev in row["user"]["events"]:
            if isinstance(ev.get("revenue"), str):
                ev["revenue"] = float(ev["revenue"])
            ev["timestamp"] = "2026-01-15T14:30:00Z"
    fixed = tmp_path / "fixed.ndjson"
    write_ndjson(fixed, rows)

    result, summary = cli_json("send", str(fixed), sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert summary["events_accepted"] == 3 and summary["rejected_rows"] == 0
    assert seqs(sandbox) == [1, 2, 3, 4, 5, 6]  # every event exactly once


def test_default_rejected_file_is_new_each_run(sandbox: Sandbox, tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1, revenue="1")])
    first, one = cli_json("send", str(path), sb=sandbox, cwd=tmp_path)
    second, two = cli_json("send", str(path), sb=sandbox, cwd=tmp_path)
    assert first.returncode == second.returncode == 1
    files = sorted(tmp_path.glob("rejected-*.ndjson"))
    assert len(files) == 2
    assert one["rejected_file"] != two["rejected_file"]
    for name in (one["rejected_file"], two["rejected_file"]):
        assert re.fullmatch(r"rejected-\d{8}T\d{6}Z(-\d+)?\.ndjson", name)
        assert len(read_ndjson(tmp_path / name)) == 1


def test_clean_run_creates_no_rejected_file(sandbox: Sandbox, tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1)])
    result, summary = cli_json("send", str(path), sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0
    assert summary["rejected_file"] is None
    assert list(tmp_path.glob("rejected-*")) == []


def test_explicit_rejected_file_is_appended_to(sandbox: Sandbox, tmp_path: Path) -> None:
    rejected = tmp_path / "keep.ndjson"
    rejected.write_bytes(b'{"earlier": "row"}\n')
    path = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1, revenue="1")])
    result, _ = cli_json("send", str(path), "--rejected", str(rejected), sb=sandbox)
    assert result.returncode == 1
    rows = read_ndjson(rejected)
    assert rows[0] == {"earlier": "row"}
    assert rows[1]["message"] == "events[0]: revenue must be a number"


# ---- inputs -------------------------------------------------------------------------------


def test_send_reads_standard_input(sandbox: Sandbox, tmp_path: Path) -> None:
    data = b"".join(orjson.dumps(event("u1", n)) + b"\n" for n in range(5))
    result, summary, _ = send(sandbox, tmp_path, "-", input=data)
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [0, 1, 2, 3, 4]
    assert summary["records_read"] == 5


def test_send_reads_gzip(sandbox: Sandbox, tmp_path: Path) -> None:
    path = write_ndjson(tmp_path / "in.ndjson.gz", [event("u1", n) for n in range(5)], gz=True)
    result, _, _ = send(sandbox, tmp_path, str(path))
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [0, 1, 2, 3, 4]


def test_send_reads_gzip_stdin(sandbox: Sandbox, tmp_path: Path) -> None:
    data = gzip.compress(b"".join(orjson.dumps(event("u1", n)) + b"\n" for n in range(3)))
    result = subprocess.run(  # conftest's cli() passes text: gzip needs bytes
        [sys.executable, "-m", "revbridge_cli", "send", "-"],
        input=data,
        env=base_env(sandbox),
        cwd=tmp_path,
        capture_output=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [0, 1, 2]


def test_send_reads_a_json_array(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(orjson.dumps([event("u1", n) for n in range(4)], option=orjson.OPT_INDENT_2))
    result, _, _ = send(sandbox, tmp_path, str(path))
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [0, 1, 2, 3]


def users_document(n: int) -> dict[str, Any]:
    return {
        "users": [
            {
                "identifiers": {"user_id": f"u{i}", "first_name": "Ada"},
                "user_properties": {"tier": "gold"},
                "events": [{"event_name": "purchase", "seq": i}],
            }
            for i in range(n)
        ]
    }


def test_send_reads_a_users_document(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(orjson.dumps(users_document(3), option=orjson.OPT_INDENT_2))
    result, summary, _ = send(sandbox, tmp_path, str(path))
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [0, 1, 2]
    assert summary["input_errors"] == []
    profile = sandbox.profiles()['["u0",null,null,null]']
    assert profile["identifiers"]["first_name"] == "Ada"
    assert profile["user_properties"] == {"tier": "gold"}


def test_send_reads_a_one_line_users_document(sandbox: Sandbox, tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(orjson.dumps(users_document(3)))
    result, _, _ = send(sandbox, tmp_path, str(path))
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [0, 1, 2]


def test_send_takes_the_three_record_shapes(sandbox: Sandbox, tmp_path: Path) -> None:
    flat = event("u1", 1, email="a@example.com", identifiers={"first_name": "Ada"})
    user = {
        "identifiers": {"user_id": "u2"},
        "user_properties": {"tier": "gold"},
        "events": [{"event_name": "login", "seq": 2}, {"event_name": "logout", "seq": 3}],
    }
    row = {
        "userIndex": 0,
        "message": "user_id is blocked",
        "trace_id": "t",
        "kind": "rejected",
        "user": {"identifiers": {"anon_id": "anon-1"}, "events": [{"event_name": "x", "seq": 4}]},
        "source": "old.ndjson:9",
    }
    path = write_ndjson(tmp_path / "in.ndjson", [flat, user, row])
    result, _, _ = send(sandbox, tmp_path, str(path))
    assert result.returncode == 0, result.stderr
    assert seqs(sandbox) == [1, 2, 3, 4]
    by_name = {e["event_name"]: e for e in sandbox.events()}
    assert by_name["purchase"]["identifiers"] == {
        "first_name": "Ada",
        "user_id": "u1",
        "email": "a@example.com",
    }
    assert by_name["purchase"]["properties"] == {"seq": 1}
    assert by_name["x"]["user_key"] == '[null,null,null,"anon-1"]'
    assert sandbox.profiles()['["u2",null,null,null]']["user_properties"] == {"tier": "gold"}


# ---- reporting ----------------------------------------------------------------------------


def test_dry_run_reports_requests_and_bytes_and_sends_nothing(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    records = [fat(f"u{n % 4}", n, 100) for n in range(40)]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    args = ("--concurrency", "1", "--max-bytes", "2000")
    result, dry = cli_json("send", str(path), "--dry-run", *args, sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert sandbox.requests() == []
    assert dry["dry_run"] is True and dry["requests"] == 0
    assert dry["batches"] > 1 and dry["events_sent"] == 40

    result, real = cli_json("send", str(path), *args, sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    requests = sandbox.requests()
    assert dry["batches"] == len(requests)
    assert dry["bytes_would_send"] == sum(r["bytes"] for r in requests) == real["bytes_sent"]
    assert (dry["bytes_sent"], dry["sent"], real["bytes_would_send"]) == (0, False, 0)
    assert real["batches"] == dry["batches"] and real["sent"] is True


def test_json_summary_fields(sandbox: Sandbox, tmp_path: Path) -> None:
    records = [event("u1", 1), event("u2", 2), event("u1", 3, revenue="x")]
    path = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, rejected = send(sandbox, tmp_path, str(path), "--concurrency", "1")
    assert result.returncode == 1
    assert summary.keys() >= SUMMARY_FIELDS
    assert summary["exit_code"] == 1
    assert summary["records_read"] == 3 and summary["records_invalid"] == 1
    assert (summary["users_accepted"], summary["events_accepted"]) == (2, 2)
    assert summary["requests"] == 1 and summary["retries"] == 0
    assert summary["possible_duplicate_events"] == 0
    assert summary["rejected_file"] == str(rejected) and summary["rejected_rows"] == 1
    assert summary["reasons"] == {"events[i]: revenue must be a number": 1}
    assert "events[0]: revenue must be a number" in result.stderr  # the summary is on stderr


def test_send_sandbox_on_the_samples(tmp_path: Path) -> None:
    result, summary = cli_json("send", "--sandbox", str(SAMPLES), env=base_env(), cwd=tmp_path)
    assert result.returncode == 1
    assert summary["input_errors"] == []
    assert summary["records_invalid"] == 5 and summary["rejected_rows"] == 5
    (rejected,) = tmp_path.glob("rejected-*.ndjson")
    rows = read_ndjson(rejected)
    assert len(rows) == 5 and {r["kind"] for r in rows} == {"invalid"}
    assert sorted(int(r["source"].rsplit(":", 1)[1]) for r in rows) == [13, 26, 34, 42, 51]
    assert summary["users_rejected"] == summary["users_undelivered"] == 0
