"""``execute_next``: claim the next due run from storage and execute one attempt."""

from collections.abc import Sequence

from runlane.application.execution_options import ExecutionOptions
from runlane.application.run_attempt import execute_attempt
from runlane.application.run_writes import lease_plan
from runlane.application.runtime_context import RuntimeContext
from runlane.application.signal import AbortSignal
from runlane.domain.errors import RunlaneError
from runlane.domain.queues import QueueDefinition
from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import ErrorCode
from runlane.ports.storage_commands import ClaimDueRuns, ClaimedRun


def queue_names(
    ctx: RuntimeContext,
    queues: Sequence[QueueDefinition] | None,
    *,
    code: ErrorCode = ErrorCode.VALIDATION_FAILED,
) -> tuple[str, ...] | None:
    if queues is None:
        return None
    if isinstance(queues, str | QueueDefinition) or any(not isinstance(q, QueueDefinition) for q in queues):
        raise RunlaneError(code, "queues must be a list of queue definitions, not names.")
    return tuple(ctx.registry.require_queue(q, code=code).name for q in queues)


async def claim_runs(
    ctx: RuntimeContext, options: ExecutionOptions, *, queues: tuple[str, ...] | None, limit: int
) -> tuple[ClaimedRun, ...]:
    ctx.require_storage("leases_runs")
    now = ctx.now()
    return await ctx.lane.storage.claim_due_runs(
        ClaimDueRuns(
            environment=ctx.environment,
            now=now,
            limit=limit,
            plan=lease_plan(
                ctx, worker_id=options.worker_id, now=now, lease_ms=options.lease_duration.milliseconds
            ),
            queues=queues,
            concurrency_limits=ctx.registry.bounded_queues,
            # A worker never claims a run it cannot execute: in mixed deployments another worker can.
            task_ids=tuple(ctx.registry.by_id),
        )
    )


async def execute_next(
    ctx: RuntimeContext,
    options: ExecutionOptions,
    *,
    queues: tuple[str, ...] | None,
    shutdown: AbortSignal | None = None,
) -> RunRecord | None:
    claimed = await claim_runs(ctx, options, queues=queues, limit=1)
    if not claimed:
        return None
    return await execute_attempt(ctx, claimed[0].run, options, shutdown=shutdown)
