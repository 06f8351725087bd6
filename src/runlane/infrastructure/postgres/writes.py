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
from runlane.domain.ids import new_event_id
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import LEASED_RUN_STATUSES, OutboxMessageStatus, RunEventType
from runlane.infrastructure.postgres.rows import outbox_values
from runlane.ports.storage_commands import AppendPlan, AppendRunEvents, OutboxMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class StagedWrite:
    environment: Environment
    old: RunRecord | None
    expected_sequence: int
    new: RunRecord
    records: tuple[RunEventRecord, ...]
    outbox_rows: tuple[dict[str, Any], ...]
    claimed_outbox: tuple[OutboxMessage, ...] = ()

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
        return tuple(row["id"] for row in self.outbox_rows)


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
) -> StagedWrite:
    """Check the command's shape and assign event identities (storage never re-runs the reducer).

    ``claim_outbox``: due outbox rows are written claimed (``AppendRunEvents.claim_outbox``).
    """
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
    deliveries = False
    for event in events:
        if (
            not isinstance(event, RunEvent)
            or event.run_id != run_id
            or (event.environment is not environment and event.environment != environment)
        ):
            raise invariant_violation("Every appended event must belong to the run and its environment.")
        deliveries = deliveries or event.type is RunEventType.DELIVERY_REQUESTED
    if run.event_sequence != expected_sequence + len(events):
        raise invariant_violation(
            f"The projection's event_sequence {run.event_sequence} must equal "
            f"{expected_sequence} + {len(events)} appended events.",
            run_id=run_id,
        )
    records = tuple(
        [
            RunEventRecord.of(event, id=new_event_id(), sequence=sequence)
            for sequence, event in enumerate(events, start=expected_sequence + 1)
        ]
    )
    if not deliveries:
        # Most writes (leases, outcomes) derive no outbox row.
        return StagedWrite(
            environment=environment,
            old=old,
            expected_sequence=expected_sequence,
            new=run,
            records=records,
            outbox_rows=(),
        )
    outbox_rows = []
    claimed: list[OutboxMessage] = []
    for record in records:
        if record.type is RunEventType.DELIVERY_REQUESTED:
            delivery = record.delivery
            assert delivery is not None
            if delivery.environment != environment:
                raise invariant_violation("A delivery must stay in its run's environment.", run_id=run_id)
            row = outbox_values(record, now)
            row["claim_token"] = row["claimed_at"] = None
            if claim_outbox and delivery.available_at <= now:
                message = _pending_message(row, environment, delivery.to_message()).claimed_at_append(now)
                claimed.append(message)
                row.update(
                    status=message.status.value,
                    attempts=message.attempts,
                    claim_token=message.claim_token,
                    claimed_at=now,
                )
            outbox_rows.append(row)
    return StagedWrite(
        environment=environment,
        old=old,
        expected_sequence=expected_sequence,
        new=run,
        records=records,
        outbox_rows=tuple(outbox_rows),
        claimed_outbox=tuple(claimed),
    )


def _pending_message(
    row: dict[str, Any], environment: Environment, message: DeliveryMessage
) -> OutboxMessage:
    return OutboxMessage(
        id=row["id"],
        environment=environment,
        run_id=row["run_id"],
        queue=row["queue"],
        message=message,
        status=OutboxMessageStatus.PENDING,
        attempts=row["attempts"],
        available_at=row["available_at"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


def stage_command(command: AppendRunEvents) -> StagedWrite:
    """``stage`` of an ``AppendRunEvents`` (plain appends, creates and batched items alike)."""
    return stage(
        command.environment,
        run_id=command.run_id,
        old=None,
        expected_sequence=command.expected_sequence,
        events=command.events,
        run=command.run,
        now=command.now,
        claim_outbox=command.claim_outbox,
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
