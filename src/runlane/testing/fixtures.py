"""Run fixtures: put runs into a lane's storage in a given state, exactly as core would write them.

Every helper takes a lane-shaped value (anything with ``.storage``) or a storage adapter itself,
plus a clock, so tests can prepare state without a runtime.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runlane.domain.durations import DurationInput, to_duration
from runlane.domain.ids import new_worker_id
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.timestamps import add_ms
from runlane.domain.values import Environment, Lease
from runlane.domain.vocabulary import RUNNABLE_RUN_STATUSES
from runlane.ports.clock import Clock
from runlane.ports.storage import StorageAdapter
from runlane.ports.storage_commands import AppendRunEventsResult, GetRun
from runlane.testing.run_builders import (
    TEST_ENVIRONMENT,
    TEST_QUEUE,
    TEST_TASK_ID,
    RunData,
    create_queued_run_data,
    create_scheduled_run_data,
    create_succeeded_run_data,
    lease_claimed_event,
    next_run_data,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendedRun:
    run: RunRecord
    events: tuple[RunEventRecord, ...]
    outbox_message_ids: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class QueuedRunFixture(AppendedRun):
    @property
    def queued_run(self) -> RunRecord:
        return self.run


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduledRunFixture(AppendedRun):
    @property
    def scheduled_run(self) -> RunRecord:
        return self.run


@dataclass(frozen=True, slots=True, kw_only=True)
class SucceededRunFixture(AppendedRun):
    @property
    def succeeded_run(self) -> RunRecord:
        return self.run


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedRunFixture(AppendedRun):
    lease: Lease


def storage_of(lane_like: Any) -> StorageAdapter:
    """The storage of a lane-shaped value, or the value itself when it already is a storage adapter."""
    if callable(getattr(lane_like, "append_run_events", None)):
        adapter: StorageAdapter = lane_like
        return adapter
    storage: StorageAdapter | None = getattr(lane_like, "storage", None)
    if storage is None:
        raise TypeError(
            f"Expected a lane (with .storage) or a storage adapter, got {type(lane_like).__name__}."
        )
    return storage


async def append_run_data(lane_like: Any, data: RunData, now: datetime) -> AppendRunEventsResult:
    """Append ``data``; fail loudly if storage converged on an existing owner instead."""
    result = await storage_of(lane_like).append_run_events(data.append_command(now))
    if result.returned_existing:
        raise AssertionError(
            f"Storage returned existing run {result.run.id} instead of creating {data.run.id}."
        )
    return result


async def append_queued_run(
    lane: Any,
    clock: Clock,
    run_id: str,
    *,
    environment: Environment = TEST_ENVIRONMENT,
    task_id: str = TEST_TASK_ID,
    queue: str = TEST_QUEUE,
    with_delivery: bool = True,
    **created_options: Any,
) -> QueuedRunFixture:
    """A ``queued`` run with a delivery request due now (``with_delivery=False``: bounded-queue shape)."""
    now = clock.now()
    data = create_queued_run_data(
        run_id,
        now=now,
        environment=environment,
        task_id=task_id,
        queue=queue,
        with_delivery=with_delivery,
        **created_options,
    )
    result = await append_run_data(lane, data, now)
    return QueuedRunFixture(
        run=result.run, events=result.events, outbox_message_ids=result.outbox_message_ids
    )


async def append_scheduled_run(
    lane: Any,
    clock: Clock,
    run_id: str,
    *,
    run_at: datetime | None = None,
    delay: DurationInput = "1m",
    environment: Environment = TEST_ENVIRONMENT,
    task_id: str = TEST_TASK_ID,
    queue: str = TEST_QUEUE,
    **created_options: Any,
) -> ScheduledRunFixture:
    """A ``scheduled`` run due at ``run_at`` (default: ``delay`` from now)."""
    now = clock.now()
    if run_at is None:
        run_at = add_ms(now, to_duration(delay, field="delay").milliseconds)
    data = create_scheduled_run_data(
        run_id,
        now=now,
        run_at=run_at,
        environment=environment,
        task_id=task_id,
        queue=queue,
        **created_options,
    )
    result = await append_run_data(lane, data, now)
    return ScheduledRunFixture(
        run=result.run, events=result.events, outbox_message_ids=result.outbox_message_ids
    )


async def append_succeeded_run(
    lane: Any,
    clock: Clock,
    run_id: str,
    *,
    environment: Environment = TEST_ENVIRONMENT,
    task_id: str = TEST_TASK_ID,
    queue: str = TEST_QUEUE,
    **created_options: Any,
) -> SucceededRunFixture:
    """A ``succeeded`` run (created, leased and succeeded at the clock's current time)."""
    now = clock.now()
    data = create_succeeded_run_data(
        run_id, now=now, environment=environment, task_id=task_id, queue=queue, **created_options
    )
    result = await append_run_data(lane, data, now)
    return SucceededRunFixture(run=result.run, events=result.events)


async def claim_queued_run(
    lane: Any,
    clock: Clock,
    run_id: str,
    lease_duration: DurationInput = "30s",
    worker_id: str | None = None,
    *,
    environment: Environment = TEST_ENVIRONMENT,
) -> ClaimedRunFixture:
    """Lease a runnable run without running a handler: the state a crashed worker leaves behind."""
    storage = storage_of(lane)
    run = await storage.get_run(GetRun(environment=environment, run_id=run_id))
    if run is None:
        raise AssertionError(f"Run {run_id} does not exist in environment {environment.name!r}.")
    if run.status not in RUNNABLE_RUN_STATUSES:
        raise AssertionError(f"Run {run_id} is {run.status.value}; only runnable runs can be claimed.")
    now = clock.now()
    event = lease_claimed_event(
        run, now=now, worker_id=worker_id or new_worker_id(), lease_duration=lease_duration
    )
    data = next_run_data(run, event)
    result = await storage.append_run_events(data.append_command(now))
    assert result.run.lease is not None
    return ClaimedRunFixture(run=result.run, events=result.events, lease=result.run.lease)


async def get_lease(lane: Any, run_id: str, *, environment: Environment = TEST_ENVIRONMENT) -> Lease:
    """The run's current lease; an ``AssertionError`` when the run is missing or holds none."""
    run = await storage_of(lane).get_run(GetRun(environment=environment, run_id=run_id))
    if run is None:
        raise AssertionError(f"Run {run_id} does not exist in environment {environment.name!r}.")
    if run.lease is None:
        raise AssertionError(f"Run {run_id} ({run.status.value}) holds no lease.")
    return run.lease
