"""Schedules: validation, epoch-aligned intervals, cron in a time zone, deterministic occurrences."""

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.cron import latest_cron_fire, next_cron_fire, validate_cron, validate_time_zone
from runlane.domain.durations import parse_duration
from runlane.domain.queues import queue
from runlane.domain.schedules import Schedule, occurrence_id, schedule
from runlane.domain.timestamps import from_epoch_ms, from_wire_time, to_epoch_ms
from runlane.domain.vocabulary import ErrorCode, ScheduleType
from tests.unit.domain.builders import raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS

CONFIG = ErrorCode.CONFIGURATION_INVALID
T = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


def utc(text: str) -> datetime:
    return from_wire_time(text)


# --- validation ------------------------------------------------------------------------------------


def test_the_kind_is_inferred_from_exactly_one_option() -> None:
    assert schedule("once", run_at=T).type is ScheduleType.ONCE
    assert schedule("interval", every="5m").type is ScheduleType.INTERVAL
    assert schedule("cron", cron="0 9 * * *").type is ScheduleType.CRON
    assert schedule("s", every="5m").every == parse_duration("5m")
    assert Schedule(id="s", every="1h").every == parse_duration("1h")


def test_defaults() -> None:
    entry = schedule("s", every="1m")
    assert entry.enabled is True
    assert entry.queue is None
    assert entry.time_zone is None
    assert entry.payload is None


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"run_at": T, "every": "5m"},
        {"run_at": T, "cron": "0 9 * * *"},
        {"every": "5m", "cron": "0 9 * * *"},
        {"run_at": T, "every": "5m", "cron": "0 9 * * *"},
    ],
)
def test_zero_or_several_kinds_are_rejected(kwargs: dict[str, Any]) -> None:
    raises_code(CONFIG, schedule, "s", **kwargs)
    raises_code(CONFIG, Schedule, id="s", **kwargs)


@pytest.mark.parametrize(
    "cron",
    [
        "",
        "   ",
        "not a cron",
        "61 * * * *",
        "* 25 * * *",
        "* * 32 * *",
        "* * * 13 *",
        "* * * * 8",
        "* * * *",
        "0 0 9 * * *",  # six fields: seconds are not part of the documented syntax
        "0 9 * * * 2025",
        "@daily",
        "0 0 30 2 *",  # valid syntax, but February 30th never comes
        "0 0 31 4 *",
        5,
    ],
)
def test_bad_cron_expressions_are_rejected(cron: Any) -> None:
    raises_code(CONFIG, schedule, "s", cron=cron)
    raises_code(CONFIG, validate_cron, cron)


@pytest.mark.parametrize(
    "cron", ["0 9 * * *", "*/15 * * * *", "0 0 1 1 *", "30 2 * * 1-5", "0 9 * * MON", "0 0 29 2 *"]
)
def test_valid_cron_expressions(cron: str) -> None:
    assert validate_cron(cron) == cron
    assert schedule("s", cron=cron).cron == cron


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "EST5EDT/Nowhere", "", "../etc/passwd", 5])
def test_unknown_time_zones_are_rejected(zone: Any) -> None:
    raises_code(CONFIG, schedule, "s", cron="0 9 * * *", time_zone=zone)
    raises_code(CONFIG, validate_time_zone, zone)


def test_time_zone_needs_a_cron_schedule() -> None:
    raises_code(CONFIG, schedule, "s", every="1h", time_zone="UTC")
    raises_code(CONFIG, schedule, "s", run_at=T, time_zone="UTC")


@pytest.mark.parametrize("every", ["0s", "0ms", "-5m", "5", "5 m", "1.5h", "1w", "", 300, timedelta(0)])
def test_bad_intervals_are_rejected(every: Any) -> None:
    raises_code(CONFIG, schedule, "s", every=every)
    raises_code(CONFIG, Schedule, id="s", every=every)


@pytest.mark.parametrize("schedule_id", ["", "nightly:report", None, 7])
def test_schedule_ids_are_validated(schedule_id: Any) -> None:
    raises_code(CONFIG, schedule, schedule_id, every="1h")


def test_other_options_are_validated() -> None:
    raises_code(CONFIG, schedule, "s", run_at=datetime(2025, 1, 1))
    raises_code(CONFIG, schedule, "s", every="1h", queue="default")
    raises_code(CONFIG, schedule, "s", every="1h", enabled="yes")
    assert schedule("s", every="1h", queue=queue("reports")).queue == queue("reports")


# --- once ------------------------------------------------------------------------------------------


def test_once_is_due_at_and_after_its_time() -> None:
    entry = schedule("s", run_at=T)
    assert entry.latest_due_fire(T - timedelta(milliseconds=1)) is None
    assert entry.latest_due_fire(T) == T
    assert entry.latest_due_fire(T + timedelta(days=400)) == T
    assert entry.next_fire_after(T - timedelta(milliseconds=1)) == T
    assert entry.next_fire_after(T) is None


def test_once_normalises_its_time_to_utc_ms() -> None:
    local = datetime(2025, 6, 1, 14, 0, 0, 999_999, tzinfo=timezone(timedelta(hours=2)))
    assert schedule("s", run_at=local).run_at == T + timedelta(milliseconds=999)


# --- interval --------------------------------------------------------------------------------------


def test_interval_fire_times_are_aligned_to_the_unix_epoch() -> None:
    entry = schedule("s", every="1h")
    now = utc("2025-06-01T12:34:56.789Z")
    assert entry.latest_due_fire(now) == utc("2025-06-01T12:00:00.000Z")
    assert entry.next_fire_after(now) == utc("2025-06-01T13:00:00.000Z")
    assert entry.latest_due_fire(utc("2025-06-01T12:00:00.000Z")) == utc("2025-06-01T12:00:00.000Z")
    assert entry.next_fire_after(utc("2025-06-01T12:00:00.000Z")) == utc("2025-06-01T13:00:00.000Z")
    seven_minutes = schedule("s", every="7m")
    assert to_epoch_ms(seven_minutes.latest_due_fire(now) or T) % 420_000 == 0


@PROPERTY_SETTINGS
@given(
    every_ms=st.integers(min_value=1, max_value=30 * 86_400_000),
    now_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
)
def test_interval_latest_due_fire_is_floor_of_now(every_ms: int, now_ms: int) -> None:
    entry = schedule("s", every=f"{every_ms}ms")
    now = from_epoch_ms(now_ms)
    fire = entry.latest_due_fire(now)
    assert fire == from_epoch_ms(now_ms // every_ms * every_ms)
    assert fire is not None
    assert fire <= now < fire + timedelta(milliseconds=every_ms)
    assert entry.next_fire_after(now) == fire + timedelta(milliseconds=every_ms)


# --- cron ------------------------------------------------------------------------------------------


def test_cron_latest_due_fire_in_utc() -> None:
    entry = schedule("s", cron="0 9 * * *")
    assert entry.latest_due_fire(utc("2025-06-01T08:59:59.999Z")) == utc("2025-05-31T09:00:00.000Z")
    assert entry.latest_due_fire(utc("2025-06-01T09:00:00.000Z")) == utc("2025-06-01T09:00:00.000Z")
    assert entry.latest_due_fire(utc("2025-06-01T09:00:00.500Z")) == utc("2025-06-01T09:00:00.000Z")
    assert entry.latest_due_fire(utc("2025-06-01T23:00:00.000Z")) == utc("2025-06-01T09:00:00.000Z")
    assert entry.next_fire_after(utc("2025-06-01T09:00:00.000Z")) == utc("2025-06-02T09:00:00.000Z")
    assert entry.next_fire_after(utc("2025-06-01T08:59:59.999Z")) == utc("2025-06-01T09:00:00.000Z")


def test_cron_is_read_in_its_time_zone() -> None:
    entry = schedule("s", cron="0 9 * * *", time_zone="America/New_York")
    # June: EDT (UTC-4), so 09:00 local is 13:00 UTC.
    assert entry.latest_due_fire(utc("2025-06-01T13:00:00.000Z")) == utc("2025-06-01T13:00:00.000Z")
    assert entry.latest_due_fire(utc("2025-06-01T12:59:59.999Z")) == utc("2025-05-31T13:00:00.000Z")
    # January: EST (UTC-5), so 14:00 UTC.
    assert entry.latest_due_fire(utc("2025-01-15T14:30:00.000Z")) == utc("2025-01-15T14:00:00.000Z")


def test_cron_across_the_spring_forward_day_in_new_york() -> None:
    # 2025-03-09: at 02:00 EST clocks jump to 03:00 EDT.
    daily = schedule("s", cron="0 9 * * *", time_zone="America/New_York")
    assert daily.latest_due_fire(utc("2025-03-09T12:59:00.000Z")) == utc("2025-03-08T14:00:00.000Z")
    assert daily.latest_due_fire(utc("2025-03-09T13:00:00.000Z")) == utc("2025-03-09T13:00:00.000Z")
    assert daily.next_fire_after(utc("2025-03-08T14:00:00.000Z")) == utc("2025-03-09T13:00:00.000Z")
    hourly = schedule("s", cron="30 * * * *", time_zone="America/New_York")
    # 01:30 EST = 06:30Z; 02:30 does not exist that day; the next is 03:30 EDT = 07:30Z.
    assert hourly.latest_due_fire(utc("2025-03-09T07:10:00.000Z")) == utc("2025-03-09T06:30:00.000Z")
    assert hourly.next_fire_after(utc("2025-03-09T06:30:00.000Z")) == utc("2025-03-09T07:30:00.000Z")
    assert hourly.latest_due_fire(utc("2025-03-09T07:45:00.000Z")) == utc("2025-03-09T07:30:00.000Z")


def test_cron_across_the_fall_back_day_in_new_york() -> None:
    # 2025-11-02: at 02:00 EDT clocks go back to 01:00 EST, so 01:xx happens twice.
    daily = schedule("s", cron="0 9 * * *", time_zone="America/New_York")
    assert daily.latest_due_fire(utc("2025-11-02T13:59:00.000Z")) == utc("2025-11-01T13:00:00.000Z")
    assert daily.latest_due_fire(utc("2025-11-02T14:00:00.000Z")) == utc("2025-11-02T14:00:00.000Z")
    hourly = schedule("s", cron="30 * * * *", time_zone="America/New_York")
    # An hourly schedule keeps firing every real hour: 00:30 EDT, 01:30 EDT, 01:30 EST, 02:30 EST.
    for fire in ("04:30", "05:30", "06:30", "07:30"):
        at_fire = utc(f"2025-11-02T{fire}:00.000Z")
        assert hourly.latest_due_fire(at_fire) == at_fire
        assert hourly.latest_due_fire(at_fire + timedelta(minutes=59)) == at_fire
        assert hourly.next_fire_after(at_fire) == at_fire + timedelta(hours=1)


ZONES = [
    "UTC",
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Asia/Kolkata",
    "America/Sao_Paulo",
]
CRONS = ["0 9 * * *", "30 * * * *", "*/15 * * * *", "30 1 * * *", "0 2 * * *", "45 23 * * 0", "0 0 1 * *"]
HOUR_MS = 3_600_000


def offset_changes(zone: str, year: int) -> list[int]:
    """Epoch milliseconds (to the minute) at which ``zone`` changes its UTC offset during ``year``."""
    tz = ZoneInfo(zone)
    start = to_epoch_ms(datetime(year, 1, 1, tzinfo=UTC))
    end = to_epoch_ms(datetime(year + 1, 1, 1, tzinfo=UTC))

    def offset(ms: int) -> timedelta | None:
        return from_epoch_ms(ms).astimezone(tz).utcoffset()

    changes = []
    for hour in range(start, end, HOUR_MS):
        if offset(hour) != offset(hour + HOUR_MS):
            low, high = hour, hour + HOUR_MS
            while high - low > 60_000:
                middle = (low + high) // 2
                low, high = (middle, high) if offset(middle) == offset(low) else (low, middle)
            changes.append(high)
    return changes


DST_CHANGES = [(zone, change) for zone in ZONES for change in offset_changes(zone, 2025)]
# Uniform over a year, plus a day either side of every 2025 offset change (where croniter's
# backward walk is easiest to get wrong).
zoned_instants = st.tuples(
    st.sampled_from(ZONES),
    st.integers(
        min_value=to_epoch_ms(utc("2025-01-01T00:00:00.000Z")),
        max_value=to_epoch_ms(utc("2026-01-01T00:00:00.000Z")),
    ),
) | st.sampled_from(DST_CHANGES).flatmap(
    lambda change: st.tuples(
        st.just(change[0]),
        st.integers(min_value=change[1] - 26 * HOUR_MS, max_value=change[1] + 26 * HOUR_MS),
    )
)


def test_the_zones_under_test_do_change_their_offsets() -> None:
    assert len(offset_changes("America/New_York", 2025)) == 2
    assert len(offset_changes("Australia/Lord_Howe", 2025)) == 2  # a 30-minute shift
    assert offset_changes("UTC", 2025) == []


@PROPERTY_SETTINGS
@given(cron=st.sampled_from(CRONS), zoned=zoned_instants)
def test_cron_latest_and_next_fire_agree_in_every_zone(cron: str, zoned: tuple[str, int]) -> None:
    zone, now_ms = zoned
    now = from_epoch_ms(now_ms)
    latest = latest_cron_fire(cron, zone, now)
    following = next_cron_fire(cron, zone, now)
    assert latest <= now < following
    # No fire time is skipped between them: the one after `latest` is the one after `now`.
    assert next_cron_fire(cron, zone, latest) == following
    assert latest_cron_fire(cron, zone, following) == following
    assert latest.microsecond % 1000 == 0
    assert latest.second == 0


def test_cron_fire_times_are_exact_on_the_minute() -> None:
    fire = latest_cron_fire("*/15 * * * *", None, utc("2025-06-01T12:14:59.999Z"))
    assert fire == utc("2025-06-01T12:00:00.000Z")
    assert fire.tzinfo is UTC


# --- occurrence identity ---------------------------------------------------------------------------


def test_occurrence_ids_are_deterministic() -> None:
    fire = utc("2025-06-01T09:00:00.000Z")
    assert occurrence_id("nightly", fire) == occurrence_id("nightly", fire)
    assert occurrence_id("nightly", fire) == "nightly@1748768400000"
    same_instant = fire.astimezone(timezone(timedelta(hours=-4)))
    assert occurrence_id("nightly", same_instant) == occurrence_id("nightly", fire)
    assert occurrence_id("nightly", fire) != occurrence_id("nightly", fire + timedelta(milliseconds=1))
    assert occurrence_id("nightly", fire) != occurrence_id("weekly", fire)
    assert ":" not in occurrence_id("nightly", fire)


@PROPERTY_SETTINGS
@given(
    every_ms=st.integers(min_value=1_000, max_value=86_400_000),
    now_ms=st.integers(min_value=0, max_value=4_102_444_800_000),
    jitter_ms=st.integers(min_value=0, max_value=999),
)
def test_processes_that_tick_within_one_interval_compute_the_same_occurrence(
    every_ms: int, now_ms: int, jitter_ms: int
) -> None:
    entry = schedule("report", every=f"{every_ms}ms")
    first = entry.latest_due_fire(from_epoch_ms(now_ms))
    assert first is not None
    later = first + timedelta(milliseconds=min(jitter_ms, every_ms - 1))
    second = entry.latest_due_fire(later)
    assert second is not None
    assert occurrence_id("report", first) == occurrence_id("report", second)
