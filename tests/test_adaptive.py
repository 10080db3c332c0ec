"""Concurrency that adapts: fewer requests in flight while the server struggles, more again
when it recovers. The arithmetic as a unit; the effect through the real CLI and sandbox."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from conftest import cli_json, event, seqs, write_ndjson

from revbridge_cli import deliver
from revbridge_cli.deliver import AdaptiveLimit
from revbridge_cli.sandbox import Faults, Sandbox
from revbridge_cli.summary import Summary


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    clock = Clock()
    monkeypatch.setattr(deliver.time, "monotonic", clock)
    return clock


def settle(limit: AdaptiveLimit, congested: bool, latency: float | None = None) -> None:
    async def one() -> None:
        await limit.acquire()
        await limit.release(congested, latency)

    asyncio.run(one())


def test_a_struggling_server_halves_the_limit_once_a_second(clock: Clock) -> None:
    limit = AdaptiveLimit(8)
    settle(limit, congested=True)
    assert limit.limit == 4
    settle(limit, congested=True)  # the same second: one burst of 503s is one signal
    assert limit.limit == 4
    clock.now += 1.5
    settle(limit, congested=True)
    assert limit.limit == 2 and limit.lowest == 2
    for _ in range(5):
        clock.now += 1.5
        settle(limit, congested=True)
    assert limit.limit == 1  # never below one request in flight


def test_the_limit_grows_back_when_the_server_recovers(clock: Clock) -> None:
    limit = AdaptiveLimit(8)
    settle(limit, congested=True)
    assert limit.limit == 4
    grown = 0
    while limit.limit < 8:
        settle(limit, congested=False, latency=0.05)
        grown += 1
    assert 10 < grown < 40  # additive: about one more per round of requests
    settle(limit, congested=False, latency=0.05)
    assert limit.limit == 8  # and never above what the user allowed


def test_latency_far_above_its_usual_counts_as_struggling(clock: Clock) -> None:
    limit = AdaptiveLimit(4)
    for _ in range(5):
        settle(limit, congested=False, latency=0.1)
    assert limit.limit == 4
    settle(limit, congested=False, latency=2.0)  # 20x the baseline
    assert limit.limit == 2


def test_acquire_waits_while_the_limit_is_reached() -> None:
    async def scenario() -> list[str]:
        limit = AdaptiveLimit(1)
        order: list[str] = []
        await limit.acquire()

        async def second() -> None:
            await limit.acquire()
            order.append("second in")

        task = asyncio.create_task(second())
        await asyncio.sleep(0.01)
        order.append("first out")
        await limit.release(False, 0.01)
        await task
        return order

    assert asyncio.run(scenario()) == ["first out", "second in"]


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
