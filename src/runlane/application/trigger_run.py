"""``trigger``: validate, resolve ownership, persist the run atomically, then dispatch its wakeup."""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runlane.application.dispatch import already_published, publish_created
from runlane.application.run_writes import append_command, append_events, delivery_event
from runlane.application.runtime_context import RuntimeContext
from runlane.application.task_definition import TaskDefinition, resolve_key
from runlane.domain.durations import to_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.idempotency import parse_idempotency_ttl
from runlane.domain.ids import IdKind, as_id, as_optional_id, new_run_id
from runlane.domain.json_values import ensure_json_object, ensure_string_map
from runlane.domain.queues import QueueDefinition
from runlane.domain.run_events import RunEvent
from runlane.domain.run_record import RunRecord
from runlane.domain.timestamps import add_ms, utc_ms
from runlane.domain.values import SYSTEM_ACTOR, Actor, RunSource
from runlane.domain.vocabulary import ErrorCode, RunEventType, TriggerDispatchMode, TriggerOutcomeType
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    AppendRunEvents,
    AppendRunEventsResult,
    ScheduleOccurrenceClaim,
)
from runlane.ports.transport import FailedWakeupPublish, PublishedWakeup

_VALIDATION = ErrorCode.VALIDATION_FAILED


@dataclass(frozen=True, slots=True)
class TriggerRunResult:
    run: RunRecord
    outcome: TriggerOutcomeType
    published: tuple[PublishedWakeup, ...] = ()
    failed: tuple[FailedWakeupPublish, ...] = ()

    def __iter__(self) -> Any:  # ``run, outcome = await runtime.trigger(...)`` like the TS destructuring
        yield self.run
        yield self.outcome


@dataclass(frozen=True, slots=True, kw_only=True)
class RunCreation:
    """A validated request to create one run (from trigger, run_now, a schedule, rerun or retry)."""

    task: TaskDefinition
    queue: QueueDefinition
    payload: Any
    stored_payload: Any
    run_id: str
    run_at: datetime | None
    idempotency_key: str | None
    idempotency_key_ttl: str | None
    singleton_key: str | None
    concurrency_key: str | None
    actor: Actor
    trace_carrier: dict[str, str] | None
    meta: dict[str, Any] | None
    source: RunSource


def prepare_creation(
    ctx: RuntimeContext,
    handle: TaskDefinition | str,
    payload: object,
    *,
    queue: QueueDefinition | None = None,
    run_at: datetime | None = None,
    delay: object = None,
    idempotency_key: object = None,
    idempotency_key_ttl: object = None,
    singleton_key: object = None,
    concurrency_key: object = None,
    actor: Actor | None = None,
    trace_carrier: Mapping[str, str] | None = None,
    run_id: object = None,
    meta: Mapping[str, Any] | None = None,
    source: RunSource | None = None,
    now: datetime,
) -> RunCreation:
    """Validate every option and the payload; nothing touches storage until this succeeds."""
    definition = ctx.registry.resolve(handle)
    if queue is not None and not isinstance(queue, QueueDefinition):
        raise RunlaneError(_VALIDATION, "queue must be a queue definition, not a name.")
    target = ctx.registry.queue_for(definition, queue)
    if run_at is not None and delay is not None:
        raise RunlaneError(_VALIDATION, "Pass run_at or delay, not both.")
    when = utc_ms(run_at, field="run_at") if run_at is not None else None
    if delay is not None:
        when = add_ms(now, to_duration(delay, field="delay").milliseconds)
    if actor is not None and not isinstance(actor, Actor):
        raise RunlaneError(_VALIDATION, "actor must be an Actor.")
    validated = definition.schema.validate(payload, task_id=definition.id, max_bytes=ctx.max_payload_bytes)
    key = (
        as_id(IdKind.IDEMPOTENCY_KEY, idempotency_key)
        if idempotency_key is not None
        else resolve_key(IdKind.IDEMPOTENCY_KEY, definition.idempotency_key, validated.value)
    )
    ttl_source = idempotency_key_ttl if idempotency_key_ttl is not None else definition.idempotency_key_ttl
    if idempotency_key_ttl is not None and key is None:
        raise RunlaneError(_VALIDATION, "idempotency_key_ttl requires an idempotency key.")
    ttl = parse_idempotency_ttl(ttl_source).value if key is not None else None
    singleton = (
        as_id(IdKind.SINGLETON_KEY, singleton_key)
        if singleton_key is not None
        else resolve_key(IdKind.SINGLETON_KEY, definition.singleton_key, validated.value)
    )
    concurrency = (
        as_id(IdKind.CONCURRENCY_KEY, concurrency_key)
        if concurrency_key is not None
        else resolve_key(IdKind.CONCURRENCY_KEY, definition.concurrency_key, validated.value)
    )
    if key is not None:
        ctx.require_storage("enforces_idempotency")
    if singleton is not None:
        ctx.require_storage("enforces_singleton")
    if target.bounded:
        ctx.require_storage("enforces_queue_concurrency")
    return RunCreation(
        task=definition,
        queue=target,
        payload=validated.value,
        stored_payload=validated.stored,
        run_id=as_optional_id(IdKind.RUN, run_id) or new_run_id(),
        run_at=when,
        idempotency_key=key,
        idempotency_key_ttl=ttl,
        singleton_key=singleton,
        concurrency_key=concurrency,
        actor=actor or SYSTEM_ACTOR,
        trace_carrier=None if trace_carrier is None else ensure_string_map(trace_carrier),
        meta=None if meta is None else ensure_json_object(meta),
        source=source or RunSource(),
    )


def created_event(ctx: RuntimeContext, creation: RunCreation, now: datetime) -> RunEvent:
    return RunEvent(
        type=RunEventType.CREATED,
        run_id=creation.run_id,
        environment=ctx.environment,
        occurred_at=now,
        actor=creation.actor,
        task_id=creation.task.id,
        queue=creation.queue.name,
        payload=creation.stored_payload,
        source=creation.source,
        idempotency_key=creation.idempotency_key,
        idempotency_key_ttl=creation.idempotency_key_ttl,
        singleton_key=creation.singleton_key,
        concurrency_key=creation.concurrency_key,
        run_at=creation.run_at,
        trace_carrier=creation.trace_carrier,
        meta=creation.meta,
    )


def creation_events(ctx: RuntimeContext, creation: RunCreation, now: datetime) -> list[RunEvent]:
    """``run.created`` and, unless the queue is bounded, ``run.delivery_requested``."""
    events = [created_event(ctx, creation, now)]
    if not creation.queue.bounded:
        ctx.require_storage("persists_outbox")
        events.append(
            delivery_event(
                creation.run_id,
                ctx,
                queue=creation.queue.name,
                now=now,
                available_at=creation.run_at
                if creation.run_at is not None and creation.run_at > now
                else now,
                trace_carrier=creation.trace_carrier,
            )
        )
    return events


async def persist_creation(
    ctx: RuntimeContext,
    creation: RunCreation,
    *,
    now: datetime,
    schedule_occurrence: ScheduleOccurrenceClaim | None = None,
    transaction: object | None = None,
    claim_outbox: bool = False,
) -> AppendRunEventsResult:
    return await append_events(
        ctx,
        None,
        creation_events(ctx, creation, now),
        now=now,
        schedule_occurrence=schedule_occurrence,
        transaction=transaction,
        claim_outbox=claim_outbox,
    )


async def trigger_run(
    ctx: RuntimeContext,
    handle: TaskDefinition | str,
    payload: object,
    *,
    dispatch: TriggerDispatchMode | None = None,
    connection: object | None = None,
    **options: Any,
) -> TriggerRunResult:
    now = ctx.now()
    mode = dispatch or ctx.dispatch
    creation = prepare_creation(ctx, handle, payload, now=now, **options)
    eager = mode is TriggerDispatchMode.EAGER
    result = await persist_creation(ctx, creation, now=now, transaction=connection, claim_outbox=eager)
    if result.returned_existing:
        ctx.log(20, "trigger returned existing run", run_id=result.run.id, task_id=result.run.task_id)
        return TriggerRunResult(run=result.run, outcome=TriggerOutcomeType.RETURNED_EXISTING)
    ctx.log(20, "run created", run_id=result.run.id, task_id=result.run.task_id, queue=result.run.queue)
    if not eager or not result.outbox_message_ids:
        return TriggerRunResult(run=result.run, outcome=TriggerOutcomeType.CREATED)
    if connection is not None:
        # The row is invisible until the caller commits: only wakeups that commit sends exist
        # (Postgres lane); otherwise ``tick`` publishes the row once it is committed.
        report = already_published((result,))
    else:
        report = await publish_created(ctx, (result,), now=now)
    return TriggerRunResult(
        run=result.run, outcome=TriggerOutcomeType.CREATED, published=report.published, failed=report.failed
    )


async def trigger_many(
    ctx: RuntimeContext,
    handle: TaskDefinition | str,
    payloads: Sequence[object],
    *,
    dispatch: TriggerDispatchMode | None = None,
    **options: Any,
) -> tuple[TriggerRunResult | RunlaneError, ...]:
    """Trigger one run per payload in one storage round trip (plus one publish with eager dispatch).

    Every item gets the same validation and ownership rules as ``trigger``; results are per item and
    in order: a ``TriggerRunResult``, or the ``RunlaneError`` that rejected that item (nothing was
    written for it). Duplicate idempotency keys inside one batch converge like concurrent triggers.
    """
    if "run_id" in options and options["run_id"] is not None:
        raise RunlaneError(_VALIDATION, "trigger_many generates run ids; run_id is not accepted.")
    if isinstance(payloads, str | bytes) or not isinstance(payloads, Sequence):
        raise RunlaneError(_VALIDATION, "payloads must be a list.")
    now = ctx.now()
    eager = (dispatch or ctx.dispatch) is TriggerDispatchMode.EAGER
    slots: list[TriggerRunResult | RunlaneError | None] = []
    commands: list[AppendRunEvents] = []
    positions: list[int] = []
    for index, payload in enumerate(payloads):
        try:
            creation = prepare_creation(ctx, handle, payload, now=now, **options)
            command = append_command(
                ctx, None, creation_events(ctx, creation, now), now=now, claim_outbox=eager
            )
        except RunlaneError as exc:
            slots.append(exc)
            continue
        slots.append(None)
        positions.append(index)
        commands.append(command)
    if not commands:
        return tuple(s for s in slots if s is not None)
    many = await ctx.lane.storage.append_many_run_events(
        AppendManyRunEvents(environment=ctx.environment, commands=tuple(commands))
    )
    created: list[AppendRunEventsResult] = []
    for index, outcome in zip(positions, many.results, strict=True):
        if isinstance(outcome, RunlaneError):
            slots[index] = outcome
        elif outcome.returned_existing:
            slots[index] = TriggerRunResult(run=outcome.run, outcome=TriggerOutcomeType.RETURNED_EXISTING)
        else:
            slots[index] = TriggerRunResult(run=outcome.run, outcome=TriggerOutcomeType.CREATED)
            created.append(outcome)
    if eager and any(outcome.outbox_message_ids for outcome in created):
        report = await publish_created(ctx, created, now=now)
        for index, outcome in zip(positions, many.results, strict=True):
            if isinstance(outcome, RunlaneError) or outcome.returned_existing:
                continue
            sent = [report.by_outbox_id[i] for i in outcome.outbox_message_ids if i in report.by_outbox_id]
            slots[index] = TriggerRunResult(
                run=outcome.run,
                outcome=TriggerOutcomeType.CREATED,
                published=tuple(o for o in sent if isinstance(o, PublishedWakeup)),
                failed=tuple(o for o in sent if isinstance(o, FailedWakeupPublish)),
            )
    ctx.log(20, "runs created in batch", count=len(created))
    return tuple(s for s in slots if s is not None)
