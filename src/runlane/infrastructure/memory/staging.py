"""Validating one run's write before anything is committed, so multi-run commands stay atomic.

The shape checks, event numbering and outbox derivation are the ones every adapter shares
(``ports.storage_rules``); this module adds what only the in-memory store needs.
"""

from dataclasses import dataclass
from datetime import datetime

from runlane.domain.errors import invariant_violation
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import LEASED_RUN_STATUSES
from runlane.infrastructure.memory.ownership import OccurrenceRecord
from runlane.ports.storage_commands import AppendPlan, OutboxMessage
from runlane.ports.storage_rules import append_records, derived_outbox


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
    records = append_records(
        environment, run_id=run_id, expected_sequence=expected_sequence, events=events, run=run
    )
    outbox = derived_outbox(environment, records, now, claim=claim_outbox)
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
