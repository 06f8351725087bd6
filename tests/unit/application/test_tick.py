"""tick(): expired-lease recovery, due deliveries, stranded outbox rows, and per-phase bounds."""

import asyncio
from datetime import timedelta

from runlane import (
    ErrorCode,
    OutboxMessageStatus,
    RetryBackoff,
    RetryBackoffType,
    RetryPolicy,
    RunEventType,
    RunStatus,
    TriggerDispatchMode,
    task,
)
from runlane.infrastructure.memory import create_local_storage
from runlane.ports.storage_commands import ClaimOutboxMessages
from runlane.testing import ControlledClock, list_run_event_types
from tests.unit.application.support import (
    Harness,
    YieldingStorage,
    claim_queued_run,
    expect_error,
    lane_with_storage,
    noop,
    outbox_rows,
    published,
)


async def test_expired_lease_becomes_a_retry_with_backoff(harness: Harness, clock: ControlledClock) -> None:
    policy = RetryPolicy(3, RetryBackoff(RetryBackoffType.EXPONENTIAL, "30s", "5m"))
    job = task("jobs.crashy", run=noop, retry=policy)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    claimed = await claim_queued_run(
        runtime.lane, clock, created.run.id, "30s", environment=runtime.environment
    )

    clock.set(claimed.lease.expires_at - timedelta(milliseconds=1))
    assert (await runtime.tick()).expired_leases == 0
    clock.set(claimed.lease.expires_at)
    ticked = await runtime.tick()

    assert ticked.expired_leases == 1
    run = await runtime.runs.get(created.run.id)
    assert run is not None
    assert run.status is RunStatus.RETRYING
    assert run.run_at == clock.now() + timedelta(seconds=30)
    assert (run.attempts, run.failures, run.retries) == (1, 1, 1)
    assert run.lease is None
    assert run.failure is not None
    assert run.failure.code is ErrorCode.INTERNAL_ERROR
    assert run.failure.meta == {"reason": "lease_expired"}
    assert list(await list_run_event_types(runtime, created.run.id))[-1] is RunEventType.LEASE_EXPIRED
    (attempt,) = await runtime.runs.attempts(created.run.id)
    assert attempt.status.value == "lease_expired"

    # counted against the budget: the second expiry uses the second backoff step
    assert run.run_at is not None
    clock.set(run.run_at)
    again = await claim_queued_run(
        runtime.lane, clock, created.run.id, "30s", environment=runtime.environment
    )
    clock.set(again.lease.expires_at)
    await runtime.tick()
    run = await runtime.runs.get(created.run.id)
    assert run is not None
    assert run.status is RunStatus.RETRYING
    assert run.run_at == clock.now() + timedelta(seconds=60)

    # the third expiry exhausts the budget of three attempts
    assert run.run_at is not None
    clock.set(run.run_at)
    last = await claim_queued_run(runtime.lane, clock, created.run.id, "30s", environment=runtime.environment)
    clock.set(last.lease.expires_at)
    await runtime.tick()
    run = await runtime.runs.get(created.run.id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert (run.attempts, run.failures) == (3, 3)


async def test_expired_lease_without_budget_fails(harness: Harness, clock: ControlledClock) -> None:
    job = task("jobs.crashy", run=noop)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    await claim_queued_run(runtime.lane, clock, created.run.id, "30s", environment=runtime.environment)

    clock.advance("30s")
    ticked = await runtime.tick()

    assert ticked.expired_leases == 1
    run = await runtime.runs.get(created.run.id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.failures == 1


async def test_failures_before_an_expiry_count_against_the_budget(
    harness: Harness, clock: ControlledClock
) -> None:
    async def fails(payload: object, context: object) -> None:
        raise RuntimeError("x")

    job = task("jobs.mixed", run=fails, retry=RetryPolicy(2, "10s"))
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    first = await runtime.execute_next()
    assert first is not None
    assert first.status is RunStatus.RETRYING
    clock.advance("10s")
    await claim_queued_run(runtime.lane, clock, created.run.id, "30s", environment=runtime.environment)
    clock.advance("30s")

    await runtime.tick()

    run = await runtime.runs.get(created.run.id)
    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.failures == 2


async def test_a_live_worker_keeps_its_lease_with_heartbeats(
    harness: Harness, clock: ControlledClock
) -> None:
    """tick must not recover a lease that its holder keeps extending."""
    started = asyncio.Event()
    finish = asyncio.Event()

    async def long_job(payload: object, context: object) -> None:
        started.set()
        await asyncio.wait_for(finish.wait(), timeout=5)

    job = task("jobs.long", run=long_job)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    execution = asyncio.create_task(runtime.execute_next(lease_duration="1s", heartbeat_interval="10ms"))
    await asyncio.wait_for(started.wait(), timeout=5)
    for _ in range(5):
        clock.advance("900ms")
        lease_before = (await runtime.runs.get(created.run.id)).lease  # type: ignore[union-attr]
        for _ in range(200):  # wait (bounded) for a heartbeat at the new clock time
            await asyncio.sleep(0.005)
            lease = (await runtime.runs.get(created.run.id)).lease  # type: ignore[union-attr]
            if lease is not None and lease_before is not None and lease.expires_at > lease_before.expires_at:
                break
        assert (await runtime.tick()).expired_leases == 0
    finish.set()
    final = await execution
    assert final is not None
    assert final.status is RunStatus.SUCCEEDED


async def test_stranded_claimed_outbox_rows_are_republished(harness: Harness, clock: ControlledClock) -> None:
    job = task("jobs.stranded", run=noop)
    runtime = harness.runtime([job], dispatch=TriggerDispatchMode.DEFERRED)
    created = await runtime.trigger(job)
    # a publisher claims the row and dies before publishing
    claimed = await runtime.lane.storage.claim_outbox_messages(
        ClaimOutboxMessages(
            environment=runtime.environment, now=clock.now(), limit=10, claim_timeout_ms=60_000
        )
    )
    assert [row.run_id for row in claimed] == [created.run.id]
    assert (await runtime.tick()).published_wakeups == 0

    clock.advance("1m")
    ticked = await runtime.tick()

    assert ticked.published_wakeups == 1
    assert [m.run_id for m in published(runtime)] == [created.run.id]
    (row,) = await outbox_rows(runtime, created.run.id)
    assert row.status is OutboxMessageStatus.PUBLISHED


async def test_each_phase_is_bounded_by_the_limit(harness: Harness) -> None:
    job = task("jobs.many", run=noop)
    runtime = harness.runtime([job], dispatch=TriggerDispatchMode.DEFERRED)
    for _ in range(5):
        await runtime.trigger(job)

    assert (await runtime.tick(limit=2)).published_wakeups == 2
    assert (await runtime.tick(limit=2)).published_wakeups == 2
    assert (await runtime.tick(limit=2)).published_wakeups == 1
    assert (await runtime.tick(limit=2)).published_wakeups == 0
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.tick(limit=0)


async def test_idle_tick_reports_zero_everywhere(harness: Harness) -> None:
    runtime = harness.runtime([task("jobs.none", run=noop)])
    result = await runtime.tick()
    assert result.total == 0
    assert set(result.to_dict().values()) == {0}


async def test_concurrent_ticks_recover_each_expired_lease_once(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.crashy", run=noop, retry=RetryPolicy(5, "1m"))
    lane = lane_with_storage(YieldingStorage(create_local_storage()))
    one = harness.runtime([job], lane=lane)
    two = harness.runtime([job], lane=lane)
    ids = [(await one.trigger(job)).run.id for _ in range(6)]
    for run_id in ids:
        await claim_queued_run(lane, clock, run_id, "30s", environment=one.environment)
    clock.advance("30s")

    results = await asyncio.gather(one.tick(), two.tick(), one.tick())

    assert sum(r.expired_leases for r in results) == 6
    for run_id in ids:
        run = await one.runs.get(run_id)
        assert run is not None
        assert run.status is RunStatus.RETRYING
        assert run.failures == 1


async def test_late_outcome_after_lease_recovery_is_discarded(
    harness: Harness, clock: ControlledClock
) -> None:
    """A worker that lost its lease (paused past expiry) cannot overwrite maintenance's decision."""
    started = asyncio.Event()
    finish = asyncio.Event()

    async def slow(payload: object, context: object) -> None:
        started.set()
        await asyncio.wait_for(finish.wait(), timeout=5)

    job = task("jobs.paused", run=slow, retry=RetryPolicy(3, "1m"))
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    # a long heartbeat interval: no heartbeat happens while the test runs
    execution = asyncio.create_task(runtime.execute_next(lease_duration="10m", heartbeat_interval="5m"))
    await asyncio.wait_for(started.wait(), timeout=5)
    clock.advance("10m")
    assert (await runtime.tick()).expired_leases == 1

    finish.set()
    returned = await asyncio.wait_for(execution, timeout=5)

    assert returned is not None
    assert returned.status is RunStatus.RETRYING
    run = await runtime.runs.get(created.run.id)
    assert run is not None
    assert run.status is RunStatus.RETRYING
    assert (run.attempts, run.failures) == (1, 1)
    assert RunEventType.SUCCEEDED not in await list_run_event_types(runtime, created.run.id)
