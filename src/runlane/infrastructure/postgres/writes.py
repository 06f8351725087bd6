"""Staging and writing one run's change: validated events, projection, outbox rows.

Every write path (append, batched appends, due-run claims, dispatch reservations) stages its
change here first, so all of them check the same invariants and derive outbox rows the same way;
``bulk`` then writes the staged batch with set-based statements.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runlane.domain.errors import invariant_violation
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.slot_init import slot_init
from runlane.domain.values import Environment
from runlane.domain.vocabulary import LEASED_RUN_STATUSES, OutboxMessageStatus, RunEventType
from runlane.infrastructure.postgres.commit_wakeups import fits_notify
from runlane.infrastructure.postgres.rows import outbox_values
from runlane.ports.storage_commands import AppendPlan, AppendRunEvents, AppendRunEventsResult, OutboxMessage
from runlane.ports.storage_rules import append_records, claims_outbox, derived_outbox


@slot_init
@dataclass(frozen=True, slots=True, kw_only=True)
class StagedWrite:
    environment: Environment
    old: RunRecord | None
    expected_sequence: int
    new: RunRecord
    records: tuple[RunEventRecord, ...]
    outbox: tuple[OutboxMessage, ...]

    @property
    def is_create(self) -> bool:
        return self.expected_sequence == 0

    @property
    def takes_lease(self) -> bool:
        """The write moves the run into a leased status (and so needs a slot on a bounded queue).

        Without the old record (a plain append does not read it), a ``run.lease_claimed`` event is
        the witness: the reducer allows it only from a runnable status.
        """
        if self.new.status not in LEASED_RUN_STATUSES:
            return False
        if self.old is not None:
            return self.old.status not in LEASED_RUN_STATUSES
        return self.is_create or any(record.type is RunEventType.LEASE_CLAIMED for record in self.records)

    @property
    def outbox_message_ids(self) -> tuple[str, ...]:
        if not self.outbox:  # most writes derive no outbox row
            return ()
        return tuple(row.id for row in self.outbox)

    @property
    def claimed_outbox(self) -> tuple[OutboxMessage, ...]:
        """The rows written already claimed for the appending publisher."""
        if not self.outbox:
            return ()
        return tuple(row for row in self.outbox if row.claim_token is not None)

    @property
    def published_outbox(self) -> tuple[OutboxMessage, ...]:
        """The rows written published, whose wakeups this write's commit sends (``commit_wakeups``)."""
        if not self.outbox:
            return ()
        return tuple(row for row in self.outbox if row.status is OutboxMessageStatus.PUBLISHED)

    def result(self) -> AppendRunEventsResult:
        """What the append returns once this write committed."""
        return AppendRunEventsResult(
            run=self.new,
            events=self.records,
            outbox_message_ids=self.outbox_message_ids,
            claimed_outbox=self.claimed_outbox,
            published_outbox=self.published_outbox,
        )

    @property
    def outbox_rows(self) -> list[dict[str, Any]]:
        return [outbox_values(row) for row in self.outbox]


def stage(
    environment: Environment,
    *,
    run_id: str,
    old: RunRecord | None,
    expected_sequence: int,
    events: Sequence[RunEvent],
    run: RunRecord,
    now: datetime,
    claim_outbox: bool = False,
    notify: bool = False,
) -> StagedWrite:
    """Check the command's shape and assign event identities (storage never re-runs the reducer).

    ``claim_outbox``: due outbox rows are written claimed (``AppendRunEvents.claim_outbox``), or,
    with ``notify``, published by this write's commit (``commit_wakeups``).
    """
    records = append_records(
        environment, run_id=run_id, expected_sequence=expected_sequence, events=events, run=run
    )
    outbox = derived_outbox(
        environment, records, now, claim=claim_outbox, sends_in_commit=fits_notify if notify else None
    )
    return StagedWrite(
        environment=environment,
        old=old,
        expected_sequence=expected_sequence,
        new=run,
        records=records,
        outbox=outbox,
    )


def stage_command(command: AppendRunEvents, *, notify: bool = False) -> StagedWrite:
    """``stage`` of an ``AppendRunEvents`` (plain appends, creates and batched items alike).

    ``notify``: the storage publishes eager appends' wakeups in their commit (``commit_wakeups``).
    """
    return stage(
        command.environment,
        run_id=command.run_id,
        old=None,
        expected_sequence=command.expected_sequence,
        events=command.events,
        run=command.run,
        now=command.now,
        claim_outbox=claims_outbox(command, sends_in_commit=notify),
        notify=notify,
    )


def stage_plan(environment: Environment, old: RunRecord, plan: object, now: datetime) -> StagedWrite:
    if not isinstance(plan, AppendPlan):
        raise invariant_violation("A storage plan callback must return an AppendPlan or None.", run_id=old.id)
    return stage(
        environment,
        run_id=old.id,
        old=old,
        expected_sequence=old.event_sequence,
        events=plan.events,
        run=plan.run,
        now=now,
    )
