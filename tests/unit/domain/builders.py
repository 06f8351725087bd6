"""Small event and run builders so domain tests read as lifecycles, not constructor noise."""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.run_events import RunEvent
from runlane.domain.run_record import RunRecord
from runlane.domain.run_reducer import project_run_events
from runlane.domain.values import OPERATOR_ACTOR, DeliveryIntent, Environment, Lease, RunFailure
from runlane.domain.vocabulary import ErrorCode, RunEventType, RunStatus

ENV = Environment("default")
OTHER_ENV = Environment("staging")
RUN_ID = "run_1"
QUEUE = "default"
WORKER = "worker_1"
T0 = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
LEASE_MS = 30_000


def at(seconds: float) -> datetime:
    """``T0`` plus ``seconds``: keeps timelines in tests readable."""
    return T0 + timedelta(seconds=seconds)


def failure(*, retryable: bool = True, code: ErrorCode = ErrorCode.TASK_FAILED) -> RunFailure:
    return RunFailure(code=code, message="Task failed", retryable=retryable)


def lease_expiry_failure() -> RunFailure:
    return RunFailure(
        code=ErrorCode.INTERNAL_ERROR,
        message="Lease expired",
        retryable=True,
        meta={"reason": "lease_expired"},
    )


def created(
    *,
    occurred_at: datetime = T0,
    run_id: str = RUN_ID,
    environment: Environment = ENV,
    queue: str = QUEUE,
    **fields: Any,
) -> RunEvent:
    fields.setdefault("payload", {"n": 1})
    return RunEvent(
        type=RunEventType.CREATED,
        run_id=run_id,
        environment=environment,
        occurred_at=occurred_at,
        task_id=fields.pop("task_id", "emails.welcome"),
        queue=queue,
        **fields,
    )


def delivery_requested(
    *,
    occurred_at: datetime,
    available_at: datetime | None = None,
    run_id: str = RUN_ID,
    environment: Environment = ENV,
    queue: str = QUEUE,
) -> RunEvent:
    intent = DeliveryIntent(
        run_id=run_id,
        environment=environment,
        queue=queue,
        requested_at=occurred_at,
        available_at=occurred_at if available_at is None else available_at,
    )
    return RunEvent(
        type=RunEventType.DELIVERY_REQUESTED,
        run_id=run_id,
        environment=environment,
        occurred_at=occurred_at,
        delivery=intent,
    )


def lease(claimed_at: datetime, *, worker_id: str = WORKER, lease_ms: int = LEASE_MS) -> Lease:
    return Lease(
        worker_id=worker_id,
        claimed_at=claimed_at,
        expires_at=claimed_at + timedelta(milliseconds=lease_ms),
        heartbeat_at=claimed_at,
    )


def lease_claimed(
    *, occurred_at: datetime, worker_id: str = WORKER, lease_ms: int = LEASE_MS, run_id: str = RUN_ID
) -> RunEvent:
    return RunEvent(
        type=RunEventType.LEASE_CLAIMED,
        run_id=run_id,
        environment=ENV,
        occurred_at=occurred_at,
        lease=lease(occurred_at, worker_id=worker_id, lease_ms=lease_ms),
    )


def succeeded(*, occurred_at: datetime, run_id: str = RUN_ID, environment: Environment = ENV) -> RunEvent:
    return RunEvent(
        type=RunEventType.SUCCEEDED, run_id=run_id, environment=environment, occurred_at=occurred_at
    )


def retry_scheduled(
    *, occurred_at: datetime, run_at: datetime, run_failure: RunFailure | None = None
) -> RunEvent:
    return RunEvent(
        type=RunEventType.RETRY_SCHEDULED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=occurred_at,
        failure=run_failure or failure(),
        run_at=run_at,
    )


def failed(*, occurred_at: datetime, run_failure: RunFailure | None = None) -> RunEvent:
    return RunEvent(
        type=RunEventType.FAILED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=occurred_at,
        failure=run_failure or failure(retryable=False),
    )


def released(*, occurred_at: datetime, run_at: datetime, reason: str | None = None) -> RunEvent:
    return RunEvent(
        type=RunEventType.RELEASED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=occurred_at,
        run_at=run_at,
        reason=reason,
    )


def cancellation_requested(*, occurred_at: datetime, reason: str | None = "operator") -> RunEvent:
    return RunEvent(
        type=RunEventType.CANCELLATION_REQUESTED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=occurred_at,
        actor=OPERATOR_ACTOR,
        reason=reason,
    )


def cancelled(*, occurred_at: datetime, reason: str | None = "operator") -> RunEvent:
    return RunEvent(
        type=RunEventType.CANCELLED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=occurred_at,
        actor=OPERATOR_ACTOR,
        reason=reason,
    )


def lease_expired(*, occurred_at: datetime, run_at: datetime | None = None) -> RunEvent:
    return RunEvent(
        type=RunEventType.LEASE_EXPIRED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=occurred_at,
        failure=lease_expiry_failure(),
        run_at=run_at,
    )


def fold(*events: RunEvent) -> RunRecord:
    """Project a whole new run from its events."""
    return project_run_events(events, 0)


def append(run: RunRecord, *events: RunEvent) -> RunRecord:
    return project_run_events(events, run.event_sequence, run)


# One canonical history per status, all within the first minute after T0 (leases last 30s).
_PATHS: dict[RunStatus, tuple[RunEvent, ...]] = {
    RunStatus.QUEUED: (created(),),
    RunStatus.SCHEDULED: (created(), delivery_requested(occurred_at=at(1), available_at=at(600))),
    RunStatus.RUNNING: (created(), lease_claimed(occurred_at=at(1))),
    RunStatus.RETRYING: (
        created(),
        lease_claimed(occurred_at=at(1)),
        retry_scheduled(occurred_at=at(2), run_at=at(32)),
    ),
    RunStatus.RELEASED: (
        created(),
        lease_claimed(occurred_at=at(1)),
        released(occurred_at=at(2), run_at=at(62)),
    ),
    RunStatus.CANCELLATION_REQUESTED: (
        created(),
        lease_claimed(occurred_at=at(1)),
        cancellation_requested(occurred_at=at(2)),
    ),
    RunStatus.SUCCEEDED: (created(), lease_claimed(occurred_at=at(1)), succeeded(occurred_at=at(2))),
    RunStatus.FAILED: (created(), lease_claimed(occurred_at=at(1)), failed(occurred_at=at(2))),
    RunStatus.CANCELLED: (created(), cancelled(occurred_at=at(1))),
}


def history_to(status: RunStatus) -> tuple[RunEvent, ...]:
    return _PATHS[status]


def run_in(status: RunStatus) -> RunRecord:
    run = fold(*history_to(status))
    assert run.status is status
    return run


def raises_code(expected: ErrorCode, func: Any, /, *args: Any, **kwargs: Any) -> RunlaneError:
    """Call ``func`` and return the ``RunlaneError`` it raised, asserting its code."""
    with pytest.raises(RunlaneError) as excinfo:
        func(*args, **kwargs)
    assert excinfo.value.code is expected, f"expected {expected.value}, got {excinfo.value!r}"
    return excinfo.value
