"""execute_delivery: run only a due, leasable run; stale wakeups are ignored, never raised."""

import asyncio
from datetime import timedelta

from runlane import (
    DeliveryIgnoredReason,
    DeliveryMessage,
    DeliveryResultType,
    Environment,
    ErrorCode,
    RunlaneError,
    RunStatus,
    queue,
    task,
)
from runlane.domain.run_record import RunRecord
from runlane.infrastructure.memory import create_local_storage
from runlane.ports.storage_commands import GetRun
from runlane.testing import ControlledClock
from tests.unit.application.support import (
    Harness,
    YieldingStorage,
    claim_queued_run,
    expect_error,
    lane_with_storage,
    noop,
    published,
)

IGNORED = DeliveryResultType.IGNORED


class Counter:
    def __init__(self) -> None:
        self.calls = 0

    async def handler(self, payload: object, context: object) -> None:
        self.calls += 1
        await asyncio.sleep(0)


async def test_due_delivery_executes_the_run(harness: Harness) -> None:
    counter = Counter()
    job = task("jobs.one", run=counter.handler)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)

    result = await runtime.execute_delivery(published(runtime)[0], worker_id="lambda_1")

    assert result.type is DeliveryResultType.EXECUTED
    assert result.reason is None
    assert result.run is not None
    assert result.run.id == created.run.id
    assert result.run.status is RunStatus.SUCCEEDED
    assert counter.calls == 1
    (attempt,) = await runtime.runs.attempts(created.run.id)
    assert attempt.worker_id == "lambda_1"


async def test_missing_run_is_ignored(harness: Harness, clock: ControlledClock) -> None:
    runtime = harness.runtime([task("jobs.one", run=noop)])
    message = DeliveryMessage(
        environment=runtime.environment, run_id="run_missing", queue="default", requested_at=clock.now()
    )

    result = await runtime.execute_delivery(message)

    assert result.type is IGNORED
    assert result.reason is DeliveryIgnoredReason.RUN_NOT_FOUND
    assert result.run is None


async def test_run_of_another_environment_is_ignored_as_not_found(harness: Harness) -> None:
    counter = Counter()
    job = task("jobs.one", run=counter.handler)
    production = harness.runtime([job], environment="production")
    staging = harness.runtime([job], lane=production.lane, environment="staging")
    staged = await staging.trigger(job)
    staging_message = published(staging)[-1]

    # the message names another environment than the runtime's
    foreign = await production.execute_delivery(staging_message)
    # the message claims this environment, but the run lives in another one
    relabelled = DeliveryMessage(environment=production.environment, run_id=staged.run.id, queue="default")
    not_here = await production.execute_delivery(relabelled)

    assert (foreign.type, foreign.reason) == (IGNORED, DeliveryIgnoredReason.RUN_NOT_FOUND)
    assert (not_here.type, not_here.reason) == (IGNORED, DeliveryIgnoredReason.RUN_NOT_FOUND)
    assert counter.calls == 0
    still = await staging.runs.get(staged.run.id)
    assert still is not None
    assert still.status is RunStatus.QUEUED


async def test_terminal_run_is_ignored(harness: Harness) -> None:
    counter = Counter()
    job = task("jobs.one", run=counter.handler)
    runtime = harness.runtime([job])
    await runtime.trigger(job)
    (message,) = published(runtime)
    assert (await runtime.execute_delivery(message)).type is DeliveryResultType.EXECUTED

    duplicate = await runtime.execute_delivery(message)

    assert duplicate.type is IGNORED
    assert duplicate.reason is DeliveryIgnoredReason.TERMINAL
    assert duplicate.run is not None
    assert duplicate.run.status is RunStatus.SUCCEEDED
    assert counter.calls == 1


async def test_run_not_due_yet_is_ignored(harness: Harness, clock: ControlledClock) -> None:
    counter = Counter()
    job = task("jobs.later", run=counter.handler)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job, delay="5m")
    # the local transport has no native delay: the wakeup is published once due; a duplicate may come early
    assert published(runtime) == ()
    message = DeliveryMessage(environment=runtime.environment, run_id=created.run.id, queue="default")

    early = await runtime.execute_delivery(message)
    assert (early.type, early.reason) == (IGNORED, DeliveryIgnoredReason.NOT_DUE)
    assert early.run is not None
    assert early.run.status is RunStatus.SCHEDULED

    due = created.run.run_at
    assert due is not None
    clock.set(due - timedelta(milliseconds=1))
    assert (await runtime.execute_delivery(message)).reason is DeliveryIgnoredReason.NOT_DUE
    clock.set(due)
    on_time = await runtime.execute_delivery(message)
    assert on_time.type is DeliveryResultType.EXECUTED
    assert counter.calls == 1


async def test_wrong_queue_is_ignored(harness: Harness) -> None:
    counter = Counter()
    other = queue("other")
    job = task("jobs.one", run=counter.handler)
    runtime = harness.runtime([job], queues=[queue("default", default=True), other])
    created = await runtime.trigger(job)
    message = DeliveryMessage(environment=runtime.environment, run_id=created.run.id, queue="other")

    result = await runtime.execute_delivery(message)

    assert (result.type, result.reason) == (IGNORED, DeliveryIgnoredReason.WRONG_QUEUE)
    assert counter.calls == 0


async def test_already_leased_run_is_ignored(harness: Harness, clock: ControlledClock) -> None:
    counter = Counter()
    job = task("jobs.one", run=counter.handler)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    await claim_queued_run(runtime.lane, clock, created.run.id, environment=runtime.environment)

    result = await runtime.execute_delivery(published(runtime)[0])

    assert (result.type, result.reason) == (IGNORED, DeliveryIgnoredReason.ALREADY_LEASED)
    assert result.run is not None
    assert result.run.status is RunStatus.RUNNING
    assert counter.calls == 0


async def test_cancellation_requested_run_is_ignored_as_already_leased(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.one", run=noop)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    await claim_queued_run(runtime.lane, clock, created.run.id, environment=runtime.environment)
    await runtime.runs.cancel(created.run.id)

    result = await runtime.execute_delivery(published(runtime)[0])

    assert (result.type, result.reason) == (IGNORED, DeliveryIgnoredReason.ALREADY_LEASED)


async def test_two_concurrent_deliveries_execute_the_run_once(harness: Harness) -> None:
    counter = Counter()
    job = task("jobs.one", run=counter.handler)
    runtime = harness.runtime([job])
    await runtime.trigger(job)
    (message,) = published(runtime)

    results = await asyncio.gather(runtime.execute_delivery(message), runtime.execute_delivery(message))

    executed = [r for r in results if r.type is DeliveryResultType.EXECUTED]
    ignored = [r for r in results if r.type is IGNORED]
    assert len(executed) == 1
    assert len(ignored) == 1
    assert ignored[0].reason in {DeliveryIgnoredReason.ALREADY_LEASED, DeliveryIgnoredReason.CLAIM_LOST}
    assert counter.calls == 1


async def test_losing_the_claim_race_is_ignored_as_claim_lost(harness: Harness) -> None:
    """Both deliveries read the run as queued before either appends its lease: one must lose."""
    counter = Counter()
    job = task("jobs.one", run=counter.handler)
    runtime = harness.runtime([job], lane=lane_with_storage(YieldingStorage(create_local_storage())))
    created = await runtime.trigger(job)
    (message,) = published(runtime)

    results = await asyncio.gather(*(runtime.execute_delivery(message) for _ in range(2)))

    assert sorted(r.type.value for r in results) == ["executed", "ignored"]
    (lost,) = [r for r in results if r.type is IGNORED]
    assert lost.reason is DeliveryIgnoredReason.CLAIM_LOST
    assert counter.calls == 1
    final = await runtime.runs.get(created.run.id)
    assert final is not None
    assert final.status is RunStatus.SUCCEEDED
    assert final.attempts == 1


async def test_bounded_queue_without_a_free_slot_is_ignored_as_not_runnable(
    harness: Harness, clock: ControlledClock
) -> None:
    limited = queue("limited", concurrency_limit=1)
    counter = Counter()
    job = task("jobs.bounded", run=counter.handler, queue=limited)
    runtime = harness.runtime([job], queues=[limited])
    holder = await runtime.trigger(job)
    waiting = await runtime.trigger(job)
    await claim_queued_run(runtime.lane, clock, holder.run.id, environment=runtime.environment)
    stale = DeliveryMessage(environment=runtime.environment, run_id=waiting.run.id, queue="limited")

    result = await runtime.execute_delivery(stale)

    assert (result.type, result.reason) == (IGNORED, DeliveryIgnoredReason.NOT_RUNNABLE)
    assert counter.calls == 0
    unchanged = await runtime.runs.get(waiting.run.id)
    assert unchanged is not None
    assert unchanged.status is RunStatus.QUEUED
    assert unchanged.attempts == 0


async def test_every_stale_reason_returns_normally_in_one_sequence(
    harness: Harness, clock: ControlledClock
) -> None:
    """A consumer can acknowledge each of these: none raises."""
    job = task("jobs.one", run=noop)
    runtime = harness.runtime([job], queues=[queue("default", default=True), queue("other")])
    done = await runtime.trigger(job)
    await runtime.execute_delivery(published(runtime)[0])
    later = await runtime.trigger(job, delay="1h")
    leased = await runtime.trigger(job)
    await claim_queued_run(runtime.lane, clock, leased.run.id, environment=runtime.environment)
    env = runtime.environment
    messages = [
        DeliveryMessage(environment=env, run_id="run_nope", queue="default"),
        DeliveryMessage(environment=Environment("elsewhere"), run_id=done.run.id, queue="default"),
        DeliveryMessage(environment=env, run_id=done.run.id, queue="default"),
        DeliveryMessage(environment=env, run_id=later.run.id, queue="default"),
        DeliveryMessage(environment=env, run_id=later.run.id, queue="other"),
        DeliveryMessage(environment=env, run_id=leased.run.id, queue="default"),
    ]

    reasons = [(await runtime.execute_delivery(m)).reason for m in messages]

    assert reasons == [
        DeliveryIgnoredReason.RUN_NOT_FOUND,
        DeliveryIgnoredReason.RUN_NOT_FOUND,
        DeliveryIgnoredReason.TERMINAL,
        DeliveryIgnoredReason.NOT_DUE,
        DeliveryIgnoredReason.WRONG_QUEUE,
        DeliveryIgnoredReason.ALREADY_LEASED,
    ]


async def test_invalid_input_raises(harness: Harness) -> None:
    runtime = harness.runtime([task("jobs.one", run=noop)])
    message = DeliveryMessage(environment=runtime.environment, run_id="run_x", queue="default")

    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.execute_delivery(message, visibility_timeout="30s")
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.execute_delivery(message, lease_duration="5 minutes")
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.execute_delivery({"runId": "run_x"})  # type: ignore[arg-type]


class _UnreachableStorage:
    """Local storage whose reads fail like an unreachable database."""

    def __init__(self) -> None:
        self._inner = create_local_storage()
        self.capabilities = self._inner.capabilities
        self.name = "unreachable"
        self.down = False

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def get_run(self, query: GetRun) -> RunRecord | None:
        if self.down:
            raise RunlaneError(ErrorCode.INTERNAL_ERROR, "database unavailable", retryable=True)
        return await self._inner.get_run(query)


async def test_infrastructure_failure_raises_so_the_provider_redelivers(harness: Harness) -> None:
    storage = _UnreachableStorage()
    job = task("jobs.one", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(storage))
    await runtime.trigger(job)
    storage.down = True

    with expect_error(ErrorCode.INTERNAL_ERROR):
        await runtime.execute_delivery(published(runtime)[0])
    storage.down = False
    assert (await runtime.execute_delivery(published(runtime)[0])).type is DeliveryResultType.EXECUTED
