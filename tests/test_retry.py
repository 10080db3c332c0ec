"""The retry policy as pure arithmetic: no clock, no sleep, no network."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from revbridge_cli.config.retry import RetryPolicy, parse_retry_after

NOW = datetime(2026, 1, 15, 14, 30, 0, tzinfo=UTC)


def test_default_backoff_is_the_vendors_1_2_4_capped_at_60() -> None:
    policy = RetryPolicy()
    assert [policy.backoff(n) for n in range(8)] == [1, 2, 4, 8, 16, 32, 60, 60]


def test_backoff_never_overflows_after_many_retries() -> None:
    assert RetryPolicy(max_delay=60).backoff(10_000) == 60


def test_initial_delay_and_cap_are_settable() -> None:
    policy = RetryPolicy(initial_delay=0.01, max_delay=0.05)
    assert [policy.backoff(n) for n in range(5)] == pytest.approx([0.01, 0.02, 0.04, 0.05, 0.05])


@pytest.mark.parametrize("rand", [0.0, 0.25, 0.5, 0.999999])
@pytest.mark.parametrize("retries", [0, 3, 9])
def test_jitter_only_shortens_and_by_at_most_half(rand: float, retries: int) -> None:
    policy = RetryPolicy()
    full = policy.backoff(retries, 0.0)
    wait = policy.backoff(retries, rand)
    assert full / 2 <= wait <= full


def test_jitter_at_the_extremes() -> None:
    policy = RetryPolicy()
    assert policy.backoff(2, 0.0) == 4
    assert policy.backoff(2, 1.0) == 2


def test_jitter_larger_than_half_is_refused() -> None:
    with pytest.raises(ValueError, match="at most half"):
        RetryPolicy(jitter=0.6)


def test_negative_settings_are_refused() -> None:
    with pytest.raises(ValueError):
        RetryPolicy(max_retries=-1)
    with pytest.raises(ValueError):
        RetryPolicy(initial_delay=-1)


def test_max_retries_zero_means_no_retry_at_all() -> None:
    policy = RetryPolicy(max_retries=0)
    assert not policy.may_retry(0)


def test_max_retries_counts_retries_not_attempts() -> None:
    policy = RetryPolicy(max_retries=2)
    assert [policy.may_retry(n) for n in range(4)] == [True, True, False, False]


@pytest.mark.parametrize("status", [429, 502, 503, 504])
def test_retryable_statuses(status: int) -> None:
    assert RetryPolicy().is_retryable(status)


@pytest.mark.parametrize("status", [200, 202, 400, 401, 403, 404, 413, 500])
def test_never_retried_statuses(status: int) -> None:
    assert not RetryPolicy().is_retryable(status)


def test_retry_after_seconds_replaces_the_backoff() -> None:
    policy = RetryPolicy()
    assert policy.delay(0, "7") == 7
    assert policy.delay(5, "0") == 0


def test_retry_after_is_capped_at_max_delay() -> None:
    assert RetryPolicy(max_delay=60).delay(0, "3600") == 60
    assert RetryPolicy(max_delay=2).delay(0, "5") == 2


def test_retry_after_http_date() -> None:
    header = "Thu, 15 Jan 2026 14:30:20 GMT"
    assert parse_retry_after(header, NOW) == 20
    assert RetryPolicy().delay(0, header, now=NOW) == 20


def test_retry_after_date_in_the_past_is_zero() -> None:
    assert parse_retry_after("Thu, 15 Jan 2026 14:00:00 GMT", NOW) == 0


@pytest.mark.parametrize("garbage", ["soon", "", "  ", "nan", "Thu, 99 Foo 2026"])
def test_unreadable_retry_after_falls_back_to_backoff(garbage: str) -> None:
    assert parse_retry_after(garbage, NOW) is None
    assert RetryPolicy().delay(3, garbage, now=NOW) == 8


def test_negative_retry_after_is_zero() -> None:
    assert parse_retry_after("-5") == 0


def test_retry_after_is_not_jittered() -> None:
    assert RetryPolicy().delay(0, "4", rand=0.99) == 4
