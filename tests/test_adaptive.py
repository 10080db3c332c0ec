"""Concurrency that adapts: fewer requests in flight while the server struggles (at most one
cut per round-trip window), more again when it recovers. The arithmetic as a unit; the effect
through the real CLI and sandbox, against its capacity fault."""

from __future__ import annotations

import asyncio
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from conftest import cli_json, event, seqs, write_ndjson

from revbridge_cli.delivery.limit import AdaptiveLimit
from revbridge_cli.report.summary import Summary
from revbridge_cli.sandbox import Faults, Sandbox


async def settle(limit: AdaptiveLimit, congested: bool, latency: float | None = None) -> None:
    """One request sent now and answered: it was started after every earlier cut."""
    await limit.release(await limit.acquire(), congested, latency)


def test_a_burst_of_refusals_within_one_round_trip_is_one_cut() -> None:
    """16 in flight, 14 refused: all 14 were sent before the first refusal came back, so
    they say one thing once. A request sent under the lowered limit may say it again."""

    async def scenario() -> None:
        limit = AdaptiveLimit(16)
        tickets = [await limit.acquire() for _ in range(16)]
        for ticket in tickets[:14]:
            await limit.release(ticket, True, None)
        assert limit.limit == 8 and limit.cuts == 1
        for ticket in tickets[14:]:
            await limit.release(ticket, False, 0.1)
        await settle(limit, congested=True)  # sent after the cut: a new window
        assert limit.cuts == 2 and 4 <= limit.limit < 5
        assert limit.lowest == 4

    asyncio.run(scenario())


def test_the_window_is_counted_in_requests_not_seconds() -> None:
    """A refusal that comes back late from a request sent before the cut is still the old
    window, however long ago the cut was (no clock is read)."""

    async def scenario() -> None:
        limit = AdaptiveLimit(8)
        early = await limit.acquire()
        await settle(limit, congested=True)
        assert limit.limit == 4
        await limit.release(early, True, None)  # in flight at the cut: no second cut
        assert limit.limit == 4 and limit.cuts == 1
        for _ in range(6):
            await settle(limit, congested=True)
        assert limit.limit == 1  # never below one request in flight

    asyncio.run(scenario())


def test_the_limit_grows_back_additively_to_the_ceiling() -> None:
    async def scenario() -> None:
        limit = AdaptiveLimit(8)
        await settle(limit, congested=True)
        assert limit.limit == 4
        grown = 0
        while limit.limit < 8:
            await settle(limit, congested=False, latency=0.05)
            grown += 1
        assert 10 < grown < 40  # additive: about one more per window of requests
        await settle(limit, congested=False, latency=0.05)
        assert limit.limit == 8  # and never above what the user allowed

    asyncio.run(scenario())


def test_latency_far_above_its_usual_counts_as_struggling() -> None:
    async def scenario() -> None:
        limit = AdaptiveLimit(4)
        for _ in range(5):
            await settle(limit, congested=False, latency=0.1)
        assert limit.limit == 4
        await settle(limit, congested=False, latency=2.0)  # 20x the baseline
        assert limit.limit == 2

    asyncio.run(scenario())


def test_acquire_waits_while_the_limit_is_reached() -> None:
    async def scenario() -> list[str]:
        limit = AdaptiveLimit(1)
        order: list[str] = []
        ticket = await limit.acquire()

        async def second() -> None:
            await limit.acquire()
            order.append("second in")

        task = asyncio.create_task(second())
        await asyncio.sleep(0.01)
        order.append("first out")
        await limit.release(ticket, False, 0.01)
        await task
        return order

    assert asyncio.run(scenario()) == ["first out", "second in"]


def refused_share_in_phase(sb: Sandbox, seconds: float) -> tuple[int, int]:
    """(requests that arrived in the capacity phase, those refused for capacity)."""

    def at(row: dict[str, Any]) -> float:
        return datetime.fromisoformat(row["received_at"].replace("Z", "+00:00")).timestamp()

    rows = sb.requests()
    first = min(at(row) for row in rows)
    phase = [row for row in rows if at(row) - first < seconds]
    return len(phase), sum(row["fault"] == "capacity" for row in phase)


@pytest.mark.e2e
def test_a_server_that_takes_two_at_once_refuses_at_most_half_the_requests(
    tmp_path: Path,
) -> None:
    """Ceiling 16, 100 ms round trips, fast retries, and a server that takes only 2 requests
    at once for its first 3 seconds (503 beyond). Cutting once a second, 60-65% of the
    requests of that phase were refused; once per round-trip window, about 38%."""
    faults = Faults(latency=0.1, capacity=2, capacity_seconds=3.0)
    with Sandbox(api_key="rbk_test_capacity_00", customer_id="c", faults=faults) as sb:
        data = write_ndjson(tmp_path / "e.ndjson", [event(f"u{i}", i) for i in range(2000)])
        result, summary = cli_json(
            "send", str(data), "--max-users", "10", "--concurrency", "16",
            "--retry-initial-delay", "0.05", sb=sb, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        in_phase, refused = refused_share_in_phase(sb, 3.0)
        print(f"capacity phase: {refused} of {in_phase} requests refused")
        assert refused > 0  # the fault did bite
        assert refused <= in_phase / 2
        assert summary["concurrency_lowest"] <= 2
        assert seqs(sb) == list(range(2000))
        assert summary["records_read"] == summary["events_accepted"] == 2000


@pytest.mark.e2e
def test_a_503_storm_lowers_concurrency_and_every_event_still_arrives(
    tmp_path: Path,
) -> None:
    faults = Faults(seed=3, fail_rate=0.5, latency=0.02)
    with Sandbox(api_key="rbk_test_adaptive_000", customer_id="c", faults=faults) as sb:
        data = write_ndjson(tmp_path / "e.ndjson", [event(f"u{i}", i) for i in range(400)])
        result, summary = cli_json(
            "send", str(data), "--max-users", "10", "--concurrency", "8",
            "--retry-initial-delay", "0.01", "--retry-max-delay", "0.05",
            sb=sb, cwd=tmp_path,
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert summary["retries"] > 0
        assert summary["concurrency_lowest"] < 8
        assert seqs(sb) == list(range(400))


@pytest.mark.e2e
def test_a_slow_server_grows_the_grouping_buffer_so_fewer_requests_carry_more(
    tmp_path: Path,
) -> None:
    """Requests are the bottleneck (one lane, 50 ms a request): the packer holds more users
    back, so a user's events spread through the file meet in one user object. 3,000 users
    with 4 events each, interleaved: 12 requests if nothing were grouped, 3 if all were."""
    faults = Faults(latency=0.05)
    with Sandbox(api_key="rbk_test_buffer_0000", customer_id="c", faults=faults) as sb:
        records = [event(f"u{u}", n * 3000 + u) for n in range(4) for u in range(3000)]
        data = write_ndjson(tmp_path / "e.ndjson", records)
        result, summary = cli_json(
            "send", str(data), "--concurrency", "1", sb=sb, cwd=tmp_path
        )  # fmt: skip
        assert result.returncode == 0, result.stderr
        assert summary["grouping_buffer_mb"] > 1
        assert summary["requests"] < 12, summary["requests"]
        assert seqs(sb) == list(range(12_000))
        by_user: dict[str, list[int]] = {}
        for e in sb.events():
            by_user.setdefault(e["identifiers"]["user_id"], []).append(e["properties"]["seq"])
        assert all(s == sorted(s) for s in by_user.values())


def test_the_summary_names_the_grouping_buffer_only_once_it_grew() -> None:
    assert ("grouping buffer at most", "3.2 MB") in Summary(grouping_buffer_mb=3.2).rows()
    assert not any("grouping" in label for label, _ in Summary().rows())
