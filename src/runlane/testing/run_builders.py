"""Builders for run events and projections, folded with the domain reducer exactly as core does.

Tests and conformance suites use these to talk to storage through the port alone: every builder
returns plain domain values (``RunEvent``, ``RunRecord``) or the storage commands made from them.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runlane.domain.durations import DurationInput, to_duration
from runlane.domain.json_values import JsonValue
from runlane.domain.run_events import RunEvent
from runlane.domain.run_record import RunRecord
from runlane.domain.run_reducer import project_run_events
from runlane.domain.timestamps import add_ms
from runlane.domain.values import (
    SYSTEM_ACTOR,
    Actor,
    DeliveryIntent,
    Environment,
    Lease,
    RunFailure,
    RunSource,
)
from runlane.domain.vocabulary import ErrorCode, RunEventType
from runlane.ports.storage_commands import AppendPlan, AppendRunEvents, ScheduleOccurrenceClaim

TEST_ENVIRONMENT = Environment("test")
TEST_TASK_ID = "test.task"
TEST_QUEUE = "default"
TEST_WORKER_ID = "worker_test"
TASK_FAILURE = RunFailure(code=ErrorCode.TASK_FAILED, message="Task failed", retryable=True)
LEASE_EXPIRED_FAILURE = RunFailure(
    code=ErrorCode.INTERNAL_ERROR, message="Lease expired", retryable=True, meta={"reason": "lease_expired"}
)


@dataclass(frozen=True, slots=True, kw_only=True)
class RunData:
    """Events plus the projection core would append for them at ``expected_sequence``."""

    events: tuple[RunEvent, ...]
    run: RunRecord
    expected_sequence: int = 0

    def append_command(
        self,
        now: datetime,
        *,
        concurrency_limit: int | None = None,
        schedule_occurrence: ScheduleOccurrenceClaim | None = None,
    ) -> AppendRunEvents:
        return AppendRunEvents(
            environment=self.run.environment,
            run_id=self.run.id,
            expected_sequence=self.expected_sequence,
            events=self.events,
            run=self.run,
            now=now,
            concurrency_limit=concurrency_limit,
            schedule_occurrence=schedule_occurrence,
        )

    def plan(self) -> AppendPlan:
        return AppendPlan(events=self.events, run=self.run)


def created_event(
    run_id: str,
    *,
    now: datetime,
    environment: Environment = TEST_ENVIRONMENT,
    task_id: str = TEST_TASK_ID,
    queue: str = TEST_QUEUE,
    payload: JsonValue = None,
    source: RunSource | None = None,
    idempotency_key: str | None = None,
    idempotency_key_ttl: str | None = None,
    singleton_key: str | None = None,
    concurrency_key: str | None = None,
    run_at: datetime | None = None,
    trace_carrier: dict[str, str] | None = None,
    meta: dict[str, JsonValue] | None = None,
    actor: Actor = SYSTEM_ACTOR,
) -> RunEvent:
    return RunEvent(
        type=RunEventType.CREATED,
        run_id=run_id,
        environment=environment,
        occurred_at=now,
        actor=actor,
        task_id=task_id,
        queue=queue,
        payload=payload,
        source=source or RunSource(),
        idempotency_key=idempotency_key,
        idempotency_key_ttl=idempotency_key_ttl,
        singleton_key=singleton_key,
        concurrency_key=concurrency_key,
        run_at=run_at,
        trace_carrier=trace_carrier,
        meta=meta,
    )


def delivery_requested_event(
    run: RunRecord, *, now: datetime, available_at: datetime | None = None
) -> RunEvent:
    return RunEvent(
        type=RunEventType.DELIVERY_REQUESTED,
        run_id=run.id,
        environment=run.environment,
        occurred_at=now,
        delivery=DeliveryIntent(
            run_id=run.id,
            environment=run.environment,
            queue=run.queue,
            requested_at=now,
            available_at=available_at or now,
            trace_carrier=run.trace_carrier,
        ),
    )


def new_lease(
    *, now: datetime, worker_id: str = TEST_WORKER_ID, lease_duration: DurationInput = "30s"
) -> Lease:
    expires_at = add_ms(now, to_duration(lease_duration, field="lease_duration").milliseconds)
    return Lease(worker_id=worker_id, claimed_at=now, expires_at=expires_at, heartbeat_at=now)


def lease_claimed_event(
    run: RunRecord, *, now: datetime, worker_id: str = TEST_WORKER_ID, lease_duration: DurationInput = "30s"
) -> RunEvent:
    return RunEvent(
        type=RunEventType.LEASE_CLAIMED,
        run_id=run.id,
        environment=run.environment,
        occurred_at=now,
        lease=new_lease(now=now, worker_id=worker_id, lease_duration=lease_duration),
    )


def succeeded_event(run: RunRecord, *, now: datetime) -> RunEvent:
    return RunEvent(type=RunEventType.SUCCEEDED, run_id=run.id, environment=run.environment, occurred_at=now)


def failed_event(run: RunRecord, *, now: datetime, failure: RunFailure = TASK_FAILURE) -> RunEvent:
    return RunEvent(
        type=RunEventType.FAILED, run_id=run.id, environment=run.environment, occurred_at=now, failure=failure
    )


def retry_scheduled_event(
    run: RunRecord, *, now: datetime, run_at: datetime, failure: RunFailure = TASK_FAILURE
) -> RunEvent:
    return RunEvent(
        type=RunEventType.RETRY_SCHEDULED,
        run_id=run.id,
        environment=run.environment,
        occurred_at=now,
        failure=failure,
        run_at=run_at,
    )


def released_event(run: RunRecord, *, now: datetime, run_at: datetime, reason: str | None = None) -> RunEvent:
    return RunEvent(
        type=RunEventType.RELEASED,
        run_id=run.id,
        environment=run.environment,
        occurred_at=now,
        run_at=run_at,
        reason=reason,
    )


def cancellation_requested_event(run: RunRecord, *, now: datetime, reason: str | None = None) -> RunEvent:
    return RunEvent(
        type=RunEventType.CANCELLATION_REQUESTED,
        run_id=run.id,
        environment=run.environment,
        occurred_at=now,
        reason=reason,
    )


def cancelled_event(run: RunRecord, *, now: datetime, reason: str | None = None) -> RunEvent:
    return RunEvent(
        type=RunEventType.CANCELLED,
        run_id=run.id,
        environment=run.environment,
        occurred_at=now,
        reason=reason,
    )


def lease_expired_event(
    run: RunRecord,
    *,
    now: datetime,
    run_at: datetime | None = None,
    failure: RunFailure = LEASE_EXPIRED_FAILURE,
) -> RunEvent:
    """Expired-lease recovery: ``retrying`` when ``run_at`` is given, otherwise ``failed``."""
    return RunEvent(
        type=RunEventType.LEASE_EXPIRED,
        run_id=run.id,
        environment=run.environment,
        occurred_at=now,
        failure=failure,
        run_at=run_at,
    )


def next_run_data(run: RunRecord, *events: RunEvent) -> RunData:
    """Events appended to an existing run, with the projection the reducer computes for them."""
    return RunData(
        events=events,
        run=project_run_events(events, run.event_sequence, run),
        expected_sequence=run.event_sequence,
    )


def plan_for(run: RunRecord, *events: RunEvent) -> AppendPlan:
    """An ``AppendPlan`` for ``claim_due_runs`` / ``reserve_dispatch`` plan callbacks."""
    return next_run_data(run, *events).plan()


def new_run_data(created: RunEvent, *more: RunEvent) -> RunData:
    events = (created, *more)
    return RunData(events=events, run=project_run_events(events, 0))


def create_queued_run_data(
    run_id: str, *, now: datetime, with_delivery: bool = True, **created_options: Any
) -> RunData:
    """``run.created`` (+ ``run.delivery_requested`` due now, as ``trigger`` writes on unbounded queues)."""
    created = created_event(run_id, now=now, **created_options)
    if not with_delivery:
        return new_run_data(created)
    run = project_run_events((created,), 0)
    return new_run_data(created, delivery_requested_event(run, now=now))


def create_scheduled_run_data(
    run_id: str, *, now: datetime, run_at: datetime, **created_options: Any
) -> RunData:
    """A run whose delivery is requested for the future ``run_at`` (status ``scheduled``)."""
    created = created_event(run_id, now=now, run_at=run_at, **created_options)
    run = project_run_events((created,), 0)
    return new_run_data(created, delivery_requested_event(run, now=now, available_at=run_at))


def create_succeeded_run_data(
    run_id: str, *, now: datetime, worker_id: str = TEST_WORKER_ID, **created_options: Any
) -> RunData:
    """Created, leased and succeeded in one append (the shape ``run_now`` leaves behind)."""
    created = created_event(run_id, now=now, **created_options)
    run = project_run_events((created,), 0)
    claimed = lease_claimed_event(run, now=now, worker_id=worker_id)
    leased = project_run_events((claimed,), run.event_sequence, run)
    return new_run_data(created, claimed, succeeded_event(leased, now=now))
