"""Capability gating: features the lane cannot honour fail with capability_unsupported, never fake success.

Each test runs twice: over storage that only *advertises* the missing capability (core itself must
refuse) and over ``runlane.testing.storage_with_capabilities`` (the adapter refuses as well).
"""

from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from runlane import ErrorCode, Schedule, WorkerMode, queue, task
from runlane.application.runtime import Runlane
from runlane.infrastructure.memory import create_local_storage
from runlane.ports.storage_commands import GetRun, ListRuns, RunFilter
from runlane.testing import ControlledClock, storage_with_capabilities
from tests.unit.application.support import (
    CapabilityStorage,
    Harness,
    expect_error,
    lane_with_storage,
    noop,
    published,
)

Restricted = Callable[..., CapabilityStorage]


@pytest.fixture(params=["advertised", "enforced"])
def restricted(request: pytest.FixtureRequest) -> Restricted:
    """Build a recording local storage with some capability flags off."""

    def build(**flags: bool) -> CapabilityStorage:
        if request.param == "advertised":
            return CapabilityStorage(create_local_storage(), **flags)
        return CapabilityStorage(storage_with_capabilities(create_local_storage(), **flags))

    return build


async def _stored_ids(runtime: Runlane) -> list[str]:
    """Read the real storage behind the wrappers (the runtime's own reads may be gated)."""
    storage: Any = runtime.lane.storage
    base = storage.base if isinstance(storage, CapabilityStorage) else storage
    page = await base.list_runs(ListRuns(filter=RunFilter(environment=runtime.environment)))
    return [run.id for run in page.data]


READS: dict[str, Callable[[Runlane, str], Awaitable[Any]]] = {
    "get": lambda rt, run_id: rt.runs.get(run_id),
    "list": lambda rt, run_id: rt.runs.list(),
    "events": lambda rt, run_id: rt.runs.events(run_id),
    "attempts": lambda rt, run_id: rt.runs.attempts(run_id),
    "find_active": lambda rt, run_id: rt.runs.find_active(task=rt.tasks["job"], idempotency_key="k"),
    "find_current": lambda rt, run_id: rt.runs.find_current(task=rt.tasks["job"], idempotency_key="k"),
    "cancel": lambda rt, run_id: rt.runs.cancel(run_id),
    "rerun": lambda rt, run_id: rt.runs.rerun(run_id),
    "retry": lambda rt, run_id: rt.runs.retry(run_id),
}


@pytest.mark.parametrize("operation", sorted(READS))
async def test_operator_reads_need_reads_run_history(
    harness: Harness, restricted: Restricted, clock: ControlledClock, operation: str
) -> None:
    storage = restricted(reads_run_history=False)
    runtime = harness.runtime({"job": task("jobs.gated", run=noop)}, lane=lane_with_storage(storage))
    created = await runtime.trigger(runtime.tasks["job"])

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await READS[operation](runtime, created.run.id)

    run = await runtime.lane.storage.get_run(GetRun(environment=runtime.environment, run_id=created.run.id))
    assert run is not None
    assert run.event_sequence == created.run.event_sequence  # no control change was appended
    assert await _stored_ids(runtime) == [created.run.id]


@pytest.mark.parametrize("operation", sorted(READS))
async def test_operator_reads_need_the_lane_operator_reads_flag(harness: Harness, operation: str) -> None:
    lane = lane_with_storage(create_local_storage(), operator_reads=False)
    runtime = harness.runtime({"job": task("jobs.gated", run=noop)}, lane=lane)
    created = await runtime.trigger(runtime.tasks["job"])

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await READS[operation](runtime, created.run.id)


async def test_prune_needs_prunes_runs_and_deletes_nothing(
    harness: Harness, restricted: Restricted, clock: ControlledClock
) -> None:
    storage = restricted(prunes_runs=False)
    runtime = harness.runtime({"job": task("jobs.gated", run=noop)}, lane=lane_with_storage(storage))
    await runtime.trigger(runtime.tasks["job"])
    done = await runtime.execute_next()
    assert done is not None
    clock.advance("30d")
    storage.calls.clear()

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.runs.prune(older_than="1h")

    assert "prune_runs" not in storage.calls
    assert await _stored_ids(runtime) == [done.id]


async def test_idempotency_keys_need_enforces_idempotency(harness: Harness, restricted: Restricted) -> None:
    storage = restricted(enforces_idempotency=False)
    job = task("jobs.keyed", run=noop)
    keyed_by_task = task("jobs.task_keyed", run=noop, idempotency_key="fixed")
    runtime = harness.runtime([job, keyed_by_task], lane=lane_with_storage(storage))

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.trigger(job, idempotency_key="k")
    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.trigger(keyed_by_task)
    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.run_now(job, idempotency_key="k")
    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.idempotency_keys.reset(job, key="k")
    assert await _stored_ids(runtime) == []
    assert published(runtime) == ()
    # without a key the same lane works
    assert (await runtime.trigger(job)).run.idempotency_key is None


async def test_singleton_keys_need_enforces_singleton(harness: Harness, restricted: Restricted) -> None:
    storage = restricted(enforces_singleton=False)
    job = task("jobs.single", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(storage))

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.trigger(job, singleton_key="one")
    assert await _stored_ids(runtime) == []


async def test_bounded_queue_needs_enforces_queue_concurrency(
    harness: Harness, restricted: Restricted
) -> None:
    storage = restricted(enforces_queue_concurrency=False)
    limited = queue("limited", concurrency_limit=2)

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        harness.runtime(
            [task("jobs.bounded", run=noop, queue=limited)],
            queues=[limited],
            lane=lane_with_storage(storage),
        )
    # an unbounded queue is fine on the same storage
    harness.runtime([task("jobs.free", run=noop)], lane=lane_with_storage(storage))


async def test_schedules_need_claims_schedule_occurrences(harness: Harness, restricted: Restricted) -> None:
    storage = restricted(claims_schedule_occurrences=False)
    scheduled = task("jobs.cron", run=noop, schedule=[Schedule(id="every.minute", every="1m")])

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        harness.runtime([scheduled], lane=lane_with_storage(storage))


async def test_workers_need_leases_runs(harness: Harness, restricted: Restricted) -> None:
    storage = restricted(leases_runs=False)
    job = task("jobs.unleased", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(storage))
    await runtime.trigger(job)

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.execute_next()
    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.run_now(job)
    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        runtime.worker(mode=WorkerMode.DRAIN)
    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED):
        await runtime.execute_delivery(published(runtime)[0])
    assert len(await _stored_ids(runtime)) == 1


@pytest.mark.parametrize("dispatch", ["eager", "deferred"])
async def test_a_trigger_in_a_callers_transaction_needs_a_storage_that_joins_it(
    harness: Harness, dispatch: str
) -> None:
    """The in-memory storage cannot join ``connection=``: it refuses instead of writing a run that
    would outlive the caller's rollback, and publishes nothing."""
    job = task("jobs.in_tx", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(create_local_storage()))

    with expect_error(ErrorCode.CAPABILITY_UNSUPPORTED) as raised:
        await runtime.trigger(job, {}, connection=object(), dispatch=dispatch)
    assert raised.value.meta == {"capability": "transaction"}
    assert await _stored_ids(runtime) == []
    assert published(runtime) == ()
    # without a caller's transaction the same lane works
    assert (await runtime.trigger(job, {}, dispatch=dispatch)).run.task_id == "jobs.in_tx"
