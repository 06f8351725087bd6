"""Operator and producer commands: ``runs ...``, ``idempotency reset`` and ``trigger``."""

from datetime import datetime
from pathlib import Path
from typing import Any

import typer

from runlane.application.app_definition import RunlaneApp
from runlane.application.runtime import Runlane
from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.errors import RunlaneError
from runlane.domain.queues import QueueDefinition
from runlane.domain.run_record import RunSummary
from runlane.domain.timestamps import to_wire_time
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES, ErrorCode, RunStatus
from runlane.entrypoints.cli_support import (
    APP_OPTION,
    CONFIG_OPTION,
    DEBUG_OPTION,
    JSON_OPTION,
    common,
    with_runtime,
)
from runlane.entrypoints.cli_values import duration_option, json_option, name_list, time_option
from runlane.entrypoints.container import RunlaneContainer
from runlane.entrypoints.output import (
    attempts_table,
    console,
    emit_json,
    events_table,
    record_table,
    runs_table,
    show_mapping,
    trigger_wire,
)
from runlane.entrypoints.tracing import trace_carrier
from runlane.entrypoints.worker import registered_queues

runs_app = typer.Typer(no_args_is_help=True, help="Inspect and control runs.")
idempotency_app = typer.Typer(no_args_is_help=True, help="Idempotency key escape hatches.")

# Upper bound on pages a dry-run prune counts through (500 runs each).
_MAX_COUNT_PAGES = 10_000


def _queues(runtime: Runlane, names: tuple[str, ...]) -> list[QueueDefinition] | None:
    if not names:
        return None
    return list(registered_queues(runtime, names, option="--queue", code=ErrorCode.VALIDATION_FAILED))


def _statuses(names: tuple[str, ...], flag: str = "--status") -> tuple[RunStatus, ...] | None:
    if not names:
        return None
    try:
        return tuple(RunStatus(name) for name in names)
    except ValueError:
        known = ", ".join(status.value for status in RunStatus)
        raise RunlaneError(
            ErrorCode.VALIDATION_FAILED, f"{flag}: must be among {known} (got {', '.join(names)})"
        ) from None


@runs_app.command("list")
def list_runs(
    ctx: typer.Context,
    status: list[str] | None = typer.Option(
        None, "--status", help="Filter by status (repeat or comma-separate)."
    ),
    task: list[str] | None = typer.Option(
        None, "--task", help="Filter by task id (repeat or comma-separate)."
    ),
    queue: list[str] | None = typer.Option(
        None, "--queue", help="Filter by queue (repeat or comma-separate)."
    ),
    created_after: str | None = typer.Option(None, help="ISO time, or a duration ago (2h)."),
    created_before: str | None = typer.Option(None, help="ISO time, or a duration ago (2h)."),
    limit: int | None = typer.Option(None, min=1, help="Page size (default 50, at most 500)."),
    cursor: str | None = typer.Option(None, help="Continue after a previous page's next cursor."),
    json_output: bool = JSON_OPTION,
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """List runs, newest first; prints the next cursor when more remain."""

    async def action(runtime: Runlane, _app: RunlaneApp, _c: RunlaneContainer) -> int:
        now = runtime.clock.now()
        page = await runtime.runs.list(
            statuses=_statuses(name_list(status)),
            task_ids=list(name_list(task)) or None,
            queues=_queues(runtime, name_list(queue)),
            created_after=None
            if created_after is None
            else time_option(created_after, "--created-after", now),
            created_before=None
            if created_before is None
            else time_option(created_before, "--created-before", now),
            limit=limit,
            cursor=cursor,
        )
        if json_output:
            emit_json({"data": [run.to_wire() for run in page.data], "nextCursor": page.next_cursor})
            return 0
        out = console()
        out.print(runs_table(page.data, title=f"runs ({runtime.environment.name})"))
        if page.next_cursor is not None:
            out.print(f"next cursor: {page.next_cursor}")
        return 0

    with_runtime(common(ctx, app, config, debug), action)


@runs_app.command("show")
def show_run(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The run id."),
    json_output: bool = JSON_OPTION,
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """One run: its record, its event history and its attempts."""

    async def action(runtime: Runlane, _app: RunlaneApp, _c: RunlaneContainer) -> int:
        run = await runtime.runs.get(run_id)
        if run is None:
            raise RunlaneError(ErrorCode.RUN_NOT_FOUND, f"Run {run_id!r} was not found.")
        events = await runtime.runs.all_events(run_id)
        attempts = await runtime.runs.attempts(run_id)
        if json_output:
            emit_json(
                {
                    "run": run.to_wire(),
                    "events": [event.to_wire() for event in events],
                    "attempts": [attempt.to_wire() for attempt in attempts],
                }
            )
            return 0
        out = console()
        out.print(record_table(run))
        out.print(events_table(events))
        if attempts:
            out.print(attempts_table(attempts))
        return 0

    with_runtime(common(ctx, app, config, debug), action)


@runs_app.command("cancel")
def cancel_run(
    ctx: typer.Context,
    run_id: str = typer.Argument(..., help="The run id."),
    reason: str | None = typer.Option(None, help="Recorded on the cancellation event."),
    json_output: bool = JSON_OPTION,
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Cancel a waiting run now, or request cancellation of a running one."""

    async def action(runtime: Runlane, _app: RunlaneApp, _c: RunlaneContainer) -> int:
        run = await runtime.runs.cancel(run_id, reason=reason)
        if json_output:
            emit_json({"run": run.to_wire()})
        else:
            console().print(f"run {run.id}: {run.status.value}")
        return 0

    with_runtime(common(ctx, app, config, debug), action)


def _child_command(kind: str) -> Any:
    def command(
        ctx: typer.Context,
        run_id: str = typer.Argument(..., help="The source run id."),
        json_output: bool = JSON_OPTION,
        app: str | None = APP_OPTION,
        config: Path | None = CONFIG_OPTION,
        debug: bool = DEBUG_OPTION,
    ) -> None:
        async def action(runtime: Runlane, _app: RunlaneApp, _c: RunlaneContainer) -> int:
            start = runtime.runs.rerun if kind == "rerun" else runtime.runs.retry
            result = await start(run_id)
            if json_output:
                emit_json(trigger_wire(result))
            else:
                console().print(f"{kind} of {run_id}: new run {result.run.id} ({result.run.status.value})")
            return 0

        with_runtime(common(ctx, app, config, debug), action)

    return command


runs_app.command("rerun", help="Start a new run with the same payload (source must be terminal).")(
    _child_command("rerun")
)
runs_app.command("retry", help="Manually retry a failed run as a new linked run.")(_child_command("retry"))


async def count_prunable(
    runtime: Runlane, *, cutoff: datetime, statuses: tuple[RunStatus, ...], limit: int | None
) -> int:
    """What ``prune`` would delete now (terminal, ``updated_at < cutoff``), counted via ``runs.list``."""
    counted = 0
    cursor: str | None = None
    for _ in range(_MAX_COUNT_PAGES):
        page = await runtime.runs.list(
            statuses=statuses,
            created_before=cutoff,
            limit=CONTRACT_DEFAULTS.pagination.max_limit,
            cursor=cursor,
        )
        counted += sum(1 for run in page.data if _prunable(run, cutoff))
        if limit is not None and counted >= limit:
            return limit
        cursor = page.next_cursor
        if cursor is None:
            break
    return counted


def _prunable(run: RunSummary, cutoff: datetime) -> bool:
    return run.is_terminal and run.updated_at < cutoff


@runs_app.command("prune")
def prune_runs(
    ctx: typer.Context,
    older_than: str = typer.Option(..., help="Prune terminal runs last updated longer ago than this (30d)."),
    status: list[str] | None = typer.Option(
        None, "--status", help="Terminal statuses to prune (default: all)."
    ),
    limit: int | None = typer.Option(None, min=1, help="Delete at most this many runs."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be pruned; delete nothing."),
    json_output: bool = JSON_OPTION,
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Delete old terminal runs with their events (irreversible; try --dry-run first)."""

    async def action(runtime: Runlane, _app: RunlaneApp, _c: RunlaneContainer) -> int:
        age = duration_option(older_than, "--older-than")
        statuses = _statuses(name_list(status)) or tuple(sorted(TERMINAL_RUN_STATUSES))
        active = [s.value for s in statuses if s not in TERMINAL_RUN_STATUSES]
        if active:
            raise RunlaneError(
                ErrorCode.VALIDATION_FAILED,
                f"--status: only terminal runs can be pruned (got {', '.join(active)})",
            )
        cutoff = runtime.clock.now() - age.to_timedelta()
        if dry_run:
            count = await count_prunable(runtime, cutoff=cutoff, statuses=statuses, limit=limit)
            summary: dict[str, Any] = {
                "dryRun": True,
                "wouldDelete": count,
                "olderThan": to_wire_time(cutoff),
            }
        else:
            deleted = await _prune(runtime, cutoff=cutoff, statuses=statuses, limit=limit)
            summary = {"dryRun": False, "deleted": deleted, "olderThan": to_wire_time(cutoff)}
        if json_output:
            emit_json(summary)
        else:
            console().print(show_mapping("prune", summary))
        return 0

    with_runtime(common(ctx, app, config, debug), action)


async def _prune(
    runtime: Runlane, *, cutoff: datetime, statuses: tuple[RunStatus, ...], limit: int | None
) -> int:
    deleted = 0
    cursor: str | None = None
    batch = CONTRACT_DEFAULTS.pruning.batch_limit
    for _ in range(_MAX_COUNT_PAGES):
        remaining = batch if limit is None else min(batch, limit - deleted)
        if remaining <= 0:
            break
        result = await runtime.runs.prune(
            older_than=cutoff, statuses=statuses, limit=remaining, cursor=cursor
        )
        deleted += result.deleted
        cursor = result.next_cursor
        if cursor is None:
            break
    return deleted


@idempotency_app.command("reset")
def reset_idempotency_key(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., help="The task id."),
    key: str = typer.Argument(..., help="The idempotency key."),
    json_output: bool = JSON_OPTION,
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Forget a retained idempotency key so the next trigger creates a new run."""

    async def action(runtime: Runlane, _app: RunlaneApp, _c: RunlaneContainer) -> int:
        task = runtime.context.registry.resolve(task_id)
        reset = await runtime.idempotency_keys.reset(task, key=key)
        if json_output:
            emit_json({"taskId": task.id, "key": key, "reset": reset})
        else:
            console().print(f"idempotency key {key!r} of {task.id}: {'reset' if reset else 'not retained'}")
        return 0

    with_runtime(common(ctx, app, config, debug), action)


def trigger(
    ctx: typer.Context,
    task_id: str = typer.Argument(..., help="The task id (as registered)."),
    payload: str | None = typer.Option(None, help="JSON payload, or @file.json."),
    idempotency_key: str | None = typer.Option(None, help="Converge duplicate triggers on one run."),
    singleton_key: str | None = typer.Option(None, help="At most one active run per key."),
    concurrency_key: str | None = typer.Option(None, help="Bounded-queue concurrency key."),
    queue: str | None = typer.Option(None, help="Override the task's queue."),
    delay: str | None = typer.Option(None, help="Run after this long (30s, 5m)."),
    traceparent: str | None = typer.Option(None, help="W3C traceparent to carry with the run."),
    tracestate: str | None = typer.Option(None, help="W3C tracestate (with --traceparent)."),
    json_output: bool = JSON_OPTION,
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Create a run (handy for scripts and tests)."""

    async def action(runtime: Runlane, _app: RunlaneApp, _c: RunlaneContainer) -> int:
        queues = _queues(runtime, (queue,) if queue else ())
        result = await runtime.trigger(
            task_id,
            json_option(payload, "--payload"),
            queue=None if queues is None else queues[0],
            delay=None if delay is None else duration_option(delay, "--delay"),
            idempotency_key=idempotency_key,
            singleton_key=singleton_key,
            concurrency_key=concurrency_key,
            trace_carrier=trace_carrier(traceparent, tracestate),
        )
        if json_output:
            emit_json(trigger_wire(result))
        else:
            run = result.run
            console().print(
                f"{result.outcome.value} run {run.id} ({run.task_id} on {run.queue}: {run.status.value})"
            )
        return 0

    with_runtime(common(ctx, app, config, debug), action)
