"""The pure reducer: fold run events into the run projection, rejecting impossible transitions."""

from collections.abc import Iterable
from dataclasses import fields
from datetime import datetime
from typing import Any, assert_never

from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.errors import invariant_violation
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.slot_init import slot_copier, slot_setter
from runlane.domain.values import RunSource
from runlane.domain.vocabulary import LEASED_RUN_STATUSES, RUNNABLE_RUN_STATUSES, RunEventType, RunStatus

_CANCELLABLE_AT_ONCE = RUNNABLE_RUN_STATUSES


def project_run_events(
    events: Iterable[RunEvent],
    expected_sequence: int,
    current_run: RunRecord | None = None,
) -> RunRecord:
    """Return the run after ``events`` are appended at ``expected_sequence``.

    ``expected_sequence`` is the run's current ``event_sequence`` (``0`` for a new run). Any gap,
    foreign event, event on a terminal run or transition the lifecycle does not allow raises
    ``RunlaneError(invariant_violation)``; nothing is partially applied.
    """
    batch = list(events)
    if not batch:
        raise invariant_violation("project_run_events needs at least one event.")
    if current_run is None:
        if expected_sequence != CONTRACT_DEFAULTS.run.new_event_sequence:
            raise invariant_violation(
                f"A new run starts at sequence {CONTRACT_DEFAULTS.run.new_event_sequence}, "
                f"not {expected_sequence}."
            )
    elif expected_sequence != current_run.event_sequence:
        raise invariant_violation(
            f"Expected sequence {expected_sequence} does not match "
            f"run sequence {current_run.event_sequence}.",
            run_id=current_run.id,
        )
    run = current_run
    for offset, event in enumerate(batch, start=1):
        sequence = expected_sequence + offset
        if isinstance(event, RunEventRecord) and event.sequence != sequence:
            raise invariant_violation(
                f"Event sequence {event.sequence} leaves a gap; expected {sequence}.", run_id=event.run_id
            )
        run = apply_run_event(run, event, sequence)
    assert run is not None
    return run


def apply_run_event(run: RunRecord | None, event: RunEvent, sequence: int) -> RunRecord:
    """Apply one event; ``sequence`` is the sequence the event takes."""
    if run is None:
        if event.type is not RunEventType.CREATED:
            raise invariant_violation(f"A run must start with run.created, not {event.type.value}.")
        return _created(event)
    if event.run_id != run.id:
        raise invariant_violation(f"Event for run {event.run_id!r} applied to run {run.id!r}.")
    if event.environment is not run.environment and event.environment != run.environment:
        raise invariant_violation("Event environment differs from the run environment.", run_id=run.id)
    if run.is_terminal:
        raise invariant_violation(
            f"Run {run.id} is {run.status.value}; terminal runs accept no further events.", run_id=run.id
        )
    status = run.status

    def reject() -> Exception:
        return invariant_violation(
            f"{event.type.value} is not allowed while the run is {status.value}.",
            run_id=run.id,
            status=status.value,
            event_type=event.type.value,
        )

    common: dict[str, Any] = {
        "event_sequence": sequence,
        "updated_at": max(run.updated_at, event.occurred_at),
    }
    match event.type:
        case RunEventType.CREATED:
            raise invariant_violation("run.created may only start a run.", run_id=run.id)
        case RunEventType.DELIVERY_REQUESTED:
            if status not in RUNNABLE_RUN_STATUSES:
                raise reject()
            assert event.delivery is not None
            if event.delivery.queue != run.queue:
                raise invariant_violation("A delivery must target the run's queue.", run_id=run.id)
            available_at = event.delivery.available_at
            next_status = RunStatus.SCHEDULED if available_at > event.occurred_at else RunStatus.QUEUED
            return _evolve(run, common, status=next_status, run_at=available_at)
        case RunEventType.LEASE_CLAIMED:
            if status not in RUNNABLE_RUN_STATUSES:
                raise reject()
            return _evolve(
                run, common, status=RunStatus.RUNNING, attempts=run.attempts + 1, lease=event.lease
            )
        case RunEventType.SUCCEEDED:
            if status is not RunStatus.RUNNING:
                raise reject()
            return _evolve(run, common, status=RunStatus.SUCCEEDED, lease=None, run_at=None)
        case RunEventType.RETRY_SCHEDULED:
            if status is not RunStatus.RUNNING:
                raise reject()
            return _record_failure(run, common, event, retry_at=event.run_at)
        case RunEventType.FAILED:
            if status not in LEASED_RUN_STATUSES:
                raise reject()
            return _record_failure(run, common, event, retry_at=None)
        case RunEventType.RELEASED:
            if status is not RunStatus.RUNNING:
                raise reject()
            return _evolve(
                run,
                common,
                status=RunStatus.RELEASED,
                releases=run.releases + 1,
                lease=None,
                run_at=event.run_at,
            )
        case RunEventType.CANCELLATION_REQUESTED:
            if status is not RunStatus.RUNNING:
                raise reject()
            return _evolve(run, common, status=RunStatus.CANCELLATION_REQUESTED)
        case RunEventType.CANCELLED:
            if status not in _CANCELLABLE_AT_ONCE and status is not RunStatus.CANCELLATION_REQUESTED:
                raise reject()
            return _evolve(run, common, status=RunStatus.CANCELLED, lease=None, run_at=None)
        case RunEventType.LEASE_EXPIRED:
            if status is not RunStatus.RUNNING or run.lease is None:
                raise reject()
            if run.lease.expires_at > event.occurred_at:
                raise invariant_violation("run.lease_expired before the lease expired.", run_id=run.id)
            # The event carries core's retry decision: a next run_at means retrying, none means failed.
            return _record_failure(run, common, event, retry_at=event.run_at)
        case _:
            assert_never(event.type)


def _created(event: RunEvent) -> RunRecord:
    assert event.task_id is not None
    assert event.queue is not None
    return RunRecord(
        id=event.run_id,
        environment=event.environment,
        task_id=event.task_id,
        queue=event.queue,
        payload=event.payload,
        status=RunStatus.QUEUED,
        event_sequence=CONTRACT_DEFAULTS.run.new_event_sequence + 1,
        created_at=event.occurred_at,
        updated_at=event.occurred_at,
        run_at=event.run_at,
        source=event.source or RunSource(),
        idempotency_key=event.idempotency_key,
        idempotency_key_ttl=event.idempotency_key_ttl,
        singleton_key=event.singleton_key,
        concurrency_key=event.concurrency_key,
        trace_carrier=event.trace_carrier,
        meta=event.meta,
    )


def _record_failure(
    run: RunRecord, common: dict[str, Any], event: RunEvent, *, retry_at: datetime | None
) -> RunRecord:
    """A failed attempt: counted, lease cleared; retrying at ``retry_at``, or terminal ``failed``."""
    if retry_at is None:
        return _evolve(
            run,
            common,
            status=RunStatus.FAILED,
            failure=event.failure,
            failures=run.failures + 1,
            lease=None,
            run_at=None,
        )
    return _evolve(
        run,
        common,
        status=RunStatus.RETRYING,
        failure=event.failure,
        failures=run.failures + 1,
        retries=run.retries + 1,
        lease=None,
        run_at=retry_at,
    )


_RUN_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RunRecord))
# Slot setters of every RunRecord field (declared on RunSummary or RunRecord).
_RUN_SLOT_SETTERS = {name: slot_setter(RunRecord, name) for name in _RUN_FIELDS}
_copy_run_fields = slot_copier(RunRecord, _RUN_FIELDS)


def _evolve(run: RunRecord, common: dict[str, Any], **changes: Any) -> RunRecord:
    """``dataclasses.replace`` without its per-call introspection (the reducer's hot path)."""
    record = object.__new__(RunRecord)
    _copy_run_fields(run, record)
    setters = _RUN_SLOT_SETTERS
    for name, value in changes.items():
        setters[name](record, value)
    for name, value in common.items():  # common wins, as in changes.update(common)
        setters[name](record, value)
    return record
