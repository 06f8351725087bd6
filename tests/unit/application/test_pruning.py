"""runs.prune: terminal runs strictly older than the cutoff, in this environment only, in bounded batches."""

from datetime import timedelta

import pytest

from runlane import ErrorCode, RunStatus, task
from runlane.application.runtime import Runlane
from runlane.infrastructure.memory import create_local_storage
from runlane.testing import ControlledClock
from tests.unit.application.support import (
    CapabilityStorage,
    Harness,
    all_run_ids,
    expect_error,
    lane_with_storage,
)


async def _handler(payload: dict[str, str], context: object) -> None:
    if payload["mode"] == "fail":
        raise RuntimeError("x")


def _runtime(harness: Harness, **options: object) -> Runlane:
    return harness.runtime({"job": task("jobs.prunable", run=_handler)}, **options)  # type: ignore[arg-type]


async def _finish(runtime: Runlane, mode: str) -> str:
    """One run that ends ``succeeded`` (mode ok), ``failed`` (fail) or ``cancelled`` (cancel)."""
    created = await runtime.trigger(runtime.tasks["job"], {"mode": mode})
    if mode == "cancel":
        await runtime.runs.cancel(created.run.id)
    else:
        done = await runtime.execute_delivery(
            runtime.lane.transport.published[-1]  # type: ignore[attr-defined]
        )
        assert done.run is not None
        assert done.run.is_terminal
    return created.run.id


async def test_prunes_only_terminal_runs_older_than_the_cutoff(
    harness: Harness, clock: ControlledClock
) -> None:
    runtime = _runtime(harness)
    old = [await _finish(runtime, mode) for mode in ("ok", "fail", "cancel")]
    old_active = (await runtime.trigger(runtime.tasks["job"], {"mode": "ok"}, delay="1d")).run.id
    clock.advance("2h")
    recent = await _finish(runtime, "ok")

    result = await runtime.runs.prune(older_than="1h")

    assert result.deleted == 3
    assert result.next_cursor is None
    assert sorted(await all_run_ids(runtime)) == sorted([old_active, recent])
    for run_id in old:
        assert await runtime.runs.get(run_id) is None
        assert (await runtime.runs.events(run_id)).data == ()


async def test_cutoff_is_strict(harness: Harness, clock: ControlledClock) -> None:
    runtime = _runtime(harness)
    run_id = await _finish(runtime, "ok")
    finished = await runtime.runs.get(run_id)
    assert finished is not None

    at_cutoff = await runtime.runs.prune(older_than=finished.updated_at)
    assert at_cutoff.deleted == 0
    clock.set(finished.updated_at + timedelta(hours=1))
    assert (await runtime.runs.prune(older_than="1h")).deleted == 0  # cutoff == updated_at
    just_after = await runtime.runs.prune(older_than=finished.updated_at + timedelta(milliseconds=1))
    assert just_after.deleted == 1


async def test_statuses_filter(harness: Harness, clock: ControlledClock) -> None:
    runtime = _runtime(harness)
    ok = await _finish(runtime, "ok")
    failed = await _finish(runtime, "fail")
    cancelled = await _finish(runtime, "cancel")
    clock.advance("1d")

    result = await runtime.runs.prune(older_than="1h", statuses=[RunStatus.FAILED, "cancelled"])

    assert result.deleted == 2
    assert await all_run_ids(runtime) == [ok]
    assert await runtime.runs.get(failed) is None
    assert await runtime.runs.get(cancelled) is None


@pytest.mark.parametrize(
    "status",
    ["queued", "running", "retrying", "released", "scheduled", "cancellation_requested"],
)
async def test_active_status_is_rejected_before_storage_is_called(
    harness: Harness, clock: ControlledClock, status: str
) -> None:
    storage = CapabilityStorage(create_local_storage())
    runtime = _runtime(harness, lane=lane_with_storage(storage))
    await _finish(runtime, "ok")
    clock.advance("1d")
    storage.calls.clear()

    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.prune(older_than="1h", statuses=["succeeded", status])

    assert storage.calls == []
    assert len(await all_run_ids(runtime)) == 1


async def test_pruning_is_environment_scoped(harness: Harness, clock: ControlledClock) -> None:
    production = _runtime(harness, environment="production")
    staging = harness.runtime({"job": production.tasks["job"]}, lane=production.lane, environment="staging")
    kept = [await _finish(staging, "ok") for _ in range(3)]
    await _finish(production, "ok")
    clock.advance("1d")

    result = await production.runs.prune(older_than="1h")

    assert result.deleted == 1
    assert await all_run_ids(production) == []
    assert sorted(await all_run_ids(staging)) == sorted(kept)


async def test_limit_and_cursor_loop_deletes_everything(harness: Harness, clock: ControlledClock) -> None:
    runtime = _runtime(harness)
    for n in range(12):
        await _finish(runtime, ("ok", "fail", "cancel")[n % 3])
        clock.advance("1ms")
    clock.advance("1d")

    batches: list[int] = []
    cursor: str | None = None
    for _ in range(20):
        result = await runtime.runs.prune(older_than="1h", limit=5, cursor=cursor)
        batches.append(result.deleted)
        assert result.deleted <= 5
        cursor = result.next_cursor
        if cursor is None:
            break

    assert sum(batches) == 12
    assert batches[0] == 5
    assert await all_run_ids(runtime) == []


async def test_bad_prune_arguments(harness: Harness) -> None:
    runtime = _runtime(harness)
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.prune(older_than="1 hour")
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.prune(older_than="1h", limit=0)
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.prune(older_than="1h", statuses=["gone"])
