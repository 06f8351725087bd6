"""``run_now``: create a run with its first lease in one write and execute that one attempt inline."""

from typing import Any

from runlane.application.execution_options import ExecutionOptions
from runlane.application.run_attempt import execute_attempt
from runlane.application.run_writes import append_events, lease_event
from runlane.application.runtime_context import RuntimeContext
from runlane.application.task_definition import TaskDefinition
from runlane.application.trigger_run import created_event, prepare_creation
from runlane.domain.run_record import RunRecord


async def run_now(
    ctx: RuntimeContext,
    handle: TaskDefinition | str,
    payload: object,
    options: ExecutionOptions,
    **creation: Any,
) -> RunRecord:
    """Never scans storage and never runs another queued run; an existing owner is returned as is."""
    ctx.require_storage("leases_runs")
    now = ctx.now()
    prepared = prepare_creation(ctx, handle, payload, now=now, **creation)
    events = (
        created_event(ctx, prepared, now),
        lease_event(
            ctx,
            prepared.run_id,
            worker_id=options.worker_id,
            now=now,
            lease_ms=options.lease_duration.milliseconds,
        ),
    )
    result = await append_events(
        ctx, None, events, now=now, concurrency_limit=prepared.queue.concurrency_limit
    )
    if result.returned_existing:
        return result.run
    return await execute_attempt(ctx, result.run, options)
