"""Retry budget and backoff math (runtime-api.md §12, GAPS #27)."""

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.durations import parse_duration
from runlane.domain.retry_policy import (
    DEFAULT_BACKOFF,
    NO_RETRY,
    RetryBackoff,
    RetryPolicy,
    retry_backoff,
)
from runlane.domain.vocabulary import ErrorCode, RetryBackoffType
from tests.unit.domain.builders import raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS

CONFIG = ErrorCode.CONFIGURATION_INVALID
SECOND = 1_000
MINUTE = 60_000

delays = st.integers(min_value=1, max_value=10 * 24 * 3_600_000)
retry_numbers = st.integers(min_value=1, max_value=10_000)


def test_documented_exponential_sequence() -> None:
    backoff = retry_backoff("exponential", "30s", "5m")
    assert [backoff.delay_ms(n) for n in range(1, 8)] == [
        30 * SECOND,
        60 * SECOND,
        120 * SECOND,
        240 * SECOND,
        300 * SECOND,
        300 * SECOND,
        300 * SECOND,
    ]


def test_documented_three_attempt_example() -> None:
    # maxAttempts 3: attempt 1 fails -> +30s, attempt 2 fails -> +60s, attempt 3 fails -> failed.
    policy = RetryPolicy(3, retry_backoff(RetryBackoffType.EXPONENTIAL, "30s", "5m"))
    assert policy.next_retry_delay_ms(failures=1, retryable=True) == 30 * SECOND
    assert policy.next_retry_delay_ms(failures=2, retryable=True) == 60 * SECOND
    assert policy.next_retry_delay_ms(failures=3, retryable=True) is None


def test_default_backoff_is_exponential_30s_capped_at_5m() -> None:
    assert (
        RetryBackoff(RetryBackoffType.EXPONENTIAL, parse_duration("30s"), parse_duration("5m"))
        == DEFAULT_BACKOFF
    )
    assert RetryPolicy(5).resolved_backoff == DEFAULT_BACKOFF


def test_a_duration_string_means_fixed_backoff() -> None:
    policy = RetryPolicy(4, "10s")
    assert policy.resolved_backoff == RetryBackoff(RetryBackoffType.FIXED, parse_duration("10s"))
    assert [policy.next_retry_delay_ms(failures=n, retryable=True) for n in (1, 2, 3)] == [10_000] * 3


def test_no_retry_allows_one_attempt() -> None:
    assert NO_RETRY.max_attempts == 1
    assert NO_RETRY.next_retry_delay_ms(failures=1, retryable=True) is None


def test_exponential_without_a_cap_keeps_doubling() -> None:
    backoff = retry_backoff("exponential", "1s")
    assert [backoff.delay_ms(n) for n in (1, 2, 3, 10)] == [1_000, 2_000, 4_000, 512_000]


def test_huge_retry_numbers_stay_cheap_when_capped() -> None:
    assert retry_backoff("exponential", "1ms", "1d").delay_ms(10**9) == 86_400_000


@PROPERTY_SETTINGS
@given(delay=delays, n=retry_numbers)
def test_fixed_backoff_is_constant(delay: int, n: int) -> None:
    backoff = RetryBackoff(RetryBackoffType.FIXED, timedelta(milliseconds=delay))  # type: ignore[arg-type]
    assert backoff.delay_ms(n) == delay


@PROPERTY_SETTINGS
@given(
    delay=delays, factor=st.integers(min_value=1, max_value=2**20), n=st.integers(min_value=1, max_value=200)
)
def test_exponential_backoff_doubles_until_the_cap(delay: int, factor: int, n: int) -> None:
    cap = delay * factor
    backoff = RetryBackoff(
        RetryBackoffType.EXPONENTIAL,
        timedelta(milliseconds=delay),  # type: ignore[arg-type]
        timedelta(milliseconds=cap),  # type: ignore[arg-type]
    )
    assert backoff.delay_ms(n) == min(delay * 2 ** (n - 1), cap)
    assert delay <= backoff.delay_ms(n) <= cap
    assert backoff.delay_ms(n + 1) >= backoff.delay_ms(n)
    if backoff.delay_ms(n + 1) < cap:
        assert backoff.delay_ms(n + 1) == 2 * backoff.delay_ms(n)


@PROPERTY_SETTINGS
@given(
    max_attempts=st.integers(min_value=1, max_value=50),
    failures=st.integers(min_value=1, max_value=60),
    retryable=st.booleans(),
    fixed=st.booleans(),
)
def test_next_retry_delay_is_none_exactly_when_the_budget_is_spent_or_not_retryable(
    max_attempts: int, failures: int, retryable: bool, fixed: bool
) -> None:
    policy = RetryPolicy(max_attempts, "7s" if fixed else retry_backoff("exponential", "30s", "5m"))
    delay = policy.next_retry_delay_ms(failures=failures, retryable=retryable)
    if failures >= max_attempts or not retryable:
        assert delay is None
    else:
        assert delay == policy.resolved_backoff.delay_ms(failures)
        assert delay > 0


@pytest.mark.parametrize("max_attempts", [0, -1, True, False, 1.5, "3", None])
def test_max_attempts_must_be_a_positive_integer(max_attempts: object) -> None:
    raises_code(CONFIG, RetryPolicy, max_attempts)


@pytest.mark.parametrize("backoff", ["0s", "5", "5 m", "soon", 30, 1.5, {"type": "fixed"}])
def test_bad_backoff_options_are_configuration_errors(backoff: object) -> None:
    raises_code(CONFIG, RetryPolicy, 3, backoff)


@pytest.mark.parametrize(
    ("type_", "delay", "max_delay"),
    [
        ("linear", "1s", None),
        ("", "1s", None),
        ("fixed", "0s", None),
        ("fixed", "1.5s", None),
        ("exponential", "1m", "30s"),
        ("exponential", "1s", "0s"),
        ("exponential", "1s", "forever"),
    ],
)
def test_bad_backoffs_are_configuration_errors(type_: str, delay: str, max_delay: str | None) -> None:
    raises_code(CONFIG, retry_backoff, type_, delay, max_delay)
    raises_code(CONFIG, RetryBackoff, type_, delay, max_delay)


def test_max_delay_equal_to_delay_is_allowed() -> None:
    backoff = retry_backoff("exponential", "1m", "60s")
    assert [backoff.delay_ms(n) for n in (1, 2, 3)] == [MINUTE] * 3


@pytest.mark.parametrize("retry_number", [0, -1])
def test_retry_numbers_start_at_one(retry_number: int) -> None:
    raises_code(ErrorCode.INVARIANT_VIOLATION, DEFAULT_BACKOFF.delay_ms, retry_number)
