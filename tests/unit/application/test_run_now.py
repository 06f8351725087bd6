"""run_now: create + lease atomically, execute exactly that one attempt inline, never anything else."""

import asyncio
from datetime import timedelta

import pytest

from runlane import (
    ErrorCode,
    RetryPolicy,
    RunEventType,
    RunlaneError,
    RunSourceType,
    RunStatus,
    TaskContext,
    queue,
    task,
)
from runlane.testing import ControlledClock, list_run_event_types
from tests.unit.application.support import (
    Harness,
    all_run_ids,
    claim_queued_run,
    expect_error,
    outbox_rows,
    published,
)


class Recorder:
    def __init__(self, outcome: str = "ok") -> None:
        self.outcome = outcome
        self.payloads: list[object] = []

    async def handler(self, payload: dict[str, int], context: TaskContext) -> object:
        self.payloads.append(payload)
        if self.outcome == "release":
            return context.release("2m", reason="not_ready")
        if self.outcome == "fail":
            raise RuntimeError("x")
        return None


async def test_success_returns_the_succeeded_record(harness: Harness, clock: ControlledClock) -> None:
    recorder = Recorder()
    job = task("admin.sync", run=recorder.handler)
    runtime = harness.runtime([job])

    run = await runtime.run_now(job, {"n": 1}, worker_id="admin_button")

    assert run.status is RunStatus.SUCCEEDED
    assert run.attempts == 1
    assert run.source.type is RunSourceType.TRIGGER
    assert recorder.payloads == [{"n": 1}]
    assert list(await list_run_event_types(runtime, run.id)) == [
        RunEventType.CREATED,
        RunEventType.LEASE_CLAIMED,
        RunEventType.SUCCEEDED,
    ]
    (attempt,) = await runtime.runs.attempts(run.id)
    assert attempt.worker_id == "admin_button"
    # no wakeup is needed for a run executed inline
    assert published(runtime) == ()
    assert await outbox_rows(runtime, run.id) == ()


async def test_release_returns_released_and_tick_continues_it(
    harness: Harness, clock: ControlledClock
) -> None:
    recorder = Recorder("release")
    job = task("admin.poll", run=recorder.handler)
    runtime = harness.runtime([job])

    run = await runtime.run_now(job, {"n": 1})

    assert run.status is RunStatus.RELEASED
    assert run.run_at == clock.now() + timedelta(minutes=2)
    clock.advance("2m")
    ticked = await runtime.tick()
    assert ticked.requested_deliveries == 1
    assert [m.run_id for m in published(runtime)] == [run.id]


async def test_retryable_failure_returns_retrying(harness: Harness, clock: ControlledClock) -> None:
    job = task("admin.flaky", run=Recorder("fail").handler, retry=RetryPolicy(3, "30s"))
    runtime = harness.runtime([job])

    run = await runtime.run_now(job, {"n": 1})

    assert run.status is RunStatus.RETRYING
    assert run.run_at == clock.now() + timedelta(seconds=30)
    assert run.failure is not None
    assert run.failure.code is ErrorCode.TASK_FAILED


async def test_final_failure_is_returned_not_raised(harness: Harness) -> None:
    job = task("admin.broken", run=Recorder("fail").handler)
    runtime = harness.runtime([job])

    run = await runtime.run_now(job, {"n": 1})

    assert run.status is RunStatus.FAILED


async def test_never_executes_another_queued_run(harness: Harness, clock: ControlledClock) -> None:
    recorder = Recorder()
    job = task("admin.sync", run=recorder.handler)
    runtime = harness.runtime([job])
    now = clock.now()
    clock.set(now - timedelta(hours=1))
    older = await runtime.trigger(job, {"n": 0})  # due long before the run_now run
    clock.set(now)

    run = await runtime.run_now(job, {"n": 1})

    assert run.payload == {"n": 1}
    assert recorder.payloads == [{"n": 1}]
    waiting = await runtime.runs.get(older.run.id)
    assert waiting is not None
    assert waiting.status is RunStatus.QUEUED
    assert waiting.attempts == 0


async def test_existing_idempotency_owner_is_returned_without_executing(harness: Harness) -> None:
    recorder = Recorder()
    job = task("admin.sync", run=recorder.handler)
    runtime = harness.runtime([job])
    owner = await runtime.trigger(job, {"n": 0}, idempotency_key="sync.1")

    run = await runtime.run_now(job, {"n": 1}, idempotency_key="sync.1")

    assert run.id == owner.run.id
    assert run.status is RunStatus.QUEUED
    assert recorder.payloads == []
    assert await all_run_ids(runtime) == [owner.run.id]


async def test_existing_singleton_owner_is_returned_without_executing(harness: Harness) -> None:
    recorder = Recorder()
    job = task("admin.sync", run=recorder.handler, singleton_key="only")
    runtime = harness.runtime([job])
    owner = await runtime.trigger(job, {"n": 0})

    run = await runtime.run_now(job, {"n": 1})

    assert run.id == owner.run.id
    assert recorder.payloads == []


async def test_run_now_can_be_cancelled_by_an_operator(harness: Harness) -> None:
    started = asyncio.Event()

    async def handler(payload: object, context: TaskContext) -> None:
        started.set()
        await asyncio.wait_for(context.signal.wait(), timeout=5)

    job = task("admin.long", run=handler)
    runtime = harness.runtime([job])
    execution = asyncio.create_task(runtime.run_now(job, run_id="run_admin_1"))
    await asyncio.wait_for(started.wait(), timeout=5)

    await runtime.runs.cancel("run_admin_1")
    run = await asyncio.wait_for(execution, timeout=5)

    assert run.status is RunStatus.CANCELLED


async def test_invalid_payload_raises_and_persists_nothing(harness: Harness) -> None:
    def schema(value: object) -> object:
        if not isinstance(value, dict) or "n" not in value:
            raise ValueError("n is required")
        return value

    recorder = Recorder()
    job = task("admin.strict", run=recorder.handler, schema=schema)
    runtime = harness.runtime([job])

    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.run_now(job, {"m": 1})
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.run_now(job, {"n": 1}, lease_duration="forever")
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.run_now(job, {"n": 1}, delay="5m")  # run_now executes now: no run_at/delay
    assert recorder.payloads == []
    assert await all_run_ids(runtime) == []


async def test_full_bounded_queue_raises_and_persists_nothing(
    harness: Harness, clock: ControlledClock
) -> None:
    limited = queue("limited", concurrency_limit=1)
    recorder = Recorder()
    job = task("admin.bounded", run=recorder.handler, queue=limited)
    runtime = harness.runtime([job], queues=[limited])
    holder = await runtime.trigger(job, {"n": 0})
    await claim_queued_run(runtime.lane, clock, holder.run.id, environment=runtime.environment)

    with pytest.raises(RunlaneError):
        await runtime.run_now(job, {"n": 1})

    assert recorder.payloads == []
    assert await all_run_ids(runtime) == [holder.run.id]
