"""Cancellation: waiting runs stop at once; running runs are asked, then stop cooperatively."""

import asyncio
import threading
from datetime import timedelta

import pytest

from runlane import (
    Actor,
    ActorType,
    ErrorCode,
    RetryPolicy,
    RunEventType,
    RunStatus,
    TaskContext,
    task,
)
from runlane.application.runtime import Runlane
from runlane.testing import ControlledClock, list_run_event_types, wait_for_condition
from tests.unit.application.support import (
    Harness,
    all_run_ids,
    claim_queued_run,
    expect_error,
    noop,
)


async def _waiting_run(runtime: Runlane, clock: ControlledClock, status: RunStatus) -> str:
    """Put one run of ``jobs.wait`` into ``status`` (a waiting status)."""
    job = runtime.tasks["wait"]
    if status is RunStatus.QUEUED:
        return (await runtime.trigger(job)).run.id
    if status is RunStatus.SCHEDULED:
        return (await runtime.trigger(job, delay="1h")).run.id
    created = await runtime.trigger(job, {"mode": status.value})
    run = await runtime.execute_next()
    assert run is not None
    assert run.id == created.run.id
    assert run.status is status
    return run.id


async def _wait_handler(payload: dict[str, str] | None, context: TaskContext) -> object:
    mode = (payload or {}).get("mode")
    if mode == "released":
        return context.release("1h")
    if mode == "retrying":
        raise RuntimeError("transient")
    return None


@pytest.mark.parametrize(
    "status", [RunStatus.QUEUED, RunStatus.SCHEDULED, RunStatus.RELEASED, RunStatus.RETRYING]
)
async def test_waiting_runs_are_cancelled_at_once(
    harness: Harness, clock: ControlledClock, status: RunStatus
) -> None:
    job = task("jobs.wait", run=_wait_handler, retry=RetryPolicy(3, "1h"))
    runtime = harness.runtime({"wait": job})
    run_id = await _waiting_run(runtime, clock, status)
    operator = Actor(ActorType.OPERATOR, "ops.alice")

    cancelled = await runtime.runs.cancel(
        run_id, actor=operator, reason="operator_requested", meta={"ticket": "OPS-1"}
    )

    assert cancelled.status is RunStatus.CANCELLED
    assert cancelled.lease is None
    last = (await runtime.runs.events(run_id)).data[-1]
    assert last.type is RunEventType.CANCELLED
    assert last.actor == operator
    assert last.reason == "operator_requested"
    assert last.meta == {"ticket": "OPS-1"}
    # nothing executes it later
    clock.advance("2h")
    await runtime.tick()
    assert await runtime.execute_next() is None


async def test_running_run_gets_a_request_then_stops_cooperatively(harness: Harness) -> None:
    started = asyncio.Event()
    observed: dict[str, object] = {}

    async def handler(payload: object, context: TaskContext) -> None:
        observed["before"] = context.is_cancellation_requested()
        started.set()
        reason = await asyncio.wait_for(context.signal.wait(), timeout=5)
        observed["reason"] = reason
        observed["aborted"] = context.signal.aborted
        observed["after"] = context.is_cancellation_requested()

    job = task("jobs.long", run=handler)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    execution = asyncio.create_task(runtime.execute_next())
    await asyncio.wait_for(started.wait(), timeout=5)

    requested = await runtime.runs.cancel(created.run.id, reason="operator_requested")

    assert requested.status is RunStatus.CANCELLATION_REQUESTED
    assert requested.lease is not None  # the owner keeps its lease until it stops
    final = await asyncio.wait_for(execution, timeout=5)
    assert final is not None
    assert final.status is RunStatus.CANCELLED
    assert observed == {"before": False, "reason": "cancellation_requested", "aborted": True, "after": True}
    assert list(await list_run_event_types(runtime, created.run.id))[-3:] == [
        RunEventType.LEASE_CLAIMED,
        RunEventType.CANCELLATION_REQUESTED,
        RunEventType.CANCELLED,
    ]


async def test_running_handler_raising_after_the_request_fails_the_run(harness: Harness) -> None:
    started = asyncio.Event()

    async def handler(payload: object, context: TaskContext) -> None:
        started.set()
        await asyncio.wait_for(context.signal.wait(), timeout=5)
        context.signal.throw_if_aborted()

    job = task("jobs.long", run=handler, retry=RetryPolicy(5, "1s"))
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    execution = asyncio.create_task(runtime.execute_next())
    await asyncio.wait_for(started.wait(), timeout=5)

    await runtime.runs.cancel(created.run.id)
    final = await asyncio.wait_for(execution, timeout=5)

    assert final is not None
    assert final.status is RunStatus.FAILED  # never a retry from cancellation_requested
    assert final.failure is not None
    assert final.failure.code is ErrorCode.OPERATION_CANCELLED
    assert final.retries == 0


async def test_release_returned_after_the_request_cancels(harness: Harness) -> None:
    started = asyncio.Event()

    async def handler(payload: object, context: TaskContext) -> object:
        started.set()
        await asyncio.wait_for(context.signal.wait(), timeout=5)
        return context.release("1m")

    job = task("jobs.long", run=handler)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    execution = asyncio.create_task(runtime.execute_next())
    await asyncio.wait_for(started.wait(), timeout=5)
    await runtime.runs.cancel(created.run.id)

    final = await asyncio.wait_for(execution, timeout=5)
    assert final is not None
    assert final.status is RunStatus.CANCELLED


async def test_sync_handler_sees_the_signal_from_its_thread(harness: Harness) -> None:
    started = threading.Event()
    seen: list[bool] = []

    def handler(payload: object, context: TaskContext) -> None:
        started.set()
        for _ in range(500):
            if context.is_cancellation_requested():
                seen.append(context.signal.aborted)
                return
            threading.Event().wait(0.01)

    job = task("jobs.sync_long", run=handler)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    execution = asyncio.create_task(runtime.execute_next())
    await wait_for_condition(started.is_set, timeout=5)

    await runtime.runs.cancel(created.run.id)
    final = await asyncio.wait_for(execution, timeout=10)

    assert seen == [True]
    assert final is not None
    assert final.status is RunStatus.CANCELLED


async def test_cancel_from_another_process_reaches_the_handler_through_heartbeats(
    harness: Harness,
) -> None:
    """An operator runtime sharing the lane cancels; the worker learns it at its next heartbeat."""
    started = asyncio.Event()

    async def handler(payload: object, context: TaskContext) -> None:
        started.set()
        await asyncio.wait_for(context.signal.wait(), timeout=5)

    job = task("jobs.long", run=handler)
    worker_runtime = harness.runtime([job])
    operator_runtime = harness.runtime([job], lane=worker_runtime.lane)
    created = await worker_runtime.trigger(job)
    execution = asyncio.create_task(
        worker_runtime.execute_next(lease_duration="3s", heartbeat_interval="20ms")
    )
    await asyncio.wait_for(started.wait(), timeout=5)

    await operator_runtime.runs.cancel(created.run.id)
    final = await asyncio.wait_for(execution, timeout=5)

    assert final is not None
    assert final.status is RunStatus.CANCELLED


async def test_vanished_owner_is_finalised_by_tick_after_lease_expiry(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.crashy", run=noop)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    claimed = await claim_queued_run(
        runtime.lane, clock, created.run.id, "30s", environment=runtime.environment
    )

    requested = await runtime.runs.cancel(created.run.id)
    assert requested.status is RunStatus.CANCELLATION_REQUESTED

    clock.set(claimed.lease.expires_at - timedelta(milliseconds=1))
    early = await runtime.tick()
    assert early.finalized_cancellations == 0
    clock.set(claimed.lease.expires_at)
    ticked = await runtime.tick()

    assert ticked.finalized_cancellations == 1
    assert ticked.expired_leases == 0
    final = await runtime.runs.get(created.run.id)
    assert final is not None
    assert final.status is RunStatus.CANCELLED
    assert final.lease is None
    assert (final.failures, final.retries) == (0, 0)


async def test_cancel_of_a_terminal_run_is_rejected(harness: Harness) -> None:
    job = task("jobs.quick", run=noop)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    done = await runtime.execute_next()
    assert done is not None

    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.cancel(created.run.id)
    unchanged = await runtime.runs.get(created.run.id)
    assert unchanged == done

    cancelled = await runtime.trigger(job)
    await runtime.runs.cancel(cancelled.run.id)
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.cancel(cancelled.run.id)


async def test_cancelling_twice_returns_the_record_unchanged(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.crashy", run=noop)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    await claim_queued_run(runtime.lane, clock, created.run.id, environment=runtime.environment)
    first = await runtime.runs.cancel(created.run.id, reason="first")

    second = await runtime.runs.cancel(created.run.id, reason="second")

    assert second == first
    assert second.event_sequence == first.event_sequence
    events = (await runtime.runs.events(created.run.id)).data
    assert [e.type for e in events].count(RunEventType.CANCELLATION_REQUESTED) == 1


async def test_cancel_of_a_missing_run_is_run_not_found(harness: Harness) -> None:
    runtime = harness.runtime([task("jobs.quick", run=noop)])
    with expect_error(ErrorCode.RUN_NOT_FOUND):
        await runtime.runs.cancel("run_missing")
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.cancel("run:bad")
    assert await all_run_ids(runtime) == []
