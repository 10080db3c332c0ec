"""Figures that mean what they say: distinct users vs user objects, the rate, the bar's share."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from conftest import base_env, cli, cli_json, event, write_ndjson

from revbridge_cli.cli.progress import Meter
from revbridge_cli.report import distinct
from revbridge_cli.report.distinct import DistinctUsers
from revbridge_cli.report.summary import Summary
from revbridge_cli.sandbox import Sandbox


def test_distinct_users_are_counted_apart_from_user_objects(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    """20 people, 5 events each, interleaved, 3 users a request: many more user objects."""
    data = write_ndjson(tmp_path / "in.ndjson", [event(f"u{n % 20}", n) for n in range(100)])
    done, summary = cli_json("send", str(data), "--max-users", "3", "--buffer-mb", "1", sb=sandbox)
    assert done.returncode == 0, done.stderr
    assert summary["users_distinct"] == 20 and summary["users_distinct_estimated"] is False
    assert summary["users_sent"] == summary["users_accepted"] > 20
    assert re.search(r"^distinct users +20$", done.stderr, re.M)
    assert re.search(
        rf"^user objects / events sent +{summary['users_sent']} / 100$", done.stderr, re.M
    )
    stats = cli("sandbox", "stats", "--db", str(sandbox.db_path), env=base_env())
    assert "users:    20 distinct (profiles)" in stats.stdout
    assert f"accepted: {summary['users_accepted']} user objects, 100 events" in stats.stdout


def test_the_rate_is_of_accepted_events_and_absent_when_none_were(
    sandbox: Sandbox, tmp_path: Path
) -> None:
    data = write_ndjson(tmp_path / "in.ndjson", [event(f"u{n}", n) for n in range(50)])
    done = cli("send", str(data), sb=sandbox)
    assert done.returncode == 0 and re.search(
        r"^rate +[\d,]+ accepted events/s$", done.stderr, re.M
    )
    env = base_env(sandbox, REVBRIDGE_API_KEY="rbk_wrong_00000000")
    rejected = tmp_path / "rejected.ndjson"
    done = cli("send", str(data), "--rejected", str(rejected), env=env)
    assert done.returncode == 3
    assert not re.search(r"^rate ", done.stderr, re.M)


@pytest.mark.parametrize("users", [1_000, 30_000])
def test_distinct_is_exact_up_to_its_bound_then_a_close_estimate(
    monkeypatch: pytest.MonkeyPatch, users: int
) -> None:
    monkeypatch.setattr(distinct, "EXACT_UP_TO", 5_000)
    counter = DistinctUsers()
    for round_ in range(3):  # every user three times: still counted once
        for n in range(users):
            counter.add(f'["u{n}",null,null,{round_ % 1}]'.encode())
    if users < 5_000:
        assert (counter.count, counter.estimated) == (users, False)
    else:
        assert counter.estimated
        assert abs(counter.count - users) / users < 0.03  # standard error about 0.8%


def test_the_bar_says_what_its_share_measures() -> None:
    meter = Meter()
    summary = Summary(records_read=100, events_sent=25)
    meter.update(summary, 1000, 1000)  # all read, a quarter with a verdict
    assert meter.bytes_text() == "1.0 kB of 1.0 kB read"
    assert meter.share_text() == "25% settled"
    checking = Summary(records_read=100, sent=False)
    meter = Meter()
    meter.update(checking, 500, 1000)
    assert meter.share_text() == "50% read"
