"""``tick``: the bounded maintenance pass.

Phase order (runtime-api §10 PROP): (a) expired leases and abandoned cancellations, (b) due
schedules, (c) delivery for due releases and retries, (d) bounded-queue reservations, (e) outbox
flush, so rows created earlier in a tick are published by the same tick. Each phase handles at
most ``limit`` items; losing a compare-and-append race to another ticker is skipped, not an error.
"""

import logging
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from runlane.application.dispatch import publish_outbox
from runlane.application.run_writes import append_events, delivery_event, delivery_plan
from runlane.application.runtime_context import RuntimeContext
from runlane.application.trigger_run import persist_creation, prepare_creation
from runlane.domain.errors import RunlaneError, is_conflict
from runlane.domain.retry_policy import NO_RETRY
from runlane.domain.run_events import RunEvent
from runlane.domain.run_record import RunRecord
from runlane.domain.schedules import occurrence_id
from runlane.domain.timestamps import add_ms
from runlane.domain.values import RunFailure, RunSource
from runlane.domain.vocabulary import ErrorCode, RunEventType, RunSourceType, RunStatus
from runlane.ports.storage_commands import (
    ListDueRuns,
    ListExpiredLeases,
    ReleaseExpiredReservations,
    ReserveDispatch,
    ScheduleOccurrenceClaim,
)


@dataclass(frozen=True, slots=True)
class TickResult:
    expired_leases: int = 0
    finalized_cancellations: int = 0
    materialized_schedules: int = 0
    requested_deliveries: int = 0
    released_reservations: int = 0
    reserved_dispatches: int = 0
    published_wakeups: int = 0
    failed_wakeups: int = 0
    dead_lettered_wakeups: int = 0

    def to_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def total(self) -> int:
        return sum(self.to_dict().values())


async def tick(ctx: RuntimeContext, *, limit: int) -> TickResult:
    counts: dict[str, Any] = {}
    now = ctx.now()
    storage = ctx.lane.storage
    caps = ctx.lane.capabilities.storage

    if caps.leases_runs:
        expired, finalized = await _recover_leases(ctx, now, limit)
        counts.update(expired_leases=expired, finalized_cancellations=finalized)
    if caps.claims_schedule_occurrences and ctx.registry.schedules:
        counts["materialized_schedules"] = await _materialize_schedules(ctx, now, limit)
    if caps.persists_outbox:
        counts["requested_deliveries"] = await _request_due_deliveries(ctx, now, limit)
    if caps.enforces_queue_concurrency and ctx.registry.bounded_queues:
        counts["released_reservations"] = await storage.release_expired_reservations(
            ReleaseExpiredReservations(environment=ctx.environment, now=now, limit=limit)
        )
        reserved = 0
        for name, capacity in ctx.registry.bounded_queues.items():
            definition = ctx.registry.queues[name]
            claimed = await storage.reserve_dispatch(
                ReserveDispatch(
                    environment=ctx.environment,
                    queue=name,
                    concurrency_limit=capacity,
                    dispatch_timeout_ms=(
                        definition.dispatch_timeout.milliseconds if definition.dispatch_timeout else None
                    ),
                    now=now,
                    limit=limit,
                    plan=delivery_plan(ctx, now=now),
                )
            )
            reserved += len(claimed)
        counts["reserved_dispatches"] = reserved
    if caps.persists_outbox:
        report = await publish_outbox(ctx, now=now, limit=limit)
        counts.update(
            published_wakeups=len(report.published),
            failed_wakeups=len(report.failed) - report.dead_lettered,
            dead_lettered_wakeups=report.dead_lettered,
        )
    result = TickResult(**counts)
    if result.total:
        ctx.log(logging.INFO, "tick", **result.to_dict())
    return result


async def _recover_leases(ctx: RuntimeContext, now: datetime, limit: int) -> tuple[int, int]:
    runs = await ctx.lane.storage.list_expired_leases(
        ListExpiredLeases(environment=ctx.environment, now=now, limit=limit)
    )
    expired = finalized = 0
    for run in runs:
        event = _recovery_event(ctx, run, now)
        if await _append_or_skip(ctx, run, event, now):
            if event.type is RunEventType.CANCELLED:
                finalized += 1
            else:
                expired += 1
            ctx.log(
                logging.WARNING,
                "lease expired",
                run_id=run.id,
                task_id=run.task_id,
                event_type=event.type.value,
            )
    return expired, finalized


def _recovery_event(ctx: RuntimeContext, run: RunRecord, now: datetime) -> RunEvent:
    common: dict[str, Any] = {"run_id": run.id, "environment": ctx.environment, "occurred_at": now}
    if run.status is RunStatus.CANCELLATION_REQUESTED:
        return RunEvent(type=RunEventType.CANCELLED, reason="lease_expired", **common)
    # GAPS #25: an expired lease is a retryable failure of the attempt that held it.
    failure = RunFailure(
        code=ErrorCode.INTERNAL_ERROR,
        message="The attempt's lease expired before it reported an outcome.",
        retryable=True,
        meta={"reason": "lease_expired"},
        occurred_at=now,
    )
    definition = ctx.registry.find(run.task_id)
    policy = definition.retry if definition is not None else NO_RETRY
    delay = policy.next_retry_delay_ms(failures=run.failures + 1, retryable=True)
    return RunEvent(
        type=RunEventType.LEASE_EXPIRED,
        failure=failure,
        run_at=None if delay is None else add_ms(now, delay),
        **common,
    )


async def _append_or_skip(ctx: RuntimeContext, run: RunRecord, event: RunEvent, now: datetime) -> bool:
    try:
        await append_events(ctx, run, (event,), now=now)
    except RunlaneError as exc:
        if is_conflict(exc):
            return False
        raise
    return True


async def _materialize_schedules(ctx: RuntimeContext, now: datetime, limit: int) -> int:
    created = 0
    for entry in ctx.registry.schedules:
        if created >= limit:
            break
        if not entry.schedule.enabled:
            continue
        fire = entry.schedule.latest_due_fire(now)
        if fire is None:
            continue
        occurrence = occurrence_id(entry.schedule.id, fire)
        try:
            creation = prepare_creation(
                ctx,
                entry.task,
                entry.schedule.payload,
                queue=entry.queue,
                source=RunSource(
                    RunSourceType.SCHEDULE, schedule_id=entry.schedule.id, occurrence_id=occurrence
                ),
                now=now,
            )
        except RunlaneError as exc:  # one broken schedule must not stop maintenance for the others
            ctx.log(logging.ERROR, "schedule skipped", schedule_id=entry.schedule.id, code=exc.code.value)
            continue
        try:
            result = await persist_creation(
                ctx,
                creation,
                now=now,
                schedule_occurrence=ScheduleOccurrenceClaim(
                    schedule_id=entry.schedule.id,
                    occurrence_id=occurrence,
                    fire_time=fire,
                    task_id=entry.task.id,
                ),
            )
        except RunlaneError as exc:
            if is_conflict(exc):
                continue  # another ticker (or an earlier tick) materialised this occurrence
            raise
        if not result.returned_existing:
            created += 1
            ctx.log(logging.INFO, "schedule materialized", run_id=result.run.id, task_id=entry.task.id)
    return created


async def _request_due_deliveries(ctx: RuntimeContext, now: datetime, limit: int) -> int:
    runs = await ctx.lane.storage.list_due_runs(
        ListDueRuns(
            environment=ctx.environment,
            now=now,
            limit=limit,
            statuses=(RunStatus.RELEASED, RunStatus.RETRYING),
            exclude_queues=tuple(ctx.registry.bounded_queues),
        )
    )
    requested = 0
    for run in runs:
        event = delivery_event(
            run.id, ctx, queue=run.queue, now=now, available_at=now, trace_carrier=run.trace_carrier
        )
        requested += await _append_or_skip(ctx, run, event, now)
    return requested
