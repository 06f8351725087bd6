"""Project events with the pure reducer, then ask storage to compare-and-append them."""

from collections.abc import Sequence
from datetime import datetime

from runlane.application.runtime_context import RuntimeContext
from runlane.domain.run_events import RunEvent
from runlane.domain.run_record import RunRecord
from runlane.domain.run_reducer import project_run_events
from runlane.domain.timestamps import add_ms
from runlane.domain.values import DeliveryIntent, Lease
from runlane.domain.vocabulary import RunEventType
from runlane.ports.storage_commands import (
    AppendPlan,
    AppendRunEvents,
    AppendRunEventsResult,
    PlanFn,
    ScheduleOccurrenceClaim,
)


def append_command(
    ctx: RuntimeContext,
    run: RunRecord | None,
    events: Sequence[RunEvent],
    *,
    now: datetime,
    schedule_occurrence: ScheduleOccurrenceClaim | None = None,
    concurrency_limit: int | None = None,
    transaction: object | None = None,
    claim_outbox: bool = False,
) -> AppendRunEvents:
    """Project ``events`` onto ``run`` with the pure reducer: the compare-and-append storage applies."""
    expected = 0 if run is None else run.event_sequence
    projected = project_run_events(events, expected, run)
    return AppendRunEvents(
        environment=ctx.environment,
        run_id=projected.id,
        expected_sequence=expected,
        events=tuple(events),
        run=projected,
        now=now,
        schedule_occurrence=schedule_occurrence,
        concurrency_limit=concurrency_limit,
        transaction=transaction,
        claim_outbox=claim_outbox,
    )


async def append_events(
    ctx: RuntimeContext,
    run: RunRecord | None,
    events: Sequence[RunEvent],
    *,
    now: datetime,
    schedule_occurrence: ScheduleOccurrenceClaim | None = None,
    concurrency_limit: int | None = None,
    transaction: object | None = None,
    batched: bool = False,
    claim_outbox: bool = False,
) -> AppendRunEventsResult:
    """``batched``: share a round trip with other outcomes finishing now (group commit).

    ``claim_outbox``: the caller publishes the derived rows itself (eager dispatch), so storage
    writes them already claimed and returns them.
    """
    command = append_command(
        ctx,
        run,
        events,
        now=now,
        schedule_occurrence=schedule_occurrence,
        concurrency_limit=concurrency_limit,
        transaction=transaction,
        claim_outbox=claim_outbox,
    )
    if batched and transaction is None:
        return await ctx.outcomes.append(command)
    return await ctx.lane.storage.append_run_events(command)


def delivery_event(
    run_id: str,
    ctx: RuntimeContext,
    *,
    queue: str,
    now: datetime,
    available_at: datetime,
    trace_carrier: dict[str, str] | None,
) -> RunEvent:
    return RunEvent(
        type=RunEventType.DELIVERY_REQUESTED,
        run_id=run_id,
        environment=ctx.environment,
        occurred_at=now,
        delivery=DeliveryIntent(
            run_id=run_id,
            environment=ctx.environment,
            queue=queue,
            requested_at=now,
            available_at=available_at,
            trace_carrier=trace_carrier,
        ),
    )


def lease_event(
    ctx: RuntimeContext, run_id: str, *, worker_id: str, now: datetime, lease_ms: int
) -> RunEvent:
    return RunEvent(
        type=RunEventType.LEASE_CLAIMED,
        run_id=run_id,
        environment=ctx.environment,
        occurred_at=now,
        lease=Lease(worker_id=worker_id, claimed_at=now, expires_at=add_ms(now, lease_ms), heartbeat_at=now),
    )


def lease_plan(ctx: RuntimeContext, *, worker_id: str, now: datetime, lease_ms: int) -> PlanFn:
    """The pure projection storage applies to each run it locks for a batch claim."""

    def plan(run: RunRecord) -> AppendPlan | None:
        if not run.is_due(now):
            return None
        event = lease_event(ctx, run.id, worker_id=worker_id, now=now, lease_ms=lease_ms)
        return AppendPlan(events=(event,), run=project_run_events((event,), run.event_sequence, run))

    return plan


def delivery_plan(ctx: RuntimeContext, *, now: datetime) -> PlanFn:
    """Request delivery for a due runnable run (used by bounded-queue dispatch)."""

    def plan(run: RunRecord) -> AppendPlan | None:
        if not run.is_due(now):
            return None
        event = delivery_event(
            run.id, ctx, queue=run.queue, now=now, available_at=now, trace_carrier=run.trace_carrier
        )
        return AppendPlan(events=(event,), run=project_run_events((event,), run.event_sequence, run))

    return plan
