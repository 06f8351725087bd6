"""The rules every storage adapter applies the same way, in one place.

Storage trusts core's reducer and never recomputes lifecycle rules; for an append it only checks
the command's shape (events belong to the run and its environment, the projection's
``event_sequence`` advanced by exactly the number of appended events), gives the events their
identities, and derives one outbox row per ``run.delivery_requested`` event. Heartbeats, limits
and sequence conflicts are decided here too. The in-memory and Postgres adapters both call these,
so they cannot drift apart.
"""

from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import datetime

from runlane.domain.errors import RunlaneError, invariant_violation, storage_conflict, validation_failed
from runlane.domain.ids import new_event_id, new_outbox_message_id
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import (
    LEASED_RUN_STATUSES,
    ErrorCode,
    OutboxMessageStatus,
    RunEventType,
    StorageConflictKind,
)
from runlane.ports.storage_commands import AppendRunEvents, HeartbeatRunLease, OutboxMessage


def append_records(
    environment: Environment,
    *,
    run_id: str,
    expected_sequence: int,
    events: Sequence[RunEvent],
    run: RunRecord,
) -> tuple[RunEventRecord, ...]:
    """Check the append's shape and number its events from ``expected_sequence + 1``."""
    if not events:
        raise invariant_violation("An append needs at least one event.", run_id=run_id)
    # ``is`` first: the run, its events and the command share one Environment almost always.
    if (
        not isinstance(run, RunRecord)
        or run.id != run_id
        or (run.environment is not environment and run.environment != environment)
    ):
        raise invariant_violation(
            "The projected run does not match the run being appended to.", run_id=run_id
        )
    for event in events:
        if (
            not isinstance(event, RunEvent)
            or event.run_id != run_id
            or (event.environment is not environment and event.environment != environment)
        ):
            raise invariant_violation(
                "Every appended event must belong to the run and its environment.", run_id=run_id
            )
    if run.event_sequence != expected_sequence + len(events):
        raise invariant_violation(
            f"The projection's event_sequence {run.event_sequence} must equal "
            f"{expected_sequence} + {len(events)} appended events.",
            run_id=run_id,
        )
    return tuple(
        [
            RunEventRecord.of(event, id=new_event_id(), sequence=sequence)
            for sequence, event in enumerate(events, start=expected_sequence + 1)
        ]
    )


def _derived_row(environment: Environment, record: RunEventRecord, now: datetime) -> OutboxMessage:
    """The pending row one ``run.delivery_requested`` event derives (written in the same step)."""
    delivery = record.delivery
    if delivery is None:
        raise invariant_violation("Only run.delivery_requested events derive outbox rows.")
    if delivery.environment != environment:
        raise invariant_violation("A delivery must stay in its run's environment.", run_id=record.run_id)
    return OutboxMessage(
        id=new_outbox_message_id(),
        environment=environment,
        run_id=record.run_id,
        queue=delivery.queue,
        message=delivery.to_message(),
        status=OutboxMessageStatus.PENDING,
        attempts=0,
        available_at=delivery.available_at,
        created_at=now,
        updated_at=now,
    )


def derived_outbox(
    environment: Environment,
    records: Sequence[RunEventRecord],
    now: datetime,
    *,
    claim: bool = False,
    sends_in_commit: Callable[[OutboxMessage], bool] | None = None,
) -> tuple[OutboxMessage, ...]:
    """Every outbox row ``records`` derive; with ``claim`` the due ones written for eager dispatch
    (``AppendRunEvents.claim_outbox``): already published when the storage sends their wakeups in
    this write's commit (``sends_in_commit`` accepts the row), otherwise already claimed."""
    rows = [
        _derived_row(environment, record, now)
        for record in records
        if record.type is RunEventType.DELIVERY_REQUESTED
    ]
    if claim:
        rows = [_eager(row, now, sends_in_commit) for row in rows]
    return tuple(rows)


def _eager(
    row: OutboxMessage, now: datetime, sends_in_commit: Callable[[OutboxMessage], bool] | None
) -> OutboxMessage:
    if row.available_at > now:
        return row  # not due: ``tick`` publishes it when it is
    if sends_in_commit is not None and sends_in_commit(row):
        return row.published_at_append(now)
    return row.claimed_at_append(now)


def claims_outbox(command: AppendRunEvents, *, sends_in_commit: bool) -> bool:
    """Whether ``command`` writes its due outbox rows for eager dispatch (``claim_outbox``).

    Inside a caller's transaction nobody may publish before it commits: only a storage that sends
    the wakeups with that commit may honour the flag there; any other leaves the rows pending.
    """
    return command.claim_outbox and (sends_in_commit or command.transaction is None)


def sequence_conflict(run_id: str, expected: int, actual: int | None) -> RunlaneError:
    return storage_conflict(
        StorageConflictKind.SEQUENCE,
        f"Run {run_id} is at sequence {actual}, not the expected {expected}.",
        {"run_id": run_id, "expected_sequence": expected, "actual_sequence": actual},
    )


def check_limit(limit: object, name: str = "limit") -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 0:
        raise validation_failed(f"{name} must be a non-negative integer.", field=name)
    return limit


def heartbeated(run: RunRecord | None, command: HeartbeatRunLease) -> RunRecord:
    """``run`` with its lease extended, if ``command``'s worker still holds it at the expected
    sequence; ``run_not_found``, or a ``sequence`` / ``lease`` conflict otherwise."""
    if run is None:
        raise RunlaneError(ErrorCode.RUN_NOT_FOUND, f"Run {command.run_id} was not found.")
    if run.event_sequence != command.expected_sequence:
        raise sequence_conflict(run.id, command.expected_sequence, run.event_sequence)
    lease = run.lease
    if lease is None or run.status not in LEASED_RUN_STATUSES or lease.worker_id != command.worker_id:
        raise storage_conflict(
            StorageConflictKind.LEASE,
            f"Worker {command.worker_id} does not hold the lease of run {run.id}.",
            {"run_id": run.id, "worker_id": command.worker_id},
        )
    return replace(
        run, lease=replace(lease, heartbeat_at=command.heartbeat_at, expires_at=command.expires_at)
    )
