"""Singleton keys: at most one active run per (environment, task, key)."""

import asyncio

import pytest

from runlane import RunStatus, TriggerOutcomeType, task
from runlane.infrastructure.memory import create_local_storage
from tests.unit.application.support import (
    Harness,
    YieldingStorage,
    all_run_ids,
    claim_queued_run,
    lane_with_storage,
    noop,
)


async def test_second_trigger_while_active_returns_the_owner(harness: Harness) -> None:
    sync = task("crm.sync", run=noop, singleton_key="crm")
    runtime = harness.runtime([sync])

    first = await runtime.trigger(sync)
    second = await runtime.trigger(sync)

    assert first.outcome is TriggerOutcomeType.CREATED
    assert first.run.singleton_key == "crm"
    assert second.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert second.run.id == first.run.id
    assert await all_run_ids(runtime) == [first.run.id]


async def test_running_owner_is_returned(harness: Harness) -> None:
    sync = task("crm.sync", run=noop)
    runtime = harness.runtime([sync])
    first = await runtime.trigger(sync, singleton_key="crm")
    await claim_queued_run(runtime.lane, harness.clock, first.run.id, environment=runtime.environment)

    second = await runtime.trigger(sync, singleton_key="crm")

    assert second.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert second.run.status is RunStatus.RUNNING


@pytest.mark.parametrize("outcome", ["succeeded", "failed", "cancelled"])
async def test_after_the_owner_is_terminal_a_new_run_is_created(harness: Harness, outcome: str) -> None:
    async def handler(payload: object, context: object) -> None:
        if outcome == "failed":
            raise RuntimeError("no")

    sync = task("crm.sync", run=handler, singleton_key=lambda p: f"crm.{p['account']}")
    runtime = harness.runtime([sync])
    first = await runtime.trigger(sync, {"account": 1})
    if outcome == "cancelled":
        await runtime.runs.cancel(first.run.id)
    else:
        done = await runtime.execute_next()
        assert done is not None
        assert done.status is RunStatus(outcome)

    second = await runtime.trigger(sync, {"account": 1})

    assert second.outcome is TriggerOutcomeType.CREATED
    assert second.run.id != first.run.id
    # a third trigger now converges on the new active owner
    third = await runtime.trigger(sync, {"account": 1})
    assert third.run.id == second.run.id


async def test_keys_are_independent(harness: Harness) -> None:
    sync = task("crm.sync", run=noop)
    runtime = harness.runtime([sync])
    a = await runtime.trigger(sync, singleton_key="a")
    b = await runtime.trigger(sync, singleton_key="b")
    assert a.run.id != b.run.id
    found = await runtime.runs.find_active(task=sync, singleton_key="b")
    assert found is not None
    assert found.id == b.run.id


async def test_concurrent_singleton_triggers_converge_on_one_owner(harness: Harness) -> None:
    sync = task("crm.sync", run=noop, singleton_key="crm")
    runtime = harness.runtime([sync], lane=lane_with_storage(YieldingStorage(create_local_storage())))

    results = await asyncio.gather(*(runtime.trigger(sync) for _ in range(20)))

    assert len({r.run.id for r in results}) == 1
    assert [r.outcome for r in results].count(TriggerOutcomeType.CREATED) == 1
    assert len(await all_run_ids(runtime)) == 1
