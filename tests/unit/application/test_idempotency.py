"""Idempotency ownership: active owners, TTL retention of terminal owners, reset, find_current."""

from datetime import timedelta

import pytest

from runlane import (
    ErrorCode,
    RetryPolicy,
    RunlaneError,
    RunStatus,
    StorageConflictKind,
    TriggerOutcomeType,
    task,
)
from runlane.testing import ControlledClock
from tests.unit.application.support import (
    Harness,
    all_run_ids,
    claim_queued_run,
    expect_error,
    noop,
    published,
)


async def _fail(payload: object, context: object) -> None:
    raise RunlaneError(ErrorCode.TASK_FAILED, "permanent", retryable=False)


async def test_duplicate_trigger_returns_the_active_owner(harness: Harness) -> None:
    job = task("emails.welcome", run=noop)
    runtime = harness.runtime([job])

    first = await runtime.trigger(job, {"user": 1}, idempotency_key="welcome.1")
    second = await runtime.trigger(job, {"user": 1}, idempotency_key="welcome.1")

    assert first.outcome is TriggerOutcomeType.CREATED
    assert second.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert second.run.id == first.run.id
    assert second.run.event_sequence == first.run.event_sequence  # nothing new written
    assert await all_run_ids(runtime) == [first.run.id]
    assert len(published(runtime)) == 1
    assert first.run.idempotency_key == "welcome.1"


async def test_running_owner_is_returned_too(harness: Harness) -> None:
    job = task("emails.welcome", run=noop)
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, idempotency_key="k")
    await claim_queued_run(runtime.lane, harness.clock, first.run.id, environment=runtime.environment)

    again = await runtime.trigger(job, idempotency_key="k")
    assert again.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert again.run.id == first.run.id
    assert again.run.status is RunStatus.RUNNING


async def test_task_level_key_function_converges(harness: Harness) -> None:
    job = task("emails.welcome", run=noop, idempotency_key=lambda p: f"welcome.{p['user']}")
    runtime = harness.runtime([job])

    a = await runtime.trigger(job, {"user": 7})
    b = await runtime.trigger(job, {"user": 7})
    c = await runtime.trigger(job, {"user": 8})

    assert b.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert b.run.id == a.run.id
    assert c.outcome is TriggerOutcomeType.CREATED
    assert a.run.idempotency_key == "welcome.7"


async def test_ownership_is_task_scoped(harness: Harness) -> None:
    one = task("tasks.one", run=noop)
    two = task("tasks.two", run=noop)
    runtime = harness.runtime([one, two])

    a = await runtime.trigger(one, idempotency_key="same")
    b = await runtime.trigger(two, idempotency_key="same")

    assert b.outcome is TriggerOutcomeType.CREATED
    assert a.run.id != b.run.id


async def test_ownership_is_environment_scoped(harness: Harness) -> None:
    job = task("tasks.one", run=noop)
    production = harness.runtime([job], environment="production")
    staging = harness.runtime([job], lane=production.lane, environment="staging")

    a = await production.trigger(job, idempotency_key="same")
    b = await staging.trigger(job, idempotency_key="same")

    assert b.outcome is TriggerOutcomeType.CREATED
    assert a.run.id != b.run.id


@pytest.mark.parametrize("outcome", ["succeeded", "cancelled"])
async def test_succeeded_and_cancelled_owners_are_retained_until_created_at_plus_ttl(
    harness: Harness, clock: ControlledClock, outcome: str
) -> None:
    job = task("reports.build", run=noop)
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, idempotency_key="report.jan", idempotency_key_ttl="1h")
    created_at = first.run.created_at
    clock.advance("10m")
    if outcome == "succeeded":
        finished = await runtime.execute_next()
        assert finished is not None
        assert finished.status is RunStatus.SUCCEEDED
    else:
        cancelled = await runtime.runs.cancel(first.run.id)
        assert cancelled.status is RunStatus.CANCELLED

    clock.set(created_at + timedelta(hours=1) - timedelta(milliseconds=1))
    retained = await runtime.trigger(job, idempotency_key="report.jan", idempotency_key_ttl="1h")
    assert retained.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert retained.run.id == first.run.id
    assert retained.run.status is RunStatus(outcome)

    clock.set(created_at + timedelta(hours=1))
    fresh = await runtime.trigger(job, idempotency_key="report.jan", idempotency_key_ttl="1h")
    assert fresh.outcome is TriggerOutcomeType.CREATED
    assert fresh.run.id != first.run.id


async def test_failed_owner_releases_the_key_immediately(harness: Harness) -> None:
    job = task("reports.fail", run=_fail, retry=RetryPolicy(max_attempts=3))
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, idempotency_key="k", idempotency_key_ttl="30d")
    failed = await runtime.execute_next()
    assert failed is not None
    assert failed.status is RunStatus.FAILED

    again = await runtime.trigger(job, idempotency_key="k")

    assert again.outcome is TriggerOutcomeType.CREATED
    assert again.run.id != first.run.id


async def test_retrying_owner_is_still_active(harness: Harness) -> None:
    async def flaky(payload: object, context: object) -> None:
        raise RuntimeError("transient")

    job = task("reports.flaky", run=flaky, retry=RetryPolicy(max_attempts=3))
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, idempotency_key="k")
    retrying = await runtime.execute_next()
    assert retrying is not None
    assert retrying.status is RunStatus.RETRYING

    again = await runtime.trigger(job, idempotency_key="k")
    assert again.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert again.run.id == first.run.id


@pytest.mark.parametrize("outcome", ["succeeded", "cancelled", "failed"])
async def test_active_ttl_releases_at_any_terminal_status(harness: Harness, outcome: str) -> None:
    async def handler(payload: object, context: object) -> None:
        if outcome == "failed":
            raise RuntimeError("no")

    job = task("reports.active", run=handler)
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, idempotency_key="k", idempotency_key_ttl="active")
    assert first.run.idempotency_key_ttl == "active"
    assert (await runtime.trigger(job, idempotency_key="k", idempotency_key_ttl="active")).outcome is (
        TriggerOutcomeType.RETURNED_EXISTING
    )
    if outcome == "cancelled":
        await runtime.runs.cancel(first.run.id)
    else:
        finished = await runtime.execute_next()
        assert finished is not None
        assert finished.status is RunStatus(outcome)

    again = await runtime.trigger(job, idempotency_key="k", idempotency_key_ttl="active")
    assert again.outcome is TriggerOutcomeType.CREATED
    assert again.run.id != first.run.id


async def test_task_level_active_ttl_is_captured(harness: Harness) -> None:
    job = task("reports.active", run=noop, idempotency_key="fixed", idempotency_key_ttl="active")
    runtime = harness.runtime([job])
    first = await runtime.trigger(job)
    assert first.run.idempotency_key == "fixed"
    assert first.run.idempotency_key_ttl == "active"
    await runtime.execute_next()
    assert (await runtime.trigger(job)).outcome is TriggerOutcomeType.CREATED


async def test_default_ttl_is_30_days(harness: Harness, clock: ControlledClock) -> None:
    job = task("reports.default_ttl", run=noop)
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, idempotency_key="k")
    assert first.run.idempotency_key_ttl == "30d"
    await runtime.execute_next()

    clock.set(first.run.created_at + timedelta(days=30) - timedelta(milliseconds=1))
    assert (await runtime.trigger(job, idempotency_key="k")).outcome is TriggerOutcomeType.RETURNED_EXISTING
    clock.set(first.run.created_at + timedelta(days=30))
    assert (await runtime.trigger(job, idempotency_key="k")).outcome is TriggerOutcomeType.CREATED


async def test_reset_clears_retained_ownership(harness: Harness) -> None:
    job = task("reports.reset", run=noop)
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, idempotency_key="k")
    await runtime.execute_next()
    assert (await runtime.trigger(job, idempotency_key="k")).outcome is TriggerOutcomeType.RETURNED_EXISTING

    await runtime.idempotency_keys.reset(job, key="k")

    # reset executes nothing and leaves the run itself untouched
    source = await runtime.runs.get(first.run.id)
    assert source is not None
    assert source.status is RunStatus.SUCCEEDED
    assert await runtime.runs.find_current(task=job, idempotency_key="k") is None
    again = await runtime.trigger(job, idempotency_key="k")
    assert again.outcome is TriggerOutcomeType.CREATED
    assert again.run.id != first.run.id
    assert len(await all_run_ids(runtime)) == 2


async def test_reset_with_an_active_owner_raises_storage_conflict(harness: Harness) -> None:
    job = task("reports.reset", run=noop)
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, idempotency_key="k")

    with expect_error(ErrorCode.STORAGE_CONFLICT) as info:
        await runtime.idempotency_keys.reset(job, key="k")
    assert info.value.conflict_kind is StorageConflictKind.IDEMPOTENCY_OWNER

    again = await runtime.trigger(job, idempotency_key="k")
    assert again.outcome is TriggerOutcomeType.RETURNED_EXISTING
    assert again.run.id == first.run.id


async def test_reset_of_an_unknown_key_is_a_no_op(harness: Harness) -> None:
    job = task("reports.reset", run=noop)
    runtime = harness.runtime([job])

    await runtime.idempotency_keys.reset(job, key="never-used")

    assert await all_run_ids(runtime) == []
    assert published(runtime) == ()


async def test_find_current_follows_the_retention_rules(harness: Harness, clock: ControlledClock) -> None:
    ok = task("reports.ok", run=noop)
    bad = task("reports.bad", run=_fail)
    runtime = harness.runtime([ok, bad])

    assert await runtime.runs.find_current(task=ok, idempotency_key="k") is None
    owner = await runtime.trigger(ok, idempotency_key="k", idempotency_key_ttl="1h")
    active = await runtime.runs.find_current(task=ok, idempotency_key="k")
    assert active is not None
    assert active.id == owner.run.id
    assert active.status is RunStatus.QUEUED

    await runtime.execute_next()
    retained = await runtime.runs.find_current(task=ok, idempotency_key="k")
    assert retained is not None
    assert retained.status is RunStatus.SUCCEEDED

    clock.set(owner.run.created_at + timedelta(hours=1))
    assert await runtime.runs.find_current(task=ok, idempotency_key="k") is None

    failing = await runtime.trigger(bad, idempotency_key="k")
    assert (await runtime.runs.find_current(task=bad, idempotency_key="k")).id == failing.run.id  # type: ignore[union-attr]
    await runtime.execute_next()
    assert await runtime.runs.find_current(task=bad, idempotency_key="k") is None

    # task-scoped: the other task's key is not visible through this task
    await runtime.trigger(ok, idempotency_key="only-ok")
    assert await runtime.runs.find_current(task=bad, idempotency_key="only-ok") is None


async def test_find_active_by_idempotency_key_sees_only_active_owners(harness: Harness) -> None:
    job = task("reports.find", run=noop)
    runtime = harness.runtime([job])
    owner = await runtime.trigger(job, idempotency_key="k")

    found = await runtime.runs.find_active(task=job, idempotency_key="k")
    assert found is not None
    assert found.id == owner.run.id
    await runtime.execute_next()
    assert await runtime.runs.find_active(task=job, idempotency_key="k") is None
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.find_active(task=job)


async def test_ttl_without_a_key_is_rejected(harness: Harness) -> None:
    job = task("reports.nokey", run=noop)
    runtime = harness.runtime([job])

    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.trigger(job, idempotency_key_ttl="1h")
    with expect_error(ErrorCode.CONFIGURATION_INVALID):
        task("reports.bad_definition", run=noop, idempotency_key_ttl="1h")
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.trigger(job, idempotency_key="k", idempotency_key_ttl="forever")
    assert await all_run_ids(runtime) == []
