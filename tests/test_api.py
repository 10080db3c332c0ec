"""The Python API (`from revbridge_cli import send_records`), against a real sandbox.

What a program gets: every event sent once, the rejected rows back with their reasons, the
CLI's summary as a result object, errors from the package's hierarchy, nothing process-global
changed, the key never shown; and `--event-id-property`'s ids, stable across resends.
"""

from __future__ import annotations

import asyncio
import gc
import signal
import subprocess
import sys
import textwrap
import threading
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import API_KEY, CUSTOMER_ID, cli_json, conn, event, read_ndjson, seqs, write_ndjson

from revbridge_cli import (
    Connection,
    RevbridgeError,
    UsageError,
    asend_records,
    send_files,
    send_records,
)
from revbridge_cli.sandbox import Sandbox
from revbridge_cli.shape.event_ids import event_id

pytestmark = pytest.mark.e2e


def interleaved(n: int, users: int = 50) -> list[dict[str, Any]]:
    return [event(f"u{i % users}", i) for i in range(n)]


def test_send_records_delivers_every_event_once_in_order_per_user(sandbox: Sandbox) -> None:
    records = interleaved(3000)
    result = send_records(records, connection=conn(sandbox), concurrency=3, max_users=7)
    assert result.ok and result.exit_code == 0
    assert result.accepted_events == 3000 and result.rejected == 0
    assert result.rejected_rows == []
    assert seqs(sandbox) == list(range(3000))
    by_user: dict[str, list[int]] = {}
    for stored in sandbox.events():  # in the order the sandbox stored them
        by_user.setdefault(stored["user_key"], []).append(stored["properties"]["seq"])
    assert all(s == sorted(s) for s in by_user.values())
    assert result.as_dict()["events_accepted"] == 3000
    assert result.as_dict()["unaccounted_events"] == 0


def test_bad_records_come_back_as_rows_with_their_reasons(sandbox: Sandbox) -> None:
    records: list[Any] = [
        event("u1", 1),
        {"event_name": "no identifier"},
        event("u2", 2, revenue="49.99"),
        42,
        {"user_id": "u3", "event_name": "e", "tags": {"a", "b"}},  # a set: not JSON
        event("u4", 3),
    ]
    result = send_records(records, connection=conn(sandbox))
    assert result.exit_code == 1
    assert seqs(sandbox) == [1, 3]
    rows = result.rejected_rows
    assert rows is not None and len(rows) == result.rejected == 4
    messages = {row["source"]: row["message"] for row in rows}
    assert messages["<records>:2"].startswith("at least one identifier is required")
    assert messages["<records>:3"] == "events[0]: revenue must be a number"
    assert messages["<records>:4"].endswith("not a JSON object (got number)")
    assert "not JSON-serializable" in messages["<records>:5"]
    assert result.as_dict()["unaccounted_events"] == 0


def test_a_rejected_path_writes_the_cli_format_that_the_cli_can_resend(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rejected = tmp_path / "rejected.ndjson"
    result = send_records(
        [event("u1", 1, revenue="1.5")], connection=conn(sandbox), rejected=rejected
    )
    assert result.rejected_rows is None and result.rejected_file == str(rejected)
    (row,) = read_ndjson(rejected)
    row["user"]["events"][0]["revenue"] = 1.5
    rejected.write_bytes(orjson.dumps(row) + b"\n")
    again = send_files([rejected], connection=conn(sandbox))
    assert again.ok and seqs(sandbox) == [1]


def test_half_a_million_records_from_a_generator_in_flat_memory(tmp_path: Path) -> None:
    """Peak memory of 500,000 records is about that of 100,000: the generator is streamed."""
    script = textwrap.dedent(
        """
        import resource, sys
        from revbridge_cli import Connection, send_records
        from revbridge_cli.sandbox import Sandbox
        n = int(sys.argv[1])
        with Sandbox(store=False) as sb:
            c = Connection(sb.url, api_key=sb.api_key, customer_id=sb.customer_id)
            records = ({"user_id": f"u{i % 20000}", "event_name": "e",
                        "timestamp": "2026-01-15T14:30:00Z", "seq": i} for i in range(n))
            result = send_records(records, connection=c)
            print(result.exit_code, result.accepted_events, sb.stats()["events_accepted"],
                  resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
        """
    )

    def start(n: int) -> subprocess.Popen[str]:
        argv = [sys.executable, "-c", script, str(n)]
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def measure(proc: subprocess.Popen[str]) -> tuple[int, int, int, int]:
        out, err = proc.communicate(timeout=600)
        assert proc.returncode == 0, err
        code, accepted, stored, rss = map(int, out.split())
        return code, accepted, stored, rss

    # Both at once: each is one process, and the suite has two cores.
    small_run, large_run = start(100_000), start(500_000)
    small, large = measure(small_run), measure(large_run)
    assert small[:3] == (0, 100_000, 100_000)
    assert large[:3] == (0, 500_000, 500_000)
    assert large[3] < small[3] * 1.3 + 20_000  # KB: flat, not growing with the input


def test_the_async_api_runs_on_the_callers_loop_and_the_sync_one_inside_a_loop(
    sandbox: Sandbox,
) -> None:
    async def program() -> tuple[int, int]:
        awaited = await asend_records([event("u1", 1)], connection=conn(sandbox))
        blocking = send_records([event("u2", 2)], connection=conn(sandbox))  # a notebook cell
        return awaited.accepted_events, blocking.accepted_events

    assert asyncio.run(program()) == (1, 1)
    assert seqs(sandbox) == [1, 2]


def test_a_worker_thread_can_send_and_nothing_process_global_changes(sandbox: Sandbox) -> None:
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    thresholds = gc.get_threshold()
    results: list[Any] = []
    thread = threading.Thread(
        target=lambda: results.append(send_records(interleaved(500), connection=conn(sandbox)))
    )
    thread.start()
    thread.join(120)
    assert results and results[0].accepted_events == 500
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert gc.get_threshold() == thresholds
    # and from the main thread too: the run installs nothing
    send_records([event("u9", 9)], connection=conn(sandbox))
    assert {s: signal.getsignal(s) for s in handlers} == handlers
    assert gc.get_threshold() == thresholds


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"concurrency": 2, "colour": True}, "unknown option 'colour'"),
        ({"api_key": "rbk_x"}, "api_key and customer_id are required"),
        ({}, "no connection"),
        ({"max_retries": -1, "dry_run": True}, "max_retries"),
    ],
)
def test_a_bad_argument_raises_from_the_hierarchy_and_never_exits(
    kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(UsageError, match=message) as info:
        send_records([event("u1", 1)], **kwargs)
    assert isinstance(info.value, RevbridgeError)


def test_an_output_that_cannot_be_written_is_refused_before_anything_is_sent(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir" / "rejected.ndjson"
    with pytest.raises(UsageError, match="mkdir -p"):
        send_records([event("u1", 1)], connection=conn(sandbox), rejected=missing)
    assert sandbox.requests() == []


def test_an_http_base_url_off_loopback_is_refused() -> None:
    with pytest.raises(RevbridgeError, match="in clear"):
        Connection("http://example.com", api_key=API_KEY, customer_id=CUSTOMER_ID)


def test_the_key_is_never_shown(sandbox: Sandbox) -> None:
    c = conn(sandbox)
    result = send_records([event("u1", 1)], connection=c)
    for text in (repr(c), str(c), repr(result), str(result.as_dict())):
        assert sandbox.api_key not in text


def test_wrong_credentials_are_a_result_with_exit_code_3(sandbox: Sandbox) -> None:
    c = Connection(sandbox.url, api_key="rbk_wrong_0123456789", customer_id=sandbox.customer_id)
    result = send_records(interleaved(2000), connection=c)
    assert result.exit_code == 3 and not result.ok
    assert result.fatal is not None and "authentication refused" in result.fatal
    assert len(sandbox.requests()) == 1  # slow start: one request, not the read-ahead


# ---- --event-id-property: a stable id for deduplication downstream ------------------------------


def test_event_ids_are_stable_across_resends_so_duplicates_can_be_dropped(
    sandbox: Sandbox,
) -> None:
    records = interleaved(200, users=20)
    for _ in range(2):  # an engine that re-runs a task: everything twice
        send_records(records, connection=conn(sandbox), event_id_property="event_id")
    ids = Counter(e["properties"]["event_id"] for e in sandbox.events())
    assert len(ids) == 200 and set(ids.values()) == {2}
    assert all(r.get("event_id") is None for r in records)  # the caller's dicts are untouched


def test_event_ids_through_the_cli_are_the_same_for_every_resend(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """The CLI stamps as the API does: the same file sent twice stores each id twice, and a
    fixed rejected row gets the id of its content as sent."""
    data = write_ndjson(tmp_path / "in.ndjson", [event("u1", 1), event("u2", 2, revenue="x")])
    rejected = tmp_path / "rejected.ndjson"
    args = ("--event-id-property", "eid", "--rejected", str(rejected))
    for _ in range(2):
        result, _ = cli_json("send", str(data), *args, sb=sandbox, cwd=tmp_path)
        assert result.returncode == 1, result.stderr
    row = read_ndjson(rejected)[0]
    row["user"]["events"][0]["revenue"] = 3.0
    fixed = tmp_path / "fixed.ndjson"
    fixed.write_bytes(orjson.dumps(row) + b"\n")
    result, _ = cli_json("send", str(fixed), "--event-id-property", "eid", sb=sandbox, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    ids = Counter((e["properties"]["seq"], e["properties"]["eid"]) for e in sandbox.events())
    assert sorted(ids.values()) == [1, 2]  # seq 1 twice with one id, seq 2 once
    key = orjson.dumps(["u2", None, None, None], option=orjson.OPT_SORT_KEYS)
    sent = row["user"]["events"][0]
    assert ids[(2, event_id(key, sent, "eid"))] == 1


def test_an_event_id_leaves_its_own_property_out_of_the_hash() -> None:
    key = b'["u1",null,null,null]'
    plain = {"event_name": "e", "seq": 1}
    assert event_id(key, {**plain, "eid": "old"}, "eid") == event_id(key, plain, "eid")
    assert event_id(key, plain, "eid") != event_id(b'["u2",null,null,null]', plain, "eid")
