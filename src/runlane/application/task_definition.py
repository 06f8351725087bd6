"""``task(...)``: an immutable handle binding an id, a payload schema, policy and a handler."""

import inspect
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from runlane.application.payload_schema import PayloadSchema
from runlane.domain.errors import RunlaneError
from runlane.domain.idempotency import parse_idempotency_ttl
from runlane.domain.ids import IdKind, as_id
from runlane.domain.queues import QueueDefinition
from runlane.domain.retry_policy import NO_RETRY, RetryPolicy
from runlane.domain.schedules import Schedule
from runlane.domain.vocabulary import ErrorCode

_CONFIG = ErrorCode.CONFIGURATION_INVALID

KeySource = str | Callable[[Any], str] | None
Handler = Callable[[Any, Any], Any] | Callable[[Any, Any], Awaitable[Any]]


@dataclass(frozen=True, slots=True, eq=False)
class TaskDefinition:
    """Deployment-time task configuration; build a new one instead of mutating it."""

    id: str
    run: Handler
    schema: PayloadSchema = field(default_factory=lambda: PayloadSchema(None))
    queue: QueueDefinition | None = None
    retry: RetryPolicy = NO_RETRY
    idempotency_key: KeySource = None
    idempotency_key_ttl: str | None = None
    singleton_key: KeySource = None
    concurrency_key: KeySource = None
    schedule: tuple[Schedule, ...] = ()

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.run) or inspect.iscoroutinefunction(
            getattr(self.run, "__call__", None)  # noqa: B004 - async callable objects
        )

    def __repr__(self) -> str:
        return f"TaskDefinition(id={self.id!r})"


def _key_source(name: str, value: object) -> KeySource:
    if value is None or callable(value):
        return value
    return as_id(name, value, code=_CONFIG)


def task(
    id: str,
    *,
    run: Handler,
    schema: object = None,
    queue: QueueDefinition | None = None,
    retry: RetryPolicy | None = None,
    idempotency_key: KeySource = None,
    idempotency_key_ttl: str | None = None,
    singleton_key: KeySource = None,
    concurrency_key: KeySource = None,
    schedule: Sequence[Schedule] | Schedule | None = None,
    **unknown: object,
) -> TaskDefinition:
    """Define a task; malformed or unknown options raise ``RunlaneError(configuration_invalid)``."""
    as_id(IdKind.TASK, id, code=_CONFIG)
    if unknown:
        raise RunlaneError(_CONFIG, f"task {id!r}: unknown option(s) {', '.join(sorted(unknown))}.")
    if not callable(run):
        raise RunlaneError(_CONFIG, f"task {id!r}: run must be a callable handler(payload, context).")
    if queue is not None and not isinstance(queue, QueueDefinition):
        raise RunlaneError(_CONFIG, f"task {id!r}: queue must be a queue definition (use queue(name=...)).")
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise RunlaneError(_CONFIG, f"task {id!r}: retry must be a RetryPolicy.")
    if idempotency_key_ttl is not None:
        if idempotency_key is None:
            raise RunlaneError(_CONFIG, f"task {id!r}: idempotency_key_ttl requires idempotency_key.")
        idempotency_key_ttl = parse_idempotency_ttl(idempotency_key_ttl, code=_CONFIG).value
    schedules: tuple[Schedule, ...]
    if schedule is None:
        schedules = ()
    elif isinstance(schedule, Schedule):
        schedules = (schedule,)
    else:
        schedules = tuple(schedule)
    for entry in schedules:
        if not isinstance(entry, Schedule):
            raise RunlaneError(_CONFIG, f"task {id!r}: schedule entries must be Schedule values.")
    ids = [entry.id for entry in schedules]
    if len(set(ids)) != len(ids):
        raise RunlaneError(_CONFIG, f"task {id!r}: schedule ids must be unique.")
    payload_schema = PayloadSchema(schema)
    for entry in schedules:
        try:
            payload_schema.validate(entry.payload, task_id=id)
        except RunlaneError as exc:
            raise RunlaneError(_CONFIG, f"schedule {entry.id!r}: {exc.message}") from exc
    return TaskDefinition(
        id=id,
        run=run,
        schema=payload_schema,
        queue=queue,
        retry=retry or NO_RETRY,
        idempotency_key=_key_source("idempotency_key", idempotency_key),
        idempotency_key_ttl=idempotency_key_ttl,
        singleton_key=_key_source("singleton_key", singleton_key),
        concurrency_key=_key_source("concurrency_key", concurrency_key),
        schedule=schedules,
    )


def resolve_key(kind: IdKind, source: KeySource, payload: object) -> str | None:
    """Evaluate a task-level key (string, or a function of the validated payload; ``None`` = no key)."""
    if source is None:
        return None
    if isinstance(source, str):
        return source
    try:
        value = source(payload)
    except Exception as exc:
        raise RunlaneError(ErrorCode.VALIDATION_FAILED, f"{kind.value} function failed: {exc}") from exc
    return None if value is None else as_id(kind, value)
