"""Schedules: tick materialises the latest due occurrence once, as an ordinary run with source schedule."""

import asyncio
from datetime import UTC, datetime, timedelta

from runlane import (
    RunSourceType,
    RunStatus,
    Schedule,
    TaskContext,
    occurrence_id,
    queue,
    task,
)
from runlane.application.runtime import Runlane
from runlane.domain.run_record import RunSummary
from runlane.infrastructure.memory import create_local_storage
from runlane.testing import ControlledClock
from tests.unit.application.support import (
    DEFAULT_QUEUE,
    Harness,
    YieldingStorage,
    lane_with_storage,
    noop,
)


async def _runs(runtime: Runlane) -> list[RunSummary]:
    page = await runtime.runs.list(limit=500, sort_direction="asc")
    assert page.next_cursor is None
    return list(page.data)


async def _occurrences(runtime: Runlane) -> list[str | None]:
    return [run.source.occurrence_id for run in await _runs(runtime)]


async def test_interval_schedule_materialises_each_occurrence_once(
    harness: Harness, clock: ControlledClock
) -> None:
    clock.set(datetime(2025, 1, 1, 0, 2, tzinfo=UTC))
    ping = task("ops.ping", run=noop, schedule=[Schedule(id="ping.5m", every="5m", payload={"p": 1})])
    runtime = harness.runtime([ping])

    first = await runtime.tick()
    assert first.materialized_schedules == 1
    assert (await runtime.tick()).materialized_schedules == 0
    clock.set(datetime(2025, 1, 1, 0, 4, 59, 999_000, tzinfo=UTC))
    assert (await runtime.tick()).materialized_schedules == 0
    clock.set(datetime(2025, 1, 1, 0, 5, tzinfo=UTC))
    assert (await runtime.tick()).materialized_schedules == 1
    assert (await runtime.tick()).materialized_schedules == 0

    runs = await _runs(runtime)
    assert [r.source.occurrence_id for r in runs] == [
        occurrence_id("ping.5m", datetime(2025, 1, 1, 0, 0, tzinfo=UTC)),  # epoch-aligned, latest due
        occurrence_id("ping.5m", datetime(2025, 1, 1, 0, 5, tzinfo=UTC)),
    ]
    for run in runs:
        assert run.source.type is RunSourceType.SCHEDULE
        assert run.source.schedule_id == "ping.5m"
        assert run.task_id == "ops.ping"
        assert run.status is RunStatus.QUEUED
    full = await runtime.runs.get(runs[0].id)
    assert full is not None
    assert full.payload == {"p": 1}


async def test_missed_interval_occurrences_are_not_back_filled(
    harness: Harness, clock: ControlledClock
) -> None:
    ping = task("ops.ping", run=noop, schedule=[Schedule(id="ping.5m", every="5m")])
    runtime = harness.runtime([ping])
    await runtime.tick()

    clock.advance("32m")
    ticked = await runtime.tick()

    assert ticked.materialized_schedules == 1
    assert (await _occurrences(runtime))[-1] == occurrence_id(
        "ping.5m", datetime(2025, 1, 1, 0, 30, tzinfo=UTC)
    )


async def test_cron_schedule_fires_once_per_occurrence(harness: Harness, clock: ControlledClock) -> None:
    digest = task("digests.daily", run=noop, schedule=[Schedule(id="digest.9am", cron="0 9 * * *")])
    runtime = harness.runtime([digest])
    clock.set(datetime(2025, 1, 1, 8, 0, tzinfo=UTC))

    assert (await runtime.tick()).materialized_schedules == 1  # the latest due: yesterday 09:00
    clock.set(datetime(2025, 1, 1, 8, 59, 59, 999_000, tzinfo=UTC))
    assert (await runtime.tick()).materialized_schedules == 0
    clock.set(datetime(2025, 1, 1, 9, 0, tzinfo=UTC))
    assert (await runtime.tick()).materialized_schedules == 1
    clock.set(datetime(2025, 1, 1, 17, 0, tzinfo=UTC))
    assert (await runtime.tick()).materialized_schedules == 0

    assert await _occurrences(runtime) == [
        occurrence_id("digest.9am", datetime(2024, 12, 31, 9, 0, tzinfo=UTC)),
        occurrence_id("digest.9am", datetime(2025, 1, 1, 9, 0, tzinfo=UTC)),
    ]


async def test_cron_time_zone_is_honoured(harness: Harness, clock: ControlledClock) -> None:
    digest = task(
        "digests.ny",
        run=noop,
        schedule=[Schedule(id="digest.ny", cron="0 9 * * *", time_zone="America/New_York")],
    )
    runtime = harness.runtime([digest])
    clock.set(datetime(2025, 1, 2, 13, 59, tzinfo=UTC))  # 08:59 in New York (EST, UTC-5)
    await runtime.tick()
    clock.set(datetime(2025, 1, 2, 14, 0, tzinfo=UTC))  # 09:00 in New York
    assert (await runtime.tick()).materialized_schedules == 1

    assert await _occurrences(runtime) == [
        occurrence_id("digest.ny", datetime(2025, 1, 1, 14, 0, tzinfo=UTC)),
        occurrence_id("digest.ny", datetime(2025, 1, 2, 14, 0, tzinfo=UTC)),
    ]


async def test_concurrent_ticks_materialise_each_occurrence_once(
    harness: Harness, clock: ControlledClock
) -> None:
    schedules = [
        Schedule(id="a.every", every="1m"),
        Schedule(id="b.cron", cron="*/10 * * * *"),
        Schedule(id="c.once", run_at=datetime(2025, 1, 1, 0, 0, 30, tzinfo=UTC)),
    ]
    job = task("ops.many", run=noop, schedule=schedules)
    lane = lane_with_storage(YieldingStorage(create_local_storage()))
    one = harness.runtime([job], lane=lane)
    two = harness.runtime([job], lane=lane)  # another maintenance process over the same lane

    # minute -> new occurrences: every minute for a, each 10 minutes for b, c only once
    expected = {0: 3, 5: 1, 10: 2, 15: 1, 20: 2}
    for minute, new in expected.items():
        clock.set(datetime(2025, 1, 1, 0, minute, 45, tzinfo=UTC))
        results = await asyncio.gather(one.tick(), two.tick(), one.tick(), two.tick())
        assert sum(r.materialized_schedules for r in results) == new

    occurrences = await _occurrences(one)
    assert len(occurrences) == len(set(occurrences)) == sum(expected.values())


async def test_once_schedule_in_the_past_is_materialised_once(
    harness: Harness, clock: ControlledClock
) -> None:
    launch = task(
        "ops.launch",
        run=noop,
        schedule=[Schedule(id="launch", run_at=clock.now() - timedelta(days=3))],
    )
    runtime = harness.runtime([launch])

    assert (await runtime.tick()).materialized_schedules == 1
    assert (await runtime.tick()).materialized_schedules == 0
    clock.advance("30d")
    assert (await runtime.tick()).materialized_schedules == 0
    assert len(await _runs(runtime)) == 1


async def test_once_schedule_in_the_future_waits_for_its_time(
    harness: Harness, clock: ControlledClock
) -> None:
    when = clock.now() + timedelta(hours=1)
    launch = task("ops.launch", run=noop, schedule=[Schedule(id="launch", run_at=when)])
    runtime = harness.runtime([launch])

    assert (await runtime.tick()).materialized_schedules == 0
    clock.set(when - timedelta(milliseconds=1))
    assert (await runtime.tick()).materialized_schedules == 0
    clock.set(when)
    assert (await runtime.tick()).materialized_schedules == 1
    assert await _occurrences(runtime) == [occurrence_id("launch", when)]


async def test_disabled_schedule_is_ignored(harness: Harness, clock: ControlledClock) -> None:
    job = task(
        "ops.off",
        run=noop,
        schedule=[
            Schedule(id="off.every", every="1m", enabled=False),
            Schedule(id="off.once", run_at=clock.now(), enabled=False),
        ],
    )
    runtime = harness.runtime([job])
    for _ in range(3):
        assert (await runtime.tick()).materialized_schedules == 0
        clock.advance("1h")
    assert await _runs(runtime) == []


async def test_schedule_runs_execute_like_any_run_on_the_chosen_queue(
    harness: Harness, clock: ControlledClock
) -> None:
    seen: list[tuple[object, str]] = []

    async def handler(payload: object, context: TaskContext) -> None:
        seen.append((payload, context.run.queue))

    reports = queue("reports")
    job = task(
        "ops.report",
        run=handler,
        schedule=[Schedule(id="report.hourly", every="1h", queue=reports, payload={"kind": "hourly"})],
    )
    runtime = harness.runtime([job], queues=[DEFAULT_QUEUE, reports])

    ticked = await runtime.tick()
    assert ticked.materialized_schedules == 1
    assert ticked.published_wakeups == 1  # created and published by the same tick
    executed = await runtime.execute_next(queues=[reports])

    assert executed is not None
    assert executed.status is RunStatus.SUCCEEDED
    assert executed.source.type is RunSourceType.SCHEDULE
    assert seen == [({"kind": "hourly"}, "reports")]
