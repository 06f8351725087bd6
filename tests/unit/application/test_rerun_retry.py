"""Rerun (any terminal source) and manual retry (failed sources only) create linked child runs."""

import pytest

from runlane import (
    ErrorCode,
    RunSourceType,
    RunStatus,
    TaskDefinition,
    TriggerOutcomeType,
    task,
)
from runlane.application.runtime import Runlane
from runlane.testing import ControlledClock
from tests.unit.application.support import (
    Harness,
    all_run_ids,
    claim_queued_run,
    expect_error,
    published,
)


async def _handler(payload: dict[str, str], context: object) -> None:
    if payload["mode"] == "fail":
        raise RuntimeError("boom")


def _job() -> TaskDefinition:
    return task("jobs.report", run=_handler)


async def _run_in(runtime: Runlane, clock: ControlledClock, status: RunStatus) -> str:
    job = runtime.tasks["report"]
    if status is RunStatus.CANCELLED:
        created = await runtime.trigger(job, {"mode": "ok"})
        await runtime.runs.cancel(created.run.id)
        return created.run.id
    if status is RunStatus.QUEUED:
        return (await runtime.trigger(job, {"mode": "ok"})).run.id
    if status is RunStatus.SCHEDULED:
        return (await runtime.trigger(job, {"mode": "ok"}, delay="1h")).run.id
    if status is RunStatus.RUNNING:
        created = await runtime.trigger(job, {"mode": "ok"})
        await claim_queued_run(runtime.lane, clock, created.run.id, environment=runtime.environment)
        return created.run.id
    created = await runtime.trigger(job, {"mode": "fail" if status is RunStatus.FAILED else "ok"})
    done = await runtime.execute_next()
    assert done is not None
    assert done.status is status
    return created.run.id


@pytest.mark.parametrize("status", [RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED])
async def test_rerun_of_any_terminal_run_creates_a_linked_child(
    harness: Harness, clock: ControlledClock, status: RunStatus
) -> None:
    runtime = harness.runtime({"report": _job()})
    source_id = await _run_in(runtime, clock, status)
    source_before = await runtime.runs.get(source_id)
    clock.advance("1m")

    result = await runtime.runs.rerun(source_id)

    child = result.run
    assert result.outcome is TriggerOutcomeType.CREATED
    assert child.id != source_id
    assert child.source.type is RunSourceType.RERUN
    assert child.source.source_run_id == source_id
    assert child.status is RunStatus.QUEUED
    assert child.task_id == "jobs.report"
    assert child.payload == source_before.payload  # type: ignore[union-attr]
    assert (child.attempts, child.failures, child.retries, child.releases) == (0, 0, 0, 0)
    assert await runtime.runs.get(source_id) == source_before  # the source is never touched
    assert published(runtime)[-1].run_id == child.id
    executed = await runtime.execute_next()
    assert executed is not None
    assert executed.id == child.id


async def test_manual_retry_of_a_failed_run_creates_a_linked_child(
    harness: Harness, clock: ControlledClock
) -> None:
    runtime = harness.runtime({"report": _job()})
    source_id = await _run_in(runtime, clock, RunStatus.FAILED)
    source_before = await runtime.runs.get(source_id)

    result = await runtime.runs.retry(source_id)

    assert result.run.source.type is RunSourceType.MANUAL_RETRY
    assert result.run.source.source_run_id == source_id
    assert result.run.status is RunStatus.QUEUED
    assert await runtime.runs.get(source_id) == source_before
    assert sorted(await all_run_ids(runtime)) == sorted([source_id, result.run.id])


@pytest.mark.parametrize("status", [RunStatus.QUEUED, RunStatus.SCHEDULED, RunStatus.RUNNING])
async def test_rerun_of_an_active_run_is_rejected(
    harness: Harness, clock: ControlledClock, status: RunStatus
) -> None:
    runtime = harness.runtime({"report": _job()})
    source_id = await _run_in(runtime, clock, status)

    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.rerun(source_id)
    assert await all_run_ids(runtime) == [source_id]


@pytest.mark.parametrize(
    "status", [RunStatus.SUCCEEDED, RunStatus.CANCELLED, RunStatus.QUEUED, RunStatus.RUNNING]
)
async def test_retry_of_anything_but_failed_is_rejected(
    harness: Harness, clock: ControlledClock, status: RunStatus
) -> None:
    runtime = harness.runtime({"report": _job()})
    source_id = await _run_in(runtime, clock, status)

    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.retry(source_id)
    assert await all_run_ids(runtime) == [source_id]


async def test_missing_source_is_run_not_found(harness: Harness) -> None:
    runtime = harness.runtime({"report": _job()})
    with expect_error(ErrorCode.RUN_NOT_FOUND):
        await runtime.runs.rerun("run_missing")
    with expect_error(ErrorCode.RUN_NOT_FOUND):
        await runtime.runs.retry("run_missing")


async def test_source_in_another_environment_is_run_not_found(
    harness: Harness, clock: ControlledClock
) -> None:
    production = harness.runtime({"report": _job()}, environment="production")
    staging = harness.runtime(
        {"report": production.tasks["report"]}, lane=production.lane, environment="staging"
    )
    source_id = await _run_in(production, clock, RunStatus.FAILED)

    with expect_error(ErrorCode.RUN_NOT_FOUND):
        await staging.runs.rerun(source_id)
    with expect_error(ErrorCode.RUN_NOT_FOUND):
        await staging.runs.retry(source_id)


async def test_task_not_registered_in_the_current_runtime_is_task_not_found(
    harness: Harness, clock: ControlledClock
) -> None:
    original = harness.runtime({"report": _job()})
    source_id = await _run_in(original, clock, RunStatus.FAILED)
    other_task = task("jobs.other", run=_handler)
    without_report = harness.runtime({"other": other_task}, lane=original.lane)

    with expect_error(ErrorCode.TASK_NOT_FOUND):
        await without_report.runs.rerun(source_id)
    with expect_error(ErrorCode.TASK_NOT_FOUND):
        await without_report.runs.retry(source_id)
    assert await all_run_ids(original) == [source_id]


async def test_payload_is_revalidated_against_the_current_schema(
    harness: Harness, clock: ControlledClock
) -> None:
    original = harness.runtime({"report": _job()})
    source_id = await _run_in(original, clock, RunStatus.FAILED)

    def strict(value: object) -> object:
        if not isinstance(value, dict) or "version" not in value:
            raise ValueError("version is required now")
        return value

    stricter = task("jobs.report", run=_handler, schema=strict)
    upgraded = harness.runtime({"report": stricter}, lane=original.lane)

    with expect_error(ErrorCode.VALIDATION_FAILED):
        await upgraded.runs.retry(source_id)
    assert await all_run_ids(original) == [source_id]


async def test_child_of_a_keyed_run_is_a_deliberate_new_run(harness: Harness, clock: ControlledClock) -> None:
    keyed = task("jobs.report", run=_handler, idempotency_key="monthly")
    runtime = harness.runtime({"report": keyed})
    source_id = await _run_in(runtime, clock, RunStatus.SUCCEEDED)

    child = await runtime.runs.rerun(source_id)

    assert child.outcome is TriggerOutcomeType.CREATED
    assert child.run.id != source_id
