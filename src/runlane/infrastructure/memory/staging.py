"""Validating one run's write before anything is committed, so multi-run commands stay atomic.

Storage trusts core's reducer and never recomputes lifecycle rules; it only checks the command's
shape: events belong to the run and its environment, and the projection's ``event_sequence``
advanced by exactly the number of appended events.
"""

from dataclasses import dataclass
from datetime import datetime

from runlane.domain.errors import RunlaneError, invariant_violation, storage_conflict, validation_failed
from runlane.domain.ids import new_event_id
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import LEASED_RUN_STATUSES, RunEventType, StorageConflictKind
from runlane.infrastructure.memory.outbox_store import derive_outbox_row
from runlane.infrastructure.memory.ownership import OccurrenceRecord
from runlane.ports.storage_commands import AppendPlan, OutboxMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class StagedAppend:
    """One run's validated write, ready to commit without any further checks."""

    environment: Environment
    old: RunRecord | None
    new: RunRecord
    records: tuple[RunEventRecord, ...]
    outbox: tuple[OutboxMessage, ...]
    occurrence: OccurrenceRecord | None = None

    @property
    def claimed_outbox(self) -> tuple[OutboxMessage, ...]:
        return tuple(row for row in self.outbox if row.claim_token is not None)


def stage_append(
    *,
    environment: Environment,
    run_id: str,
    old: RunRecord | None,
    expected_sequence: int,
    events: tuple[RunEvent, ...],
    run: RunRecord,
    now: datetime,
    occurrence: OccurrenceRecord | None = None,
    claim_outbox: bool = False,
) -> StagedAppend:
    if not events:
        raise invariant_violation("An append needs at least one event.", run_id=run_id)
    if not isinstance(run, RunRecord) or run.id != run_id or run.environment != environment:
        raise invariant_violation(
            "The projected run does not match the run being appended to.", run_id=run_id
        )
    for event in events:
        if not isinstance(event, RunEvent) or event.run_id != run_id or event.environment != environment:
            raise invariant_violation(
                "Every appended event must belong to the run and its environment.", run_id=run_id
            )
    if run.event_sequence != expected_sequence + len(events):
        raise invariant_violation(
            f"The projection's event_sequence {run.event_sequence} must equal "
            f"{expected_sequence} + {len(events)} appended events.",
            run_id=run_id,
        )
    records = tuple(
        RunEventRecord.of(event, id=new_event_id(), sequence=expected_sequence + offset)
        for offset, event in enumerate(events, start=1)
    )
    outbox = tuple(
        derive_outbox_row(environment, record, now)
        for record in records
        if record.type is RunEventType.DELIVERY_REQUESTED
    )
    if claim_outbox:
        outbox = tuple(row.claimed_at_append(now) if row.available_at <= now else row for row in outbox)
    return StagedAppend(
        environment=environment, old=old, new=run, records=records, outbox=outbox, occurrence=occurrence
    )


def stage_plan(environment: Environment, run: RunRecord, plan: object, now: datetime) -> StagedAppend:
    """Stage what a ``claim_due_runs`` / ``reserve_dispatch`` plan callback decided for ``run``."""
    if not isinstance(plan, AppendPlan):
        raise invariant_violation("A storage plan callback must return an AppendPlan or None.", run_id=run.id)
    return stage_append(
        environment=environment,
        run_id=run.id,
        old=run,
        expected_sequence=run.event_sequence,
        events=plan.events,
        run=plan.run,
        now=now,
    )


def takes_lease(old: RunRecord | None, new: RunRecord) -> bool:
    """Whether this write moves the run into a leased status (and so into a capacity slot)."""
    return new.status in LEASED_RUN_STATUSES and (old is None or old.status not in LEASED_RUN_STATUSES)


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
