"""``execute_delivery``: act on a wakeup only if storage says that run is due on that queue now.

Duplicate, late and stale wakeups are normal; they return an ignored result (ack-safe) instead of
raising, so consumers delete the provider message. Only infrastructure problems raise.
"""

from dataclasses import dataclass

from runlane.application.execution_options import ExecutionOptions
from runlane.application.run_attempt import execute_attempt
from runlane.application.run_writes import append_events, lease_event
from runlane.application.runtime_context import RuntimeContext
from runlane.domain.errors import RunlaneError, is_conflict
from runlane.domain.run_record import RunRecord
from runlane.domain.values import DeliveryMessage
from runlane.domain.vocabulary import (
    LEASED_RUN_STATUSES,
    DeliveryIgnoredReason,
    DeliveryResultType,
    ErrorCode,
    StorageConflictKind,
)
from runlane.ports.storage_commands import GetRun


@dataclass(frozen=True, slots=True)
class DeliveryResult:
    type: DeliveryResultType
    reason: DeliveryIgnoredReason | None = None
    run: RunRecord | None = None

    @classmethod
    def ignored(cls, reason: DeliveryIgnoredReason, run: RunRecord | None = None) -> "DeliveryResult":
        return cls(DeliveryResultType.IGNORED, reason, run)


async def execute_delivery(
    ctx: RuntimeContext, message: DeliveryMessage, options: ExecutionOptions
) -> DeliveryResult:
    if not isinstance(message, DeliveryMessage):
        raise RunlaneError(ErrorCode.VALIDATION_FAILED, "execute_delivery needs a DeliveryMessage.")
    ctx.require_storage("leases_runs")
    if message.environment != ctx.environment:
        return DeliveryResult.ignored(DeliveryIgnoredReason.RUN_NOT_FOUND)
    run = await ctx.lane.storage.get_run(GetRun(environment=ctx.environment, run_id=message.run_id))
    now = ctx.now()
    if run is None:
        return DeliveryResult.ignored(DeliveryIgnoredReason.RUN_NOT_FOUND)
    if run.is_terminal:
        return DeliveryResult.ignored(DeliveryIgnoredReason.TERMINAL, run)
    if run.queue != message.queue:
        return DeliveryResult.ignored(DeliveryIgnoredReason.WRONG_QUEUE, run)
    if run.status in LEASED_RUN_STATUSES:
        return DeliveryResult.ignored(DeliveryIgnoredReason.ALREADY_LEASED, run)
    if not run.is_runnable_status:
        return DeliveryResult.ignored(DeliveryIgnoredReason.NOT_RUNNABLE, run)
    if not run.is_due(now):
        return DeliveryResult.ignored(DeliveryIgnoredReason.NOT_DUE, run)
    event = lease_event(
        ctx, run.id, worker_id=options.worker_id, now=now, lease_ms=options.lease_duration.milliseconds
    )
    try:
        claimed = await append_events(
            ctx, run, (event,), now=now, concurrency_limit=ctx.registry.bounded_queues.get(run.queue)
        )
    except RunlaneError as exc:
        if is_conflict(exc, StorageConflictKind.QUEUE_CAPACITY):
            # A bounded-queue run without a reservation is runnable only when its partition has a free slot.
            return DeliveryResult.ignored(DeliveryIgnoredReason.NOT_RUNNABLE, run)
        if is_conflict(exc):
            fresh = await ctx.lane.storage.get_run(GetRun(environment=ctx.environment, run_id=run.id))
            return DeliveryResult.ignored(DeliveryIgnoredReason.CLAIM_LOST, fresh)
        raise
    final = await execute_attempt(ctx, claimed.run, options)
    return DeliveryResult(DeliveryResultType.EXECUTED, None, final)
