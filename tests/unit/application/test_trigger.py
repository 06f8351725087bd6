"""trigger(): atomic creation, run_at/delay, eager vs deferred dispatch, and the outbox recovery path."""

from datetime import timedelta

import pytest

from runlane import (
    Actor,
    ActorType,
    DeliveryMessage,
    DeliveryResultType,
    ErrorCode,
    OutboxMessageStatus,
    RunEventType,
    RunlaneError,
    RunSourceType,
    RunStatus,
    TriggerDispatchMode,
    TriggerOutcomeType,
    task,
)
from runlane.infrastructure.memory import create_local_storage
from runlane.testing import ControlledClock
from tests.unit.application.support import (
    Harness,
    all_run_ids,
    expect_error,
    lane_with_storage,
    noop,
    outbox_rows,
    published,
)


async def test_trigger_persists_created_and_delivery_requested_and_publishes_one_wakeup(
    harness: Harness, clock: ControlledClock
) -> None:
    send = task("emails.send", run=noop)
    runtime = harness.runtime({"send": send})

    result = await runtime.trigger(send, {"to": "ada@example.com"}, meta={"origin": "signup"})

    run = result.run
    assert result.outcome is TriggerOutcomeType.CREATED
    assert run.status is RunStatus.QUEUED
    assert run.task_id == "emails.send"
    assert run.queue == "default"
    assert run.payload == {"to": "ada@example.com"}
    assert run.source.type is RunSourceType.TRIGGER
    assert run.event_sequence == 2
    assert run.created_at == clock.now()
    assert (run.attempts, run.failures, run.retries, run.releases) == (0, 0, 0, 0)
    assert run.meta == {"origin": "signup"}
    events = (await runtime.runs.events(run.id)).data
    assert [e.type for e in events] == [RunEventType.CREATED, RunEventType.DELIVERY_REQUESTED]
    assert [e.sequence for e in events] == [1, 2]
    assert events[0].actor == Actor(ActorType.SYSTEM)

    # exactly one wakeup, and it is the wire round trip of the delivery the run asked for
    assert published(runtime) == (
        DeliveryMessage(
            environment=runtime.environment, run_id=run.id, queue="default", requested_at=clock.now()
        ),
    )
    assert len(result.published) == 1
    assert result.failed == ()
    assert [row.status for row in await outbox_rows(runtime, run.id)] == [OutboxMessageStatus.PUBLISHED]
    assert (await runtime.runs.get(run.id)) == run


async def test_published_wakeup_executes_through_execute_delivery(harness: Harness) -> None:
    calls: list[object] = []

    async def handler(payload: object, context: object) -> None:
        calls.append(payload)

    job = task("jobs.one", run=handler)
    runtime = harness.runtime([job])
    result = await runtime.trigger(job, {"n": 1})

    (message,) = published(runtime)
    delivered = await runtime.execute_delivery(message)

    assert delivered.type is DeliveryResultType.EXECUTED
    assert delivered.run is not None
    assert delivered.run.id == result.run.id
    assert delivered.run.status is RunStatus.SUCCEEDED
    assert calls == [{"n": 1}]


async def test_future_run_at_makes_the_run_scheduled(harness: Harness, clock: ControlledClock) -> None:
    job = task("jobs.later", run=noop)
    runtime = harness.runtime([job])
    when = clock.now() + timedelta(minutes=10)

    at = await runtime.trigger(job, run_at=when)
    later = await runtime.trigger(job, delay="90s")
    past = await runtime.trigger(job, run_at=clock.now() - timedelta(hours=1))

    assert at.run.status is RunStatus.SCHEDULED
    assert at.run.run_at == when
    assert later.run.status is RunStatus.SCHEDULED
    assert later.run.run_at == clock.now() + timedelta(seconds=90)
    assert past.run.status is RunStatus.QUEUED
    # nothing due yet except the past one
    executed = await runtime.execute_next()
    assert executed is not None
    assert executed.id == past.run.id
    assert await runtime.execute_next() is None
    clock.advance("90s")
    executed = await runtime.execute_next()
    assert executed is not None
    assert executed.id == later.run.id


async def test_deferred_dispatch_leaves_the_row_for_tick(harness: Harness) -> None:
    job = task("jobs.deferred", run=noop)
    runtime = harness.runtime([job], dispatch=TriggerDispatchMode.DEFERRED)

    result = await runtime.trigger(job)

    assert published(runtime) == ()
    assert result.published == ()
    assert [row.status for row in await outbox_rows(runtime, result.run.id)] == [OutboxMessageStatus.PENDING]
    ticked = await runtime.tick()
    assert ticked.published_wakeups == 1
    assert [m.run_id for m in published(runtime)] == [result.run.id]
    assert (await runtime.tick()).published_wakeups == 0


async def test_per_call_dispatch_overrides_the_runtime_policy(harness: Harness) -> None:
    job = task("jobs.deferred", run=noop)
    runtime = harness.runtime([job])

    await runtime.trigger(job, dispatch=TriggerDispatchMode.DEFERRED)
    assert published(runtime) == ()
    await runtime.trigger(job, dispatch="eager")
    assert len(published(runtime)) == 1


async def test_retryable_publish_failure_keeps_trigger_successful_and_tick_republishes(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.flaky_transport", run=noop)
    runtime = harness.runtime([job])
    transport = runtime.lane.transport
    transport.fail_next(1)  # type: ignore[attr-defined]

    result = await runtime.trigger(job)

    assert result.outcome is TriggerOutcomeType.CREATED
    assert result.run.status is RunStatus.QUEUED
    assert result.published == ()
    assert len(result.failed) == 1
    assert result.failed[0].error.code is ErrorCode.TRANSPORT_UNAVAILABLE
    assert published(runtime) == ()
    (row,) = await outbox_rows(runtime, result.run.id)
    assert row.status is OutboxMessageStatus.FAILED
    assert row.last_error is not None
    assert row.last_error.retryable is True

    # not before the outbox retry delay
    assert (await runtime.tick()).published_wakeups == 0
    clock.advance("1s")
    ticked = await runtime.tick()
    assert ticked.published_wakeups == 1
    assert [m.run_id for m in published(runtime)] == [result.run.id]
    (row,) = await outbox_rows(runtime, result.run.id)
    assert row.status is OutboxMessageStatus.PUBLISHED
    assert (await runtime.runs.get(result.run.id)).status is RunStatus.QUEUED  # type: ignore[union-attr]


async def test_non_retryable_publish_failure_dead_letters_the_row(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.dead", run=noop)
    runtime = harness.runtime([job])
    runtime.lane.transport.fail_next(1, retryable=False)  # type: ignore[attr-defined]

    result = await runtime.trigger(job)

    assert result.outcome is TriggerOutcomeType.CREATED
    (row,) = await outbox_rows(runtime, result.run.id)
    assert row.status is OutboxMessageStatus.DEAD_LETTERED
    clock.advance("1h")
    ticked = await runtime.tick()
    assert ticked.published_wakeups == 0
    assert published(runtime) == ()
    # the run itself is still queued; a storage-polling worker can still execute it
    executed = await runtime.execute_next()
    assert executed is not None
    assert executed.status is RunStatus.SUCCEEDED


async def test_repeated_retryable_failures_dead_letter_after_the_publish_budget(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.unlucky", run=noop)
    runtime = harness.runtime([job])
    runtime.lane.transport.fail_next(10)  # type: ignore[attr-defined]

    result = await runtime.trigger(job)
    for _ in range(12):
        clock.advance("5m")
        await runtime.tick()

    (row,) = await outbox_rows(runtime, result.run.id)
    assert row.status is OutboxMessageStatus.DEAD_LETTERED
    assert row.attempts == 10
    assert published(runtime) == ()


async def test_non_transport_publish_error_rejects_the_trigger(harness: Harness) -> None:
    job = task("jobs.boom", run=noop)
    runtime = harness.runtime([job])
    runtime.lane.transport.raise_on_next_publish(RuntimeError("bug in transport"))  # type: ignore[attr-defined]

    with pytest.raises(RuntimeError, match="bug in transport"):
        await runtime.trigger(job)


async def test_trigger_by_catalog_name_and_task_id(harness: Harness) -> None:
    job = task("jobs.named", run=noop)
    runtime = harness.runtime({"named": job})

    by_handle = await runtime.trigger(runtime.tasks.named)
    by_id = await runtime.trigger("jobs.named")

    assert by_handle.run.task_id == by_id.run.task_id == "jobs.named"
    assert len(await all_run_ids(runtime)) == 2


async def test_explicit_run_id_is_used_and_cannot_be_reused(harness: Harness) -> None:
    job = task("jobs.explicit", run=noop)
    runtime = harness.runtime([job])

    result = await runtime.trigger(job, run_id="run_custom_1")
    assert result.run.id == "run_custom_1"
    with pytest.raises(RunlaneError) as info:
        await runtime.trigger(job, run_id="run_custom_1")
    assert info.value.code is ErrorCode.STORAGE_CONFLICT
    assert await all_run_ids(runtime) == ["run_custom_1"]


async def test_unknown_dispatch_mode_is_rejected(harness: Harness) -> None:
    job = task("jobs.x", run=noop)
    runtime = harness.runtime([job])
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.trigger(job, dispatch="sometimes")
    assert await all_run_ids(runtime) == []


async def test_delayed_run_wakeup_is_published_by_tick_when_due(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.later", run=noop)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job, delay="5m")

    assert published(runtime) == ()  # the local transport has no native delay
    clock.advance("4m")
    assert (await runtime.tick()).published_wakeups == 0
    clock.advance("1m")
    assert (await runtime.tick()).published_wakeups == 1
    (message,) = published(runtime)
    assert message.run_id == created.run.id
    result = await runtime.execute_delivery(message)
    assert result.run is not None
    assert result.run.status is RunStatus.SUCCEEDED


class _BrokenAppendStorage:
    """Local storage whose appends fail like an unreachable database."""

    def __init__(self) -> None:
        self._inner = create_local_storage()
        self.capabilities = self._inner.capabilities
        self.name = "broken"

    def __getattr__(self, name: str) -> object:
        return getattr(self._inner, name)

    async def append_run_events(self, command: object) -> object:
        raise RunlaneError(ErrorCode.INTERNAL_ERROR, "database unavailable", retryable=True)


async def test_storage_failure_rejects_the_trigger(harness: Harness) -> None:
    job = task("jobs.unlucky", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(_BrokenAppendStorage()))

    with expect_error(ErrorCode.INTERNAL_ERROR):
        await runtime.trigger(job)
    assert published(runtime) == ()


async def test_execute_next_takes_the_earliest_available_run_first(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.ordered", run=noop)
    runtime = harness.runtime([job])
    start = clock.now()
    delayed = await runtime.trigger(job, delay="10m")
    clock.set(start + timedelta(minutes=1))
    first = await runtime.trigger(job)
    clock.set(start + timedelta(minutes=2))
    second = await runtime.trigger(job)
    clock.set(start + timedelta(minutes=20))

    order = []
    for _ in range(3):
        run = await runtime.execute_next()
        assert run is not None
        order.append(run.id)

    assert order == [first.run.id, second.run.id, delayed.run.id]
    assert await runtime.execute_next() is None
