"""Batched hot paths: trigger_many, batch claims in the worker, and group commit of outcomes."""

import asyncio
from typing import Any

from runlane import (
    DeliveryMessage,
    RunlaneError,
    RunStatus,
    StorageConflictKind,
    TriggerOutcomeType,
    create_lane,
    task,
)
from runlane.application.outcome_batcher import OutcomeBatcher
from runlane.domain.errors import is_conflict
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.memory import create_local_storage, create_local_transport
from runlane.ports.storage_commands import AppendRunEvents
from runlane.testing import ControlledClock, wait_for_condition, wait_for_run_status
from tests.unit.application.support import (
    DEFAULT_QUEUE,
    CapabilityStorage,
    Harness,
    all_run_ids,
    expect_error,
    noop,
    outbox_rows,
    published,
)


def _validated(payload: Any) -> Any:
    if not isinstance(payload, dict) or not isinstance(payload.get("n"), int):
        raise ValueError("n must be an int")
    return payload


async def test_trigger_many_reports_each_item_in_order(harness: Harness) -> None:
    counted = task("count", run=noop, schema=_validated, idempotency_key=lambda p: p.get("key"))
    runtime = harness.runtime([counted])
    results = await runtime.trigger_many(
        counted, [{"n": 1, "key": "a"}, {"n": 2, "key": "a"}, {"n": "x"}, {"n": 3}]
    )
    assert len(results) == 4
    first, duplicate, invalid, plain = results
    assert not isinstance(first, RunlaneError) and first.outcome is TriggerOutcomeType.CREATED
    assert not isinstance(duplicate, RunlaneError)
    assert duplicate.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert duplicate.run.id == first.run.id
    assert isinstance(invalid, RunlaneError) and invalid.code is ErrorCode.VALIDATION_FAILED
    assert not isinstance(plain, RunlaneError) and plain.run.status is RunStatus.QUEUED
    assert sorted(await all_run_ids(runtime)) == sorted({first.run.id, plain.run.id})
    # Eager dispatch: one wakeup per created run, none for the duplicate or the invalid item.
    assert sorted(m.run_id for m in published(runtime)) == sorted([first.run.id, plain.run.id])
    assert len(first.published) == 1 and len(plain.published) == 1


async def test_trigger_many_deferred_leaves_rows_for_tick(harness: Harness) -> None:
    runtime = harness.runtime([task("t", run=noop)])
    results = await runtime.trigger_many(runtime.tasks.t, [{}, {}, {}], dispatch="deferred")
    assert all(not isinstance(r, RunlaneError) for r in results)
    assert published(runtime) == ()
    assert {row.status.value for row in await outbox_rows(runtime)} == {"pending"}
    tick = await runtime.tick()
    assert tick.published_wakeups == 3


async def test_trigger_many_rejects_run_id_and_bad_lists(harness: Harness) -> None:
    runtime = harness.runtime([task("t", run=noop)])
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.trigger_many(runtime.tasks.t, [{}], run_id="run_x")  # type: ignore[call-arg]
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.trigger_many(runtime.tasks.t, "not a list")  # type: ignore[arg-type]
    assert await all_run_ids(runtime) == []


async def test_worker_claims_in_batches_and_runs_each_once(clock: ControlledClock) -> None:
    storage = CapabilityStorage(create_local_storage())
    harness = Harness(clock)
    ledger: list[str] = []

    async def record(payload: Any, context: Any) -> None:
        ledger.append(context.run.id)
        await asyncio.sleep(0)

    lane = create_lane(storage=storage, transport=create_local_transport(), name="local")
    runtime = harness.runtime([task("t", run=record)], lane=lane, dispatch="deferred")
    try:
        await runtime.trigger_many(runtime.tasks.t, [{} for _ in range(120)])
        storage.calls.clear()
        worker = runtime.worker(mode="drain", concurrency=60, batch_size=30)
        await worker
        assert sorted(ledger) == sorted(set(ledger)) and len(ledger) == 120
        claims = storage.calls.count("claim_due_runs")
        # 120 runs in batches of <= 30: at least 4 claims, and far fewer than one per run.
        assert 4 <= claims <= 12, claims
        assert storage.calls.count("append_many_run_events") >= 1
    finally:
        await harness.close()


async def test_outcome_batcher_keeps_fencing_per_item(harness: Harness) -> None:
    runtime = harness.runtime([task("t", run=noop)])
    created = [await runtime.trigger(runtime.tasks.t, {}) for _ in range(3)]
    storage = runtime.lane.storage
    batcher = OutcomeBatcher(storage, runtime.environment)
    from runlane.application.run_writes import delivery_event
    from runlane.domain.run_reducer import project_run_events

    commands = []
    for index, result in enumerate(created):
        run = result.run
        event = delivery_event(
            run.id,
            runtime.context,
            queue=run.queue,
            now=harness.clock.now(),
            available_at=harness.clock.now(),
            trace_carrier=None,
        )
        expected = run.event_sequence if index != 1 else run.event_sequence - 1  # item 1 is stale
        commands.append(
            AppendRunEvents(
                environment=runtime.environment,
                run_id=run.id,
                expected_sequence=expected,
                events=(event,),
                run=project_run_events((event,), run.event_sequence, run),
                now=harness.clock.now(),
            )
        )
    outcomes = await asyncio.gather(*(batcher.append(c) for c in commands), return_exceptions=True)
    assert not isinstance(outcomes[0], BaseException) and outcomes[0].run.event_sequence == 3
    assert isinstance(outcomes[1], RunlaneError) and is_conflict(outcomes[1], StorageConflictKind.SEQUENCE)
    assert not isinstance(outcomes[2], BaseException) and outcomes[2].run.event_sequence == 3
    stale = await runtime.runs.get(created[1].run.id)
    assert stale is not None and stale.event_sequence == 2  # the loser wrote nothing


class _ListeningTransport:
    """The local transport plus the optional WakeupSource protocol, for the worker's wakeup path."""

    def __init__(self) -> None:
        self.inner = create_local_transport()
        self.name = "listening"
        self.capabilities = self.inner.capabilities
        self.listeners: list[Any] = []

    @property
    def queues(self) -> Any:
        return None

    async def publish_wakeups(self, command: Any) -> Any:
        result = await self.inner.publish_wakeups(command)
        for attempt in command.attempts:
            for callback in self.listeners:
                callback(attempt.message)
        return result

    async def listen(self, queues: Any, on_wakeup: Any) -> Any:
        self.listeners.append(on_wakeup)
        listeners = self.listeners

        class _Subscription:
            async def close(self) -> None:
                listeners.remove(on_wakeup)

        return _Subscription()


async def test_poll_worker_wakes_on_wakeup_instead_of_waiting_the_poll_interval() -> None:
    from runlane import create_runlane

    transport = _ListeningTransport()
    lane = create_lane(storage=create_local_storage(), transport=transport, name="local")  # type: ignore[arg-type]
    done = asyncio.Event()

    async def handler(payload: Any, context: Any) -> None:
        done.set()

    runtime = create_runlane(lane=lane, queues=[DEFAULT_QUEUE], tasks=[task("t", run=handler)])
    async with runtime:
        worker = runtime.worker(poll_interval="30s")
        await asyncio.sleep(0.05)  # first (empty) claim happened; the worker now waits up to 30 s
        assert len(transport.listeners) == 1
        await runtime.trigger(runtime.tasks.t, {})
        await asyncio.wait_for(done.wait(), timeout=5)  # woken by the wakeup, not the 30 s poll
        await worker.stop()
        assert transport.listeners == []  # the subscription is closed with the worker
        assert isinstance(transport.inner.published[0], DeliveryMessage)


def _recorded_local_lane() -> tuple[CapabilityStorage, Any]:
    storage = CapabilityStorage(create_local_storage())
    return storage, create_lane(storage=storage, transport=create_local_transport(), name="local")


async def test_a_finished_attempt_does_not_make_an_idle_poll_worker_claim_again(
    clock: ControlledClock,
) -> None:
    """Only a loop waiting for a slot needs a finishing attempt's wakeup; anything else was a
    wasted claim that a real wakeup then had to wait behind."""
    storage, lane = _recorded_local_lane()
    harness = Harness(clock)
    release = asyncio.Event()

    async def held(payload: Any, context: Any) -> None:
        await release.wait()

    runtime = harness.runtime([task("t", run=held)], lane=lane)
    try:
        worker = runtime.worker(poll_interval="1h", concurrency=5)
        await wait_for_condition(lambda: storage.calls.count("claim_due_runs") >= 1, timeout=5)
        storage.calls.clear()
        created = await runtime.trigger(runtime.tasks.t, {})  # eager: its wakeup reaches the worker
        # The woken claim takes the run (one of five slots) and looks once more at once.
        await wait_for_condition(lambda: storage.calls.count("claim_due_runs") >= 2, timeout=5)
        release.set()
        await wait_for_run_status(runtime, created.run.id, RunStatus.SUCCEEDED, timeout=5)
        for _ in range(20):
            await asyncio.sleep(0)
        assert storage.calls.count("claim_due_runs") == 2
        await worker.stop()
    finally:
        await harness.close()


async def test_an_attempt_released_into_due_work_is_claimed_again_at_once(clock: ControlledClock) -> None:
    _, lane = _recorded_local_lane()
    harness = Harness(clock)
    attempts: list[int] = []

    async def polling(payload: Any, context: Any) -> Any:
        attempts.append(context.attempt)
        return context.release(clock.now(), reason="not_ready") if len(attempts) < 3 else None

    runtime = harness.runtime([task("t", run=polling)], lane=lane)
    try:
        worker = runtime.worker(poll_interval="1h", concurrency=5)
        created = await runtime.trigger(runtime.tasks.t, {})
        # No wakeup and no poll within the hour: the worker itself notices the run is due again.
        await wait_for_run_status(runtime, created.run.id, RunStatus.SUCCEEDED, timeout=5)
        assert len(attempts) == 3
        await worker.stop()
    finally:
        await harness.close()
