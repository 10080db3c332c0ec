"""Profile updates end to end (docs/profiles.md): vendors' exports built here in their
documented shapes (`/work/shared/vendor-exports.md`), through the real command to the sandbox.

Profiles are counted the way the identity graph links them (docs/contract.md, "Identity"): user
objects sharing a primary identifier value of the same kind are one person, two different
user_ids never are. Until the sandbox keeps that graph itself (another branch), `people`
computes it from the sandbox's stored user objects, and their properties are folded in the
order the server received them (the order of their first stored event).
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson
import pytest
from conftest import base_env, cli_json, read_ndjson, write_ndjson

from revbridge_cli.sandbox import Sandbox

pytestmark = pytest.mark.e2e

PRIMARY = ("user_id", "email", "phone_number", "anon_id")
N = 24


def people(sb: Sandbox) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """(identifiers, user_properties) per person, as the graph would merge the stored user
    objects: linked by shared identifier values, properties last-write-wins in arrival order."""
    profiles = sb.profiles()
    order = {}
    for event in sb.events():
        order.setdefault(event["user_key"], len(order))
    keys = sorted(profiles, key=lambda k: order.get(k, len(order)))
    parent = {k: k for k in keys}

    def find(k: str) -> str:
        while parent[k] != k:
            k = parent[k]
        return k

    owner: dict[tuple[str, Any], str] = {}
    for key in keys:
        for name in PRIMARY:
            value = profiles[key]["identifiers"].get(name)
            if value in (None, ""):
                continue
            other = owner.setdefault((name, value), key)
            a, b = find(other), find(key)
            uid_a = profiles[a]["identifiers"].get("user_id")
            uid_b = profiles[b]["identifiers"].get("user_id")
            if a != b and not (uid_a and uid_b and uid_a != uid_b):
                parent[b] = a
    merged: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for key in keys:
        ids, props = merged.setdefault(find(key), ({}, {}))
        ids.update(profiles[key]["identifiers"])
        props.update(profiles[key]["user_properties"] or {})
    return list(merged.values())


def by_user(sb: Sandbox) -> dict[str, dict[str, Any]]:
    return {ids["user_id"]: props for ids, props in people(sb) if "user_id" in ids}


def send(sb: Sandbox, tmp_path: Path, *args: str) -> tuple[Any, dict[str, Any], list[Any]]:
    rejected = tmp_path / "rejected.ndjson"
    result, summary = cli_json("send", *args, "--rejected", str(rejected), sb=sb, cwd=tmp_path)
    assert "Traceback" not in result.stderr, result.stderr
    rows = read_ndjson(rejected) if rejected.exists() else []
    assert summary["unaccounted_events"] == 0, summary
    assert summary["unaccounted_profile_updates"] == 0, summary
    # the books: every record read was accepted, carried on one that was, or is a row
    carried = summary["profile_updates_carried"]
    assert summary["records_read"] == summary["events_accepted"] + carried + len(rows), summary
    return result, summary, rows


def segment_export(n: int) -> list[dict[str, Any]]:
    """n persons, interleaved: an identify with only anonymousId, anonymous browsing, a
    login, then an identify with the userId (and for half of them the anonymousId too)."""
    out: list[dict[str, Any]] = []
    steps: list[list[dict[str, Any]]] = [[], [], [], []]
    for i in range(n):
        uid, anon, at = f"u{i}", f"a{i}", f"2026-01-01T00:{i % 60:02d}:00Z"
        steps[0].append({"type": "identify", "anonymousId": anon, "userId": None,
                         "traits": {"plan": "free", "name": f"P{i}"}, "timestamp": at})  # fmt: skip
        steps[1].append({"type": "page", "name": "Home", "anonymousId": anon, "userId": None,
                         "timestamp": at, "properties": {"url": "/"}})  # fmt: skip
        context = {"traits": {"email": f"{uid}@example.com"}} if i % 3 == 0 else {}
        steps[2].append({"type": "track", "event": "Signed Up", "userId": uid, "anonymousId": anon,
                         "timestamp": at, "properties": {}, "context": context})  # fmt: skip
        steps[3].append({"type": "identify", "userId": uid,
                         "anonymousId": anon if i % 2 else None, "timestamp": at,
                         "traits": {"email": f"{uid}@example.com", "plan": "pro"}})  # fmt: skip
    for step in steps:
        out += step
    return out


def test_a_segment_export_lands_as_one_profile_per_person_and_exits_0(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "segment.ndjson", segment_export(N))
    result, summary, rows = send(sandbox, tmp_path, "--preset", "segment", str(data))
    assert result.returncode == 0, result.stderr
    assert rows == [] and summary["profile_updates_carried"] == 2 * N
    assert summary["profile_updates_held"] == 0
    persons = people(sandbox)
    assert len(persons) == N
    for ids, props in persons:
        i = int(ids["user_id"][1:])
        assert ids == {"user_id": f"u{i}", "anon_id": f"a{i}", "email": f"u{i}@example.com"}
        assert props == {"plan": "pro", "name": f"P{i}"}  # its traits, the last identify's values


def test_the_sandbox_itself_counts_one_profile_per_person(sandbox: Sandbox, tmp_path: Path) -> None:
    """The same export, read back through the sandbox's identity graph: N profiles, each with
    all three identifiers, its traits and the last identify's values."""
    data = write_ndjson(tmp_path / "segment.ndjson", segment_export(N))
    result, summary, _rows = send(sandbox, tmp_path, "--preset", "segment", str(data))
    assert result.returncode == 0, result.stderr
    assert summary["unaccounted_events"] == 0
    profiles = list(sandbox.profiles().values())
    assert len(profiles) == N
    for profile in profiles:
        i = int(profile["identifiers"]["user_id"][1:])
        primary = {k: profile["identifiers"].get(k) for k in ("user_id", "anon_id", "email")}
        assert primary == {"user_id": f"u{i}", "anon_id": f"a{i}", "email": f"u{i}@example.com"}
        assert profile["user_properties"] == {"plan": "pro", "name": f"P{i}"}


def test_amplitude_identify_rows_reach_the_profile_with_their_operations(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = []
    for i in range(N):
        base = {"user_id": f"u{i}", "device_id": f"D{i}", "amplitude_id": i}
        rows.append({**base, "event_type": "$identify", "event_time": "2023-10-15 14:00:00.000000",
                     "user_properties": {"$setOnce": {"first_plan": "free"},
                                         "$set": {"plan": "free"}}})  # fmt: skip
        rows.append({**base, "event_type": "Purchase", "event_time": "2023-10-15 14:30:00.123456",
                     "event_properties": {"$revenue": 9.5},
                     "user_properties": {"plan": "trial"}})  # fmt: skip
        rows.append({**base, "event_type": "$identify", "event_time": "2023-10-15 15:00:00.000000",
                     "user_properties": {"$set": {"plan": "pro"}, "$setOnce": {"first_plan": "x"},
                                         "$add": {"logins": 1}}})  # fmt: skip
    data = write_ndjson(tmp_path / "amplitude.json", rows)
    result, summary, rejected = send(sandbox, tmp_path, "--preset", "amplitude", str(data))
    assert result.returncode == 0, result.stderr
    assert rejected == [] and summary["profile_updates_carried"] == 2 * N
    users = by_user(sandbox)
    assert len(users) == N
    # set wins at its place; set-once never overwrites; $add needs the stored profile: left out
    assert all(props == {"plan": "pro", "first_plan": "free"} for props in users.values()), users
    assert {e["event_name"] for e in sandbox.events()} == {"Purchase"}


def test_posthog_set_and_identify_events_reach_the_profile(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    rows = []
    for i in range(N):
        uid = f"u{i}"
        rows.append({"uuid": f"a{i}", "event": "$identify", "distinct_id": uid,
                     "timestamp": "2024-01-01T12:00:00+00:00",
                     "properties": {"$device_id": f"d{i}", "$set": {"email_opt_in": True},
                                    "$set_once": {"first_seen": "2024-01-01"}}})  # fmt: skip
        rows.append({"uuid": f"b{i}", "event": "$pageview", "distinct_id": uid,
                     "timestamp": "2024-01-01T12:01:00+00:00",
                     "properties": {"$current_url": "https://example.com/", "$device_id": f"d{i}",
                                    "$set": {"plan": "free"}}})  # fmt: skip
        rows.append({"uuid": f"c{i}", "event": "$set", "distinct_id": uid,
                     "timestamp": "2024-01-01T12:02:00+00:00",
                     "properties": {"$set": {"plan": "pro"}}})  # fmt: skip
    data = write_ndjson(tmp_path / "posthog.ndjson", rows)
    result, summary, rejected = send(sandbox, tmp_path, "--preset", "posthog", str(data))
    assert result.returncode == 0, result.stderr
    assert rejected == [] and summary["profile_updates_carried"] == 2 * N
    users = by_user(sandbox)
    assert len(users) == N
    want = {"plan": "pro", "email_opt_in": True, "first_seen": "2024-01-01"}
    assert all(props == want for props in users.values()), users
    assert {e["event_name"] for e in sandbox.events()} == {"$pageview"}


# ---- what is left at the end --------------------------------------------------------------


def test_an_update_with_no_event_is_held_counted_and_the_run_still_exits_0(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    records = [
        {"user_id": "u1", "event_name": "buy", "timestamp": "2026-01-01T00:00:00Z"},
        {"user_id": "u2", "user_properties": {"plan": "pro"}, "timestamp": "2026-01-02T00:00:00Z"},
    ]
    data = write_ndjson(tmp_path / "in.ndjson", records)
    result, summary, rows = send(sandbox, tmp_path, str(data))
    assert result.returncode == 0, result.stderr
    assert summary["profile_updates_held"] == 1 and summary["profile_updates_carried"] == 0
    assert summary["exit_code"] == 0 and summary["rejected_rows"] == 1
    (row,) = rows
    assert row["kind"] == "held" and "--profile-event identify" in row["message"]
    assert row["user"]["user_properties"] == {"plan": "pro"}
    assert "1 profile updates had no event of their person" in result.stderr
    assert "profile updates carried / held" in result.stderr

    # the fix loop: the held row sent again with the person's next events is carried
    later = write_ndjson(tmp_path / "later.ndjson", [{"user_id": "u2", "event_name": "login"}])
    again = tmp_path / "again"
    again.mkdir()
    result, summary, rows = send(sandbox, again, str(tmp_path / "rejected.ndjson"), str(later))
    assert result.returncode == 0 and rows == [] and summary["profile_updates_carried"] == 1
    assert by_user(sandbox)["u2"] == {"plan": "pro"}


def test_profile_event_sends_each_left_over_update_as_an_event(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    at = "2026-01-02T00:00:00Z"
    update = {"user_id": "u2", "user_properties": {"plan": "pro"}, "timestamp": at}
    data = write_ndjson(tmp_path / "in.ndjson", [update])
    result, summary, rows = send(sandbox, tmp_path, "--profile-event", "identify", str(data))
    assert result.returncode == 0, result.stderr
    assert rows == [] and summary["profile_updates_as_events"] == 1
    assert summary["events_accepted"] == 1 and summary["profile_updates_held"] == 0
    (event,) = sandbox.events()
    assert event["event_name"] == "identify" and event["timestamp"] == "2026-01-02T00:00:00Z"
    assert by_user(sandbox)["u2"] == {"plan": "pro"}


def test_profile_event_from_a_profile_and_the_api(sandbox: Sandbox, tmp_path: Path) -> None:
    from revbridge_cli import Connection, send_records

    conn = Connection(sandbox.url, api_key=sandbox.api_key, customer_id=sandbox.customer_id)
    result = send_records([{"email": "e@example.com", "user_properties": {"a": 1}}],
                          connection=conn, profile_event="profile")  # fmt: skip
    assert result.ok and result.summary.profile_updates_as_events == 1
    (event,) = sandbox.events()
    assert event["event_name"] == "profile"

    config = tmp_path / "config.toml"
    config.write_text('default_profile = "p"\n[profiles.p]\nprofile_event = "identify"\n')
    data = write_ndjson(tmp_path / "in.ndjson", [{"user_id": "u9", "user_properties": {"b": 2}}])
    result, summary, rows = send(sandbox, tmp_path, "--config", str(config), str(data))
    assert result.returncode == 0, result.stderr
    assert summary["profile_updates_as_events"] == 1 and rows == []


# ---- --state: a held update survives a crash and a cron rerun -----------------------------


def _start(sb: Sandbox, tmp: Path, data: Path, *extra: str) -> subprocess.Popen[str]:
    args = [sys.executable, "-m", "revbridge_cli", "send", str(data), "--state",
            str(tmp / "run.state"), "--rejected", str(tmp / "rejected.ndjson"), "--json",
            "--retry-initial-delay", "0.01", *extra]  # fmt: skip
    return subprocess.Popen(args, env=base_env(sb), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict[str, Any], str]:
    out, err = proc.communicate()
    return proc.returncode, orjson.loads(out) if out.strip() else {}, err


def _events(first: int, last: int) -> list[dict[str, Any]]:
    return [{"user_id": f"v{n}", "event_name": "e", "seq": n} for n in range(first, last + 1)]


def test_with_state_a_waiting_update_survives_kill_9_and_is_carried_once(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    records = [
        {"user_id": "early", "event_name": "e", "seq": 0},
        {"user_id": "early", "user_properties": {"plan": "pro"}},  # carried before the kill
        {"user_id": "late", "user_properties": {"plan": "team"}},  # waits for its event
        *_events(1, 200),
        {"user_id": "late", "event_name": "e", "seq": 201},
    ]
    data = write_ndjson(tmp_path / "in.ndjson", records)
    sandbox.set_faults(latency=0.1)
    proc = _start(sandbox, tmp_path, data, "--concurrency", "2", "--max-users", "8")
    while len(sandbox.requests()) < 3:  # a condition, polled; no deadline of its own
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    users = by_user(sandbox)
    assert users["early"] == {"plan": "pro"} and "late" not in users

    sandbox.set_faults(latency=0.0)
    code, summary, err = _finish(_start(sandbox, tmp_path, data))
    assert code == 0, err
    assert summary["unaccounted_events"] == 0 and summary["unaccounted_profile_updates"] == 0
    # the rerun read the waiting update again (it was not settled), not the carried one
    assert summary["profile_updates_read"] == 1 and summary["profile_updates_carried"] == 1
    users = by_user(sandbox)
    assert users["early"] == {"plan": "pro"} and users["late"] == {"plan": "team"}
    seqs = sorted(e["properties"]["seq"] for e in sandbox.events())
    assert set(seqs) == set(range(202))


def test_with_state_a_held_update_waits_for_the_next_cron_run(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = tmp_path / "log.ndjson"
    write_ndjson(data, [{"user_id": "u1", "user_properties": {"plan": "pro"}}, *_events(1, 3)])
    code, summary, err = _finish(_start(sandbox, tmp_path, data))
    assert code == 0, err
    assert summary["profile_updates_held"] == 1 and summary["rejected_rows"] == 0
    assert "the state keeps them for the next run" in err

    with data.open("ab") as f:  # the log grows; the person's event arrives
        f.write(orjson.dumps({"user_id": "u1", "event_name": "login"}) + b"\n")
    code, summary, err = _finish(_start(sandbox, tmp_path, data))
    assert code == 0, err
    assert summary["profile_updates_carried"] == 1 and summary["events_accepted"] == 1
    assert by_user(sandbox)["u1"] == {"plan": "pro"}

    code, summary, err = _finish(_start(sandbox, tmp_path, data))  # nothing new: nothing sent
    assert code == 0, err
    assert summary["profile_updates_read"] == 0 and summary["requests"] == 0


def test_with_state_a_stop_leaves_the_waiting_update_for_the_rerun(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = tmp_path / "log.ndjson"
    write_ndjson(data, [{"user_id": "late", "user_properties": {"plan": "pro"}}, *_events(1, 120)])
    sandbox.set_faults(latency=0.1)
    proc = _start(sandbox, tmp_path, data, "--concurrency", "1", "--max-users", "4")
    while len(sandbox.requests()) < 2:  # a condition, polled; no deadline of its own
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)
    code, summary, err = _finish(proc)
    assert code == 130, err
    assert summary["unaccounted_events"] == 0 and summary["unaccounted_profile_updates"] == 0
    # a stop before the read ended: pending; after it: held in the state. Either way unsettled
    assert summary["profile_updates_pending"] + summary["profile_updates_held"] == 1
    assert summary["rejected_rows"] == 0

    sandbox.set_faults(latency=0.0)
    with data.open("ab") as f:
        f.write(orjson.dumps({"user_id": "late", "event_name": "login"}) + b"\n")
    code, summary, err = _finish(_start(sandbox, tmp_path, data))
    assert code == 0, err
    assert summary["profile_updates_read"] == 1 and summary["profile_updates_carried"] == 1
    assert by_user(sandbox)["late"] == {"plan": "pro"}
    assert sorted(e["properties"]["seq"] for e in sandbox.events() if "seq" in e["properties"]) == [
        *range(1, 121)
    ]
