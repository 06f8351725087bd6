"""Execute one leased attempt: heartbeats, the handler, and the outcome appended with fencing.

Every acquisition path (worker, execute_next, execute_delivery, run_now) ends here, so retry,
release and cancellation rules live in one place.
"""

import asyncio
import contextlib
import contextvars
import functools
import inspect
import logging
from dataclasses import dataclass
from typing import Any

from runlane.application.execution_options import ExecutionOptions
from runlane.application.run_writes import append_events
from runlane.application.runtime_context import RuntimeContext
from runlane.application.signal import AbortSignal
from runlane.application.task_context import AttemptHandle, TaskContext
from runlane.application.task_definition import TaskDefinition
from runlane.domain.errors import TASK_FAILED_MESSAGE, RunlaneError, is_conflict
from runlane.domain.release import TaskRelease
from runlane.domain.retry_policy import NO_RETRY
from runlane.domain.run_events import RunEvent
from runlane.domain.run_record import RunRecord
from runlane.domain.timestamps import add_ms
from runlane.domain.values import RunFailure
from runlane.domain.vocabulary import ErrorCode, RunEventType, RunStatus
from runlane.ports.storage_commands import GetRun, HeartbeatRunLease

WORKER_SHUTDOWN = "worker_shutdown"
_MAX_OUTCOME_TRIES = 5

__all__ = ["WORKER_SHUTDOWN", "AttemptHandle", "execute_attempt"]


@dataclass(slots=True)
class _Outcome:
    release: TaskRelease | None = None
    failure: RunFailure | None = None


class _LeaseState:
    """The attempt's latest knowledge of its run (the sequence it must append at)."""

    def __init__(self, run: RunRecord) -> None:
        self.run = run
        assert run.lease is not None
        self.claimed_at = run.lease.claimed_at
        self.worker_id = run.lease.worker_id

    def still_mine(self, fresh: RunRecord | None) -> bool:
        return (
            fresh is not None
            and fresh.holds_lease
            and fresh.lease is not None
            and fresh.lease.worker_id == self.worker_id
            and fresh.lease.claimed_at == self.claimed_at
        )


async def execute_attempt(
    ctx: RuntimeContext,
    run: RunRecord,
    options: ExecutionOptions,
    *,
    shutdown: AbortSignal | None = None,
) -> RunRecord:
    """Run the handler for a run this process has just leased and record the outcome."""
    state = _LeaseState(run)
    signal = AbortSignal()
    parents = [p for p in (options.signal, shutdown) if p is not None]
    for parent in parents:
        parent.adopt(signal)  # a shutdown aborts with reason worker_shutdown
    handle = AttemptHandle(run.id, signal)
    ctx.in_flight[run.id] = handle
    definition = ctx.registry.find(run.task_id)
    if ctx.logger.isEnabledFor(logging.INFO):
        ctx.log(
            logging.INFO,
            "attempt started",
            run_id=run.id,
            task_id=run.task_id,
            queue=run.queue,
            attempt=run.attempts,
            traceparent=_traceparent(run),
        )

    async def heartbeat() -> None:
        await _heartbeat_once(ctx, state, options, handle)

    beats = _Heartbeats(ctx, state, options, handle)
    try:
        outcome = await _run_handler(ctx, definition, run, options, handle, heartbeat)
    finally:
        await beats.stop()
    try:
        interrupted = shutdown is not None and shutdown.aborted and outcome.failure is not None
        return await _record_outcome(ctx, state, outcome, definition, interrupted=interrupted)
    finally:
        ctx.in_flight.pop(run.id, None)
        for parent in parents:
            parent.disown(signal)


def _traceparent(run: RunRecord) -> str | None:
    """The W3C ``traceparent`` the producer passed, so attempt log lines join its trace."""
    return (run.trace_carrier or {}).get("traceparent")


async def _run_handler(
    ctx: RuntimeContext,
    definition: TaskDefinition | None,
    run: RunRecord,
    options: ExecutionOptions,
    handle: AttemptHandle,
    heartbeat: Any,
) -> _Outcome:
    if definition is None:
        return _Outcome(
            failure=RunFailure(
                code=ErrorCode.TASK_NOT_FOUND,
                message=f"Task {run.task_id!r} is not registered on this worker.",
                retryable=False,
                meta={"taskId": run.task_id},
            )
        )
    try:
        value = definition.schema.revalidate(run.payload, task_id=run.task_id)
    except RunlaneError as exc:
        return _Outcome(
            failure=RunFailure(code=exc.code, message=exc.message, retryable=False, meta=exc.meta)
        )
    context = TaskContext(run=run, handle=handle, heartbeat=heartbeat)
    try:
        result = await _invoke(ctx, definition, value, context, options, handle.signal)
    except RunlaneError as exc:
        return _Outcome(
            failure=RunFailure(code=exc.code, message=exc.message, retryable=exc.retryable, meta=exc.meta)
        )
    except Exception as exc:
        ctx.log(
            logging.WARNING,
            "attempt raised",
            run_id=run.id,
            task_id=run.task_id,
            error=type(exc).__name__,
            traceparent=_traceparent(run),
        )
        return _Outcome(
            failure=RunFailure(
                code=ErrorCode.TASK_FAILED,
                message=TASK_FAILED_MESSAGE,
                retryable=True,
                meta={"exceptionType": type(exc).__name__},
            )
        )
    if inspect.isawaitable(result):
        if inspect.iscoroutine(result):
            result.close()
        return _Outcome(
            failure=RunFailure(
                code=ErrorCode.VALIDATION_FAILED,
                message="The handler returned an awaitable; declare it with 'async def' instead.",
                retryable=False,
            )
        )
    if isinstance(result, TaskRelease):
        return _Outcome(release=result)
    return _Outcome()


async def _invoke(
    ctx: RuntimeContext,
    definition: TaskDefinition,
    value: object,
    context: TaskContext,
    options: ExecutionOptions,
    signal: AbortSignal,
) -> object:
    loop = asyncio.get_running_loop()
    if definition.is_async:
        # A task of its own, so the handler runs in a copy of the context: context variables it sets
        # never leak into runlane's outcome code or into the caller of run_now/execute_delivery.
        future: asyncio.Future[Any] = asyncio.ensure_future(definition.run(value, context))
    else:
        call = functools.partial(contextvars.copy_context().run, definition.run, value, context)
        future = loop.run_in_executor(ctx.executor, call)
    if options.max_attempt_duration is None:
        return await future
    limit = options.max_attempt_duration.milliseconds / 1000
    done, _ = await asyncio.wait({future}, timeout=limit)
    if done:
        return future.result()
    signal.abort("max_attempt_duration")
    grace = min(1.0, options.heartbeat_interval.milliseconds / 1000)
    done, _ = await asyncio.wait({future}, timeout=grace)
    if done and future.exception() is None:
        return future.result()
    if not done:
        future.cancel()
    raise RunlaneError(
        ErrorCode.OPERATION_CANCELLED,
        f"Attempt exceeded max_attempt_duration {options.max_attempt_duration.duration}.",
        retryable=True,
        meta={"reason": "max_attempt_duration"},
    )


class _Heartbeats:
    """Timer-driven heartbeats: no task exists until a beat is due, and most attempts end sooner."""

    def __init__(
        self, ctx: RuntimeContext, state: _LeaseState, options: ExecutionOptions, handle: AttemptHandle
    ) -> None:
        self._ctx = ctx
        self._state = state
        self._options = options
        self._handle = handle
        self._interval = options.heartbeat_interval.milliseconds / 1000
        self._loop = asyncio.get_running_loop()
        self._stopped = False
        self._task: asyncio.Task[None] | None = None
        self._timer = self._loop.call_later(self._interval, self._fire)

    def _fire(self) -> None:
        if not self._stopped:
            self._task = self._loop.create_task(self._beat())

    async def _beat(self) -> None:
        await _heartbeat_once(self._ctx, self._state, self._options, self._handle)
        if not self._stopped and not self._handle.lease_lost:
            self._timer = self._loop.call_later(self._interval, self._fire)

    async def stop(self) -> None:
        self._stopped = True
        self._timer.cancel()
        task = self._task
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


async def _heartbeat_once(
    ctx: RuntimeContext, state: _LeaseState, options: ExecutionOptions, handle: AttemptHandle
) -> None:
    storage = ctx.lane.storage
    for _ in range(2):
        now = ctx.now()
        try:
            state.run = await storage.heartbeat_run_lease(
                HeartbeatRunLease(
                    environment=ctx.environment,
                    run_id=state.run.id,
                    worker_id=state.worker_id,
                    expected_sequence=state.run.event_sequence,
                    heartbeat_at=now,
                    expires_at=add_ms(now, options.lease_duration.milliseconds),
                )
            )
            return
        except RunlaneError as exc:
            if not is_conflict(exc):
                ctx.log(logging.WARNING, "heartbeat failed", run_id=state.run.id, code=exc.code.value)
                return
        except Exception as exc:  # storage hiccup: the next beat tries again
            ctx.log(logging.WARNING, "heartbeat failed", run_id=state.run.id, error=type(exc).__name__)
            return
        fresh = await storage.get_run(GetRun(environment=ctx.environment, run_id=state.run.id))
        if not state.still_mine(fresh):
            ctx.log(logging.WARNING, "lease lost", run_id=state.run.id)
            handle.notify_lease_lost()
            return
        assert fresh is not None
        state.run = fresh
        if fresh.status is RunStatus.CANCELLATION_REQUESTED:
            handle.notify_cancellation()


def _outcome_event(
    ctx: RuntimeContext,
    run: RunRecord,
    outcome: _Outcome,
    definition: TaskDefinition | None,
    *,
    interrupted: bool,
) -> RunEvent:
    now = ctx.now()
    common: dict[str, Any] = {"run_id": run.id, "environment": ctx.environment, "occurred_at": now}
    failure = outcome.failure
    if failure is not None:
        failure = RunFailure(
            code=failure.code,
            message=failure.message,
            retryable=failure.retryable,
            meta=failure.meta,
            occurred_at=now,
        )
    if run.status is RunStatus.CANCELLATION_REQUESTED:
        if failure is not None:
            return RunEvent(type=RunEventType.FAILED, failure=failure, **common)
        return RunEvent(type=RunEventType.CANCELLED, reason="cancellation_requested", **common)
    if failure is None:
        if outcome.release is not None:
            return RunEvent(
                type=RunEventType.RELEASED,
                run_at=outcome.release.resolve_run_at(now),
                reason=outcome.release.reason,
                meta=outcome.release.meta,
                **common,
            )
        return RunEvent(type=RunEventType.SUCCEEDED, **common)
    if interrupted:
        # Stopped by a graceful shutdown: continue the same run later without burning retry budget.
        return RunEvent(type=RunEventType.RELEASED, run_at=now, reason=WORKER_SHUTDOWN, **common)
    policy = definition.retry if definition is not None else NO_RETRY
    delay = policy.next_retry_delay_ms(failures=run.failures + 1, retryable=failure.retryable)
    if delay is None:
        return RunEvent(type=RunEventType.FAILED, failure=failure, **common)
    return RunEvent(type=RunEventType.RETRY_SCHEDULED, failure=failure, run_at=add_ms(now, delay), **common)


async def _record_outcome(
    ctx: RuntimeContext,
    state: _LeaseState,
    outcome: _Outcome,
    definition: TaskDefinition | None,
    *,
    interrupted: bool,
) -> RunRecord:
    storage = ctx.lane.storage
    last: RunlaneError | None = None
    for _ in range(_MAX_OUTCOME_TRIES):
        event = _outcome_event(ctx, state.run, outcome, definition, interrupted=interrupted)
        try:
            result = await append_events(ctx, state.run, (event,), now=event.occurred_at, batched=True)
        except RunlaneError as exc:
            if not is_conflict(exc):
                raise
            last = exc
            fresh = await storage.get_run(GetRun(environment=ctx.environment, run_id=state.run.id))
            if not state.still_mine(fresh):
                # Fenced: another holder or maintenance owns the run now; our outcome is discarded.
                ctx.log(logging.WARNING, "attempt outcome discarded: lease lost", run_id=state.run.id)
                return fresh if fresh is not None else state.run
            assert fresh is not None
            state.run = fresh
            continue
        if ctx.logger.isEnabledFor(logging.INFO):
            ctx.log(
                logging.INFO,
                "attempt finished",
                run_id=result.run.id,
                task_id=result.run.task_id,
                queue=result.run.queue,
                attempt=result.run.attempts,
                event_type=event.type.value,
                traceparent=_traceparent(result.run),
            )
        return result.run
    assert last is not None
    raise last
