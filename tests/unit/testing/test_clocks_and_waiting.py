"""Deterministic clocks and bounded wait helpers of runlane.testing."""

import asyncio
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import RunEventType, RunStatus
from runlane.infrastructure.memory import create_local_lane
from runlane.ports.clock import Clock
from runlane.testing import (
    TEST_ENVIRONMENT,
    append_queued_run,
    claim_queued_run,
    create_controlled_clock,
    create_step_clock,
    get_at,
    list_run_event_types,
    wait_for_condition,
    wait_for_run_event,
    wait_for_run_status,
)
from runlane.testing.run_builders import next_run_data, succeeded_event

START = datetime(2025, 1, 1, tzinfo=UTC)


def test_controlled_clock_starts_at_the_documented_default_and_moves_only_when_told() -> None:
    clock = create_controlled_clock()
    assert isinstance(clock, Clock)
    assert clock.now() == START
    assert clock.now() == START
    assert clock.advance("30s") == START + timedelta(seconds=30)
    assert clock.advance(timedelta(milliseconds=5)) == START + timedelta(seconds=30, milliseconds=5)
    assert clock.set(START - timedelta(days=1)) == START - timedelta(days=1)
    assert clock.now() == START - timedelta(days=1)


def test_controlled_clock_truncates_to_milliseconds_and_rejects_bad_input() -> None:
    clock = create_controlled_clock(datetime(2025, 6, 1, 12, 0, 0, 123_456, tzinfo=UTC))
    assert clock.now().microsecond == 123_000
    with pytest.raises(RunlaneError):
        clock.set(datetime(2025, 1, 1))  # naive
    with pytest.raises(RunlaneError):
        clock.advance("soon")
    with pytest.raises(RunlaneError):
        clock.advance(timedelta(microseconds=1))


def test_step_clock_advances_by_its_step_on_every_read() -> None:
    clock = create_step_clock(START, "1s")
    assert isinstance(clock, Clock)
    assert [clock.now() for _ in range(3)] == [START + timedelta(seconds=i) for i in range(3)]
    assert clock.peek() == START + timedelta(seconds=3)
    assert create_step_clock().now() == START


async def test_wait_for_condition_returns_the_truthy_value_of_sync_and_async_conditions() -> None:
    calls = {"n": 0}

    def eventually() -> int:
        calls["n"] += 1
        return calls["n"] if calls["n"] >= 3 else 0

    assert await wait_for_condition(eventually, timeout=1, interval=0.001) == 3

    async def ready() -> str:
        await asyncio.sleep(0)
        return "ok"

    assert await wait_for_condition(ready) == "ok"


async def test_wait_for_condition_times_out_with_a_message() -> None:
    with pytest.raises(TimeoutError, match="never true"):
        await wait_for_condition(lambda: False, timeout=0.05, interval=0.01, message="never true")
    with pytest.raises(TimeoutError, match=r"within 0\.05s"):
        await wait_for_condition(lambda: None, timeout=0.05, interval=0.01)
    with pytest.raises(ValueError):
        await wait_for_condition(lambda: True, timeout=0)


def test_get_at_fails_loudly_out_of_range() -> None:
    assert get_at([1, 2, 3], 0) == 1
    assert get_at((1, 2, 3), -1) == 3
    with pytest.raises(AssertionError, match="index 3, but the sequence has 3 items"):
        get_at([1, 2, 3], 3)
    with pytest.raises(AssertionError):
        get_at([], -1)


async def test_waiting_for_a_run_status_and_event_through_a_runtime_like_value() -> None:
    clock = create_controlled_clock()
    lane = create_local_lane()
    runtime = SimpleNamespace(environment=TEST_ENVIRONMENT, lane=lane)
    await append_queued_run(lane, clock, "run_wait")
    claimed = await claim_queued_run(lane, clock, "run_wait")

    async def finish_later() -> None:
        await asyncio.sleep(0.02)
        data = next_run_data(claimed.run, succeeded_event(claimed.run, now=clock.now()))
        await lane.storage.append_run_events(data.append_command(clock.now()))

    task = asyncio.create_task(finish_later())
    done = await wait_for_run_status(runtime, "run_wait", RunStatus.SUCCEEDED, timeout=2)
    await task
    assert done.status is RunStatus.SUCCEEDED
    event = await wait_for_run_event(runtime, "run_wait", RunEventType.SUCCEEDED, timeout=1)
    assert event.sequence == 4
    assert await list_run_event_types(runtime, "run_wait") == (
        "run.created",
        "run.delivery_requested",
        "run.lease_claimed",
        "run.succeeded",
    )
    assert await wait_for_run_status(runtime, "run_wait", ["failed", "succeeded"]) == done


async def test_wait_for_run_status_reports_the_last_status_on_timeout() -> None:
    clock = create_controlled_clock()
    lane = create_local_lane()
    runtime = SimpleNamespace(environment=TEST_ENVIRONMENT, lane=lane)
    await append_queued_run(lane, clock, "run_stuck")
    with pytest.raises(TimeoutError, match=r"run_stuck did not reach succeeded .*last status: queued"):
        await wait_for_run_status(runtime, "run_stuck", RunStatus.SUCCEEDED, timeout=0.05)
    with pytest.raises(TimeoutError, match="last status: missing"):
        await wait_for_run_status(runtime, "run_missing", "queued", timeout=0.05)
    with pytest.raises(TimeoutError, match=r"no run.failed event .*run.created"):
        await wait_for_run_event(runtime, "run_stuck", "run.failed", timeout=0.05)
