"""UTC millisecond timestamps: the one time shape on the wire (JavaScript ``toISOString()``)."""

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.timestamps import (
    EPOCH,
    add_ms,
    from_epoch_ms,
    from_wire_time,
    to_epoch_ms,
    to_wire_time,
    utc_ms,
)
from runlane.domain.vocabulary import ErrorCode
from tests.unit.domain.builders import raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS

aware_datetimes = st.datetimes(
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, timezone(timedelta(hours=5, minutes=30)), ZoneInfo("America/New_York")]),
)


def test_utc_ms_converts_to_utc_and_truncates_to_milliseconds() -> None:
    local = datetime(2025, 1, 2, 8, 34, 5, 678_999, tzinfo=timezone(timedelta(hours=5, minutes=30)))
    value = utc_ms(local)
    assert value == datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert value.tzinfo is UTC


def test_utc_ms_rejects_naive_datetimes() -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, utc_ms, datetime(2025, 1, 1), field="run_at")
    assert error.meta == {"field": "run_at"}
    raises_code(
        ErrorCode.CONFIGURATION_INVALID, utc_ms, datetime(2025, 1, 1), code=ErrorCode.CONFIGURATION_INVALID
    )


@pytest.mark.parametrize("value", ["2025-01-01T00:00:00Z", 0, None, 1.5])
def test_utc_ms_rejects_non_datetimes(value: object) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, utc_ms, value)


def test_wire_format_is_javascript_to_iso_string() -> None:
    value = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    assert to_wire_time(value) == "2025-01-02T03:04:05.678Z"
    assert to_wire_time(datetime(2025, 1, 2, tzinfo=UTC)) == "2025-01-02T00:00:00.000Z"
    assert to_wire_time(datetime(2025, 1, 2, 0, 0, 0, 999, tzinfo=UTC)) == "2025-01-02T00:00:00.000Z"


def test_wire_format_pads_four_digit_years_like_javascript() -> None:
    assert to_wire_time(datetime(5, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)) == "0005-01-02T03:04:05.678Z"
    assert to_wire_time(datetime(999, 12, 31, tzinfo=UTC)) == "0999-12-31T00:00:00.000Z"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2025-01-02T03:04:05.678Z", datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)),
        ("2025-01-02T03:04:05Z", datetime(2025, 1, 2, 3, 4, 5, tzinfo=UTC)),
        ("2025-01-02T08:34:05.678+05:30", datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)),
        ("2025-01-02T03:04:05.678999Z", datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)),
        # Offset-less strings are read as UTC (storage columns are UTC).
        ("2025-01-02T03:04:05.678", datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)),
    ],
)
def test_from_wire_time(text: str, expected: datetime) -> None:
    value = from_wire_time(text)
    assert value == expected
    assert value.tzinfo is UTC


@pytest.mark.parametrize(
    "value", ["", "yesterday", "2025-13-01T00:00:00Z", "2025-01-01T25:00:00Z", 1_700_000_000, None]
)
def test_from_wire_time_rejects_garbage(value: object) -> None:
    error = raises_code(ErrorCode.VALIDATION_FAILED, from_wire_time, value, field="requestedAt")
    assert error.meta == {"field": "requestedAt"}


def test_from_wire_time_accepts_aware_datetimes_and_rejects_naive_ones() -> None:
    aware = datetime(2025, 1, 1, 1, tzinfo=timezone(timedelta(hours=1)))
    assert from_wire_time(aware) == datetime(2025, 1, 1, tzinfo=UTC)
    raises_code(ErrorCode.VALIDATION_FAILED, from_wire_time, datetime(2025, 1, 1))


@PROPERTY_SETTINGS
@given(aware_datetimes)
def test_wire_round_trip_is_exact_after_truncation(value: datetime) -> None:
    text = to_wire_time(value)
    assert len(text) == 24
    assert text.endswith("Z")
    assert from_wire_time(text) == utc_ms(value)
    assert to_wire_time(from_wire_time(text)) == text


@PROPERTY_SETTINGS
@given(st.integers(min_value=-(10**13), max_value=10**13))
def test_epoch_milliseconds_round_trip(milliseconds: int) -> None:
    value = from_epoch_ms(milliseconds)
    assert value.tzinfo is UTC
    assert to_epoch_ms(value) == milliseconds
    assert add_ms(value, 1) - value == timedelta(milliseconds=1)


def test_epoch() -> None:
    assert to_epoch_ms(EPOCH) == 0
    assert to_epoch_ms(datetime(2025, 1, 1, tzinfo=UTC)) == 1_735_689_600_000
