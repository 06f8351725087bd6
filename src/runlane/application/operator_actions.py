"""Operator control actions: cancel, rerun, manual retry, prune and idempotency reset."""

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any

from runlane.application.dispatch import publish_created
from runlane.application.operator_reads import OperatorReads
from runlane.application.run_writes import append_events
from runlane.application.runtime_context import RuntimeContext
from runlane.application.task_definition import TaskDefinition
from runlane.application.trigger_run import TriggerRunResult, persist_creation, prepare_creation
from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.durations import to_duration
from runlane.domain.errors import RunlaneError, is_conflict
from runlane.domain.ids import IdKind, as_id
from runlane.domain.json_values import ensure_json_object, ensure_string_map
from runlane.domain.run_events import RunEvent
from runlane.domain.run_record import RunRecord
from runlane.domain.timestamps import add_ms, utc_ms
from runlane.domain.values import OPERATOR_ACTOR, Actor, RunSource
from runlane.domain.vocabulary import (
    TERMINAL_RUN_STATUSES,
    ErrorCode,
    RunEventType,
    RunSourceType,
    RunStatus,
    TriggerDispatchMode,
    TriggerOutcomeType,
)
from runlane.ports.storage_commands import PruneRuns, PruneRunsResult, ResetIdempotencyKey

_VALIDATION = ErrorCode.VALIDATION_FAILED
_CANCEL_TRIES = 5


class OperatorActions:
    def __init__(self, ctx: RuntimeContext, reads: OperatorReads) -> None:
        self._ctx = ctx
        self._reads = reads

    async def cancel(
        self,
        run_id: str,
        *,
        actor: Actor | None = None,
        reason: str | None = None,
        trace_carrier: Mapping[str, str] | None = None,
        meta: Mapping[str, Any] | None = None,
    ) -> RunRecord:
        """Waiting runs are cancelled at once; a running run gets a cancellation request first."""
        ctx = self._ctx
        if reason is not None and (not isinstance(reason, str) or not reason):
            raise RunlaneError(_VALIDATION, "reason must be a non-empty string.")
        fields: dict[str, Any] = {
            "actor": actor or OPERATOR_ACTOR,
            "reason": reason,
            "trace_carrier": None if trace_carrier is None else ensure_string_map(trace_carrier),
            "meta": None if meta is None else ensure_json_object(meta),
        }
        for _ in range(_CANCEL_TRIES):
            run = await self._reads.require(run_id)
            if run.is_terminal:
                raise RunlaneError(
                    _VALIDATION,
                    f"Run {run.id} is {run.status.value}; terminal runs cannot be cancelled.",
                    meta={"runId": run.id, "status": run.status.value},
                )
            if run.status is RunStatus.CANCELLATION_REQUESTED:
                return run
            event_type = (
                RunEventType.CANCELLATION_REQUESTED
                if run.status is RunStatus.RUNNING
                else RunEventType.CANCELLED
            )
            now = ctx.now()
            event = RunEvent(
                type=event_type, run_id=run.id, environment=ctx.environment, occurred_at=now, **fields
            )
            try:
                result = await append_events(ctx, run, (event,), now=now)
            except RunlaneError as exc:
                if is_conflict(exc):
                    continue  # the run moved (claimed, finished): decide again on fresh state
                raise
            handle = ctx.in_flight.get(run.id)
            if handle is not None and event_type is RunEventType.CANCELLATION_REQUESTED:
                handle.notify_cancellation()
            ctx.log(logging.INFO, "cancel", run_id=run.id, event_type=event_type.value)
            return result.run
        raise RunlaneError(
            ErrorCode.STORAGE_CONFLICT, f"Run {run_id} kept changing; cancel again.", retryable=True
        )

    async def rerun(self, source_run_id: str, *, actor: Actor | None = None) -> TriggerRunResult:
        return await self._child(source_run_id, RunSourceType.RERUN, TERMINAL_RUN_STATUSES, actor)

    async def retry(self, source_run_id: str, *, actor: Actor | None = None) -> TriggerRunResult:
        return await self._child(
            source_run_id, RunSourceType.MANUAL_RETRY, frozenset({RunStatus.FAILED}), actor
        )

    async def _child(
        self, source_run_id: str, kind: RunSourceType, accepted: frozenset[RunStatus], actor: Actor | None
    ) -> TriggerRunResult:
        """A new linked run; the source is never reactivated. Keys that would converge are not copied."""
        ctx = self._ctx
        source = await self._reads.require(source_run_id)
        if source.status not in accepted:
            allowed = ", ".join(sorted(s.value for s in accepted))
            raise RunlaneError(
                _VALIDATION,
                f"{kind.value} needs a source run in {allowed}; run {source.id} is {source.status.value}.",
                meta={"runId": source.id, "status": source.status.value},
            )
        definition = ctx.registry.find(source.task_id)
        if definition is None:
            raise RunlaneError(
                ErrorCode.TASK_NOT_FOUND,
                f"Task {source.task_id!r} of run {source.id} is not registered on this runtime.",
                meta={"taskId": source.task_id},
            )
        registered_queue = ctx.registry.queues.get(source.queue)
        now = ctx.now()
        creation = prepare_creation(
            ctx,
            definition,
            source.payload,
            queue=registered_queue,
            concurrency_key=source.concurrency_key,
            actor=actor or OPERATOR_ACTOR,
            trace_carrier=source.trace_carrier,
            source=RunSource(kind, source_run_id=source.id),
            now=now,
        )
        if creation.idempotency_key is not None or creation.singleton_key is not None:
            # Task-level keys would converge on the source's owner; a child is a deliberate new run.
            creation = replace(creation, idempotency_key=None, idempotency_key_ttl=None, singleton_key=None)
        eager = ctx.dispatch is TriggerDispatchMode.EAGER
        result = await persist_creation(ctx, creation, now=now, claim_outbox=eager)
        if not eager:
            return TriggerRunResult(result.run, TriggerOutcomeType.CREATED)
        report = await publish_created(ctx, (result,), now=now)
        return TriggerRunResult(result.run, TriggerOutcomeType.CREATED, report.published, report.failed)

    async def prune(
        self,
        *,
        older_than: str | datetime | Any,
        statuses: Sequence[RunStatus | str] | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        actor: Actor | None = None,
    ) -> PruneRunsResult:
        ctx = self._ctx
        ctx.require_storage("prunes_runs")
        chosen = tuple(TERMINAL_RUN_STATUSES) if statuses is None else tuple(_status(s) for s in statuses)
        active = [s.value for s in chosen if s not in TERMINAL_RUN_STATUSES]
        if active:
            raise RunlaneError(_VALIDATION, f"Only terminal runs can be pruned; got {', '.join(active)}.")
        if not chosen:
            raise RunlaneError(_VALIDATION, "statuses must not be empty.")
        now = ctx.now()
        if isinstance(older_than, datetime):
            cutoff = utc_ms(older_than, field="older_than")
        else:
            cutoff = add_ms(now, -to_duration(older_than, field="older_than").milliseconds)
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
            raise RunlaneError(_VALIDATION, "limit must be a positive integer.")
        result = await ctx.lane.storage.prune_runs(
            PruneRuns(
                environment=ctx.environment,
                older_than=cutoff,
                statuses=chosen,
                limit=limit or CONTRACT_DEFAULTS.pruning.batch_limit,
                cursor=cursor,
            )
        )
        ctx.log(logging.INFO, "prune", deleted=result.deleted, actor=(actor or OPERATOR_ACTOR).type.value)
        return result

    async def reset_idempotency_key(self, task: TaskDefinition, *, key: str) -> bool:
        """Escape hatch, not a force-run: clears retained ownership so the next trigger creates a run."""
        ctx = self._ctx
        ctx.require_storage("enforces_idempotency")
        definition = ctx.registry.resolve(task)
        return await ctx.lane.storage.reset_idempotency_key(
            ResetIdempotencyKey(
                environment=ctx.environment,
                task_id=definition.id,
                key=as_id(IdKind.IDEMPOTENCY_KEY, key),
                now=ctx.now(),
            )
        )


def _status(value: RunStatus | str) -> RunStatus:
    try:
        return RunStatus(value)
    except ValueError as exc:
        raise RunlaneError(_VALIDATION, f"Unknown run status {value!r}.") from exc
