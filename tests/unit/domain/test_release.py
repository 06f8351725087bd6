"""Release: business waiting with exactly one of a delay or a time (runtime-api.md §13, GAPS #36)."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.durations import parse_duration
from runlane.domain.release import TaskRelease, release
from runlane.domain.vocabulary import ErrorCode
from tests.unit.domain.builders import T0, raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS

VALIDATION = ErrorCode.VALIDATION_FAILED


def test_release_with_a_duration_string() -> None:
    value = release("5m", reason="waiting_for_export", meta={"exportId": "e1"})
    assert value.delay == parse_duration("5m")
    assert value.run_at is None
    assert value.reason == "waiting_for_export"
    assert value.meta == {"exportId": "e1"}
    assert value.resolve_run_at(T0) == T0 + timedelta(minutes=5)


def test_release_with_a_timedelta() -> None:
    assert release(timedelta(seconds=90)).resolve_run_at(T0) == T0 + timedelta(seconds=90)


def test_release_until_an_aware_datetime_is_normalised_to_utc_ms() -> None:
    local = datetime(2025, 1, 1, 14, 0, 0, 123_456, tzinfo=timezone(timedelta(hours=2)))
    value = release(local)
    assert value.delay is None
    assert value.run_at == datetime(2025, 1, 1, 12, 0, 0, 123_000, tzinfo=UTC)


def test_a_release_time_in_the_past_resolves_to_now() -> None:
    assert release(T0 - timedelta(hours=1)).resolve_run_at(T0) == T0
    assert release(T0 + timedelta(hours=1)).resolve_run_at(T0) == T0 + timedelta(hours=1)


def test_task_release_accepts_duration_strings_directly() -> None:
    value = TaskRelease(delay="30s")  # type: ignore[arg-type]
    assert value.delay == parse_duration("30s")
    assert value.resolve_run_at(T0) == T0 + timedelta(seconds=30)


@pytest.mark.parametrize(
    "delay", ["0s", "5", "5 m", "1.5h", "-1s", "", 5, 1.5, None, timedelta(0), timedelta(seconds=-1)]
)
def test_release_rejects_bad_delays(delay: Any) -> None:
    raises_code(VALIDATION, release, delay)


def test_release_rejects_naive_datetimes() -> None:
    raises_code(VALIDATION, release, datetime(2025, 1, 1))


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"delay": parse_duration("1s"), "run_at": T0},
        {"delay": "1s", "run_at": T0},
        {"delay": 5},
        {"delay": "0s"},
        {"run_at": "2025-01-01T00:00:00Z"},
        {"run_at": datetime(2025, 1, 1)},
        {"delay": parse_duration("1s"), "reason": ""},
        {"delay": parse_duration("1s"), "reason": 5},
        {"delay": parse_duration("1s"), "meta": [1]},
        {"delay": parse_duration("1s"), "meta": {"x": float("nan")}},
    ],
)
def test_task_release_rejects_bad_values(kwargs: dict[str, Any]) -> None:
    raises_code(VALIDATION, TaskRelease, **kwargs)


@pytest.mark.parametrize(("reason", "meta"), [("", None), (None, {"a": {1, 2}}), (None, "meta")])
def test_release_rejects_bad_options(reason: Any, meta: Any) -> None:
    raises_code(VALIDATION, release, "1s", reason=reason, meta=meta)


@PROPERTY_SETTINGS
@given(st.integers(min_value=1, max_value=10**6), st.sampled_from(["ms", "s", "m", "h", "d"]))
def test_delay_resolves_to_now_plus_the_duration(n: int, unit: str) -> None:
    value = release(f"{n}{unit}")
    assert value.delay is not None
    assert value.resolve_run_at(T0) - T0 == timedelta(milliseconds=value.delay.milliseconds)
