"""``create_runlane``: the runtime every process role shares (producers, workers, maintenance, operators)."""

import asyncio
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from types import TracebackType
from typing import Any

from runlane.application.execute_delivery import DeliveryResult, execute_delivery
from runlane.application.execute_next import execute_next, queue_names
from runlane.application.execution_options import ExecutionOptions, execution_options
from runlane.application.maintenance_tick import TickResult, tick
from runlane.application.operator_actions import OperatorActions
from runlane.application.operator_reads import OperatorReads
from runlane.application.payload_schema import DEFAULT_MAX_PAYLOAD_BYTES
from runlane.application.run_now import run_now
from runlane.application.runtime_context import RuntimeContext
from runlane.application.signal import AbortSignal
from runlane.application.task_definition import TaskDefinition
from runlane.application.task_registry import TaskCatalog, TaskRegistry
from runlane.application.trigger_run import TriggerRunResult, trigger_many, trigger_run
from runlane.application.worker_loop import WorkerHandle
from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.durations import to_duration
from runlane.domain.errors import RunlaneError, capability_unsupported, configuration_invalid
from runlane.domain.ids import IdKind, as_id, new_worker_id
from runlane.domain.queues import QueueDefinition
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Actor, DeliveryMessage, Environment
from runlane.domain.vocabulary import ErrorCode, TriggerDispatchMode, WorkerMode
from runlane.ports.clock import SYSTEM_CLOCK, Clock
from runlane.ports.lane import Lane

_VALIDATION = ErrorCode.VALIDATION_FAILED
_CONFIG = ErrorCode.CONFIGURATION_INVALID


def _reject_unknown(where: str, unknown: Mapping[str, object], code: ErrorCode = _VALIDATION) -> None:
    if unknown:
        raise RunlaneError(code, f"{where}: unknown option(s) {', '.join(sorted(unknown))}.")


def _dispatch_mode(value: TriggerDispatchMode | str | None, code: ErrorCode) -> TriggerDispatchMode | None:
    if value is None:
        return None
    try:
        return TriggerDispatchMode(value)
    except ValueError as exc:
        raise RunlaneError(code, f"Unknown dispatch mode {value!r}.") from exc


def _positive_int(name: str, value: object, code: ErrorCode) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise RunlaneError(code, f"{name} must be a positive integer.")


class Runs:
    """``runtime.runs``: operator reads and control actions."""

    def __init__(self, runtime: "Runlane", reads: OperatorReads, actions: OperatorActions) -> None:
        self._runtime = runtime
        self._reads = reads
        self._actions = actions

    async def get(self, run_id: str) -> RunRecord | None:
        await self._runtime._ensure_started()
        return await self._reads.get(run_id)

    async def list(self, **options: Any) -> Any:
        await self._runtime._ensure_started()
        return await self._reads.list(**options)

    async def events(self, run_id: str, **options: Any) -> Any:
        await self._runtime._ensure_started()
        return await self._reads.events(run_id, **options)

    async def all_events(self, run_id: str) -> tuple[RunEventRecord, ...]:
        """The whole history of one run, every page folded, in sequence order."""
        await self._runtime._ensure_started()
        return await self._reads.all_events(run_id)

    async def attempts(self, run_id: str) -> Any:
        await self._runtime._ensure_started()
        return await self._reads.attempts(run_id)

    async def find_active(self, **options: Any) -> RunRecord | None:
        await self._runtime._ensure_started()
        return await self._reads.find_active(**options)

    async def find_current(self, **options: Any) -> RunRecord | None:
        await self._runtime._ensure_started()
        return await self._reads.find_current(**options)

    async def cancel(self, run_id: str, **options: Any) -> RunRecord:
        await self._runtime._ensure_started()
        self._runtime._ctx.require_operator_reads()
        return await self._actions.cancel(run_id, **options)

    async def rerun(self, source_run_id: str, *, actor: Actor | None = None) -> TriggerRunResult:
        await self._runtime._ensure_started()
        return await self._actions.rerun(source_run_id, actor=actor)

    async def retry(self, source_run_id: str, *, actor: Actor | None = None) -> TriggerRunResult:
        await self._runtime._ensure_started()
        return await self._actions.retry(source_run_id, actor=actor)

    async def prune(self, **options: Any) -> Any:
        await self._runtime._ensure_started()
        return await self._actions.prune(**options)


class IdempotencyKeys:
    def __init__(self, runtime: "Runlane", actions: OperatorActions) -> None:
        self._runtime = runtime
        self._actions = actions

    async def reset(self, task: TaskDefinition, *, key: str) -> bool:
        await self._runtime._ensure_started()
        return await self._actions.reset_idempotency_key(task, key=key)


class Runlane:
    """The runtime. Start it (or let the first call start it lazily); close it when done."""

    def __init__(self, ctx: RuntimeContext) -> None:
        self._ctx = ctx
        self._start_lock = asyncio.Lock()
        reads = OperatorReads(ctx)
        actions = OperatorActions(ctx, reads)
        self.runs = Runs(self, reads, actions)
        self.idempotency_keys = IdempotencyKeys(self, actions)
        self._workers: list[WorkerHandle] = []

    @property
    def lane(self) -> Lane:
        return self._ctx.lane

    @property
    def environment(self) -> Environment:
        return self._ctx.environment

    @property
    def tasks(self) -> TaskCatalog:
        return self._ctx.registry.catalog

    @property
    def queues(self) -> Mapping[str, QueueDefinition]:
        return dict(self._ctx.registry.queues)

    @property
    def clock(self) -> Clock:
        return self._ctx.clock

    @property
    def worker_id(self) -> str:
        return self._ctx.worker_id

    @property
    def context(self) -> RuntimeContext:
        return self._ctx

    async def start(self) -> None:
        async with self._start_lock:
            if not self._ctx.lane.started:
                await self._ctx.lane.start()

    async def close(self) -> None:
        for handle in list(self._workers):
            await handle.stop()
        self._workers.clear()
        if self._ctx.lane.started:
            await self._ctx.lane.close()
        self._ctx.executor.shutdown(wait=False, cancel_futures=True)

    async def __aenter__(self) -> "Runlane":
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def _ensure_started(self) -> None:
        if not self._ctx.lane.started:
            await self.start()

    def _options(self, **raw: Any) -> ExecutionOptions:
        return execution_options(default_worker_id=self._ctx.worker_id, **raw)

    async def trigger(
        self,
        task: TaskDefinition | str,
        payload: object = None,
        *,
        queue: QueueDefinition | None = None,
        run_at: datetime | None = None,
        delay: object = None,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | None = None,
        singleton_key: str | None = None,
        concurrency_key: str | None = None,
        actor: Actor | None = None,
        trace_carrier: Mapping[str, str] | None = None,
        dispatch: TriggerDispatchMode | str | None = None,
        run_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        connection: object | None = None,
        **unknown: object,
    ) -> TriggerRunResult:
        """Persist a run (and its outbox row) atomically; with eager dispatch publish its wakeup now.

        ``connection``: a caller's transaction handle (Postgres ``AsyncConnection``); the run then
        exists only if the caller commits. On ``create_postgres_lane`` its wakeup is sent by that
        commit (and a rollback sends nothing); on other lanes ``tick`` publishes it afterwards. A
        storage that cannot join it (in-memory) raises ``capability_unsupported``.
        """
        _reject_unknown("trigger", unknown)
        await self._ensure_started()
        mode = _dispatch_mode(dispatch, _VALIDATION)
        return await trigger_run(
            self._ctx,
            task,
            payload,
            dispatch=mode,
            connection=connection,
            queue=queue,
            run_at=run_at,
            delay=delay,
            idempotency_key=idempotency_key,
            idempotency_key_ttl=idempotency_key_ttl,
            singleton_key=singleton_key,
            concurrency_key=concurrency_key,
            actor=actor,
            trace_carrier=trace_carrier,
            run_id=run_id,
            meta=meta,
        )

    async def trigger_many(
        self,
        task: TaskDefinition | str,
        payloads: Sequence[object],
        *,
        queue: QueueDefinition | None = None,
        run_at: datetime | None = None,
        delay: object = None,
        idempotency_key_ttl: str | None = None,
        concurrency_key: str | None = None,
        actor: Actor | None = None,
        trace_carrier: Mapping[str, str] | None = None,
        dispatch: TriggerDispatchMode | str | None = None,
        meta: Mapping[str, Any] | None = None,
        **unknown: object,
    ) -> tuple[TriggerRunResult | RunlaneError, ...]:
        """Trigger one run per payload in one storage round trip; results are per item, in order.

        Task-level idempotency/singleton keys (functions of the payload) apply per item; an item the
        rules reject gets its ``RunlaneError`` in its slot and nothing is written for it.
        """
        _reject_unknown("trigger_many", unknown)
        await self._ensure_started()
        mode = _dispatch_mode(dispatch, _VALIDATION)
        return await trigger_many(
            self._ctx,
            task,
            payloads,
            dispatch=mode,
            queue=queue,
            run_at=run_at,
            delay=delay,
            idempotency_key_ttl=idempotency_key_ttl,
            concurrency_key=concurrency_key,
            actor=actor,
            trace_carrier=trace_carrier,
            meta=meta,
        )

    async def run_now(
        self,
        task: TaskDefinition | str,
        payload: object = None,
        *,
        queue: QueueDefinition | None = None,
        idempotency_key: str | None = None,
        idempotency_key_ttl: str | None = None,
        singleton_key: str | None = None,
        concurrency_key: str | None = None,
        actor: Actor | None = None,
        trace_carrier: Mapping[str, str] | None = None,
        run_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        lease_duration: object = None,
        heartbeat_interval: object = None,
        max_attempt_duration: object = None,
        worker_id: str | None = None,
        signal: AbortSignal | None = None,
        **unknown: object,
    ) -> RunRecord:
        """Create the run with its first lease and execute exactly one attempt inline."""
        _reject_unknown("run_now", unknown)
        await self._ensure_started()
        options = self._options(
            lease_duration=lease_duration,
            heartbeat_interval=heartbeat_interval,
            max_attempt_duration=max_attempt_duration,
            worker_id=worker_id,
            signal=signal,
        )
        return await run_now(
            self._ctx,
            task,
            payload,
            options,
            queue=queue,
            idempotency_key=idempotency_key,
            idempotency_key_ttl=idempotency_key_ttl,
            singleton_key=singleton_key,
            concurrency_key=concurrency_key,
            actor=actor,
            trace_carrier=trace_carrier,
            run_id=run_id,
            meta=meta,
        )

    async def execute_next(
        self,
        *,
        queues: Sequence[QueueDefinition] | None = None,
        lease_duration: object = None,
        heartbeat_interval: object = None,
        max_attempt_duration: object = None,
        worker_id: str | None = None,
        signal: AbortSignal | None = None,
        **unknown: object,
    ) -> RunRecord | None:
        """Claim the next due run and execute one attempt; ``None`` when nothing was claimable."""
        _reject_unknown("execute_next", unknown)
        await self._ensure_started()
        options = self._options(
            lease_duration=lease_duration,
            heartbeat_interval=heartbeat_interval,
            max_attempt_duration=max_attempt_duration,
            worker_id=worker_id,
            signal=signal,
        )
        return await execute_next(self._ctx, options, queues=queue_names(self._ctx, queues))

    async def execute_delivery(
        self,
        message: DeliveryMessage,
        *,
        lease_duration: object = None,
        heartbeat_interval: object = None,
        max_attempt_duration: object = None,
        worker_id: str | None = None,
        signal: AbortSignal | None = None,
        **unknown: object,
    ) -> DeliveryResult:
        """Execute the run a wakeup names if it is due on that queue now; stale wakeups are ignored."""
        _reject_unknown("execute_delivery", unknown)
        await self._ensure_started()
        options = self._options(
            lease_duration=lease_duration,
            heartbeat_interval=heartbeat_interval,
            max_attempt_duration=max_attempt_duration,
            worker_id=worker_id,
            signal=signal,
        )
        return await execute_delivery(self._ctx, message, options)

    def worker(
        self,
        *,
        mode: WorkerMode | str = WorkerMode.POLL,
        queues: Sequence[QueueDefinition] | None = None,
        concurrency: int = CONTRACT_DEFAULTS.worker.concurrency,
        batch_size: int | None = None,
        poll_interval: object = CONTRACT_DEFAULTS.worker.poll_interval,
        lease_duration: object = None,
        heartbeat_interval: object = None,
        max_attempt_duration: object = None,
        worker_id: str | None = None,
        signal: AbortSignal | None = None,
        **unknown: object,
    ) -> WorkerHandle:
        """Start a worker now (call from a running event loop); returns its handle."""
        _reject_unknown("worker", unknown, _CONFIG)
        try:
            worker_mode = WorkerMode(mode)
        except ValueError as exc:
            raise RunlaneError(_CONFIG, f"Unknown worker mode {mode!r}.") from exc
        _positive_int("concurrency", concurrency, _CONFIG)
        if batch_size is None:
            batch_size = min(concurrency, CONTRACT_DEFAULTS.worker.batch_size)
        _positive_int("batch_size", batch_size, _CONFIG)
        self._ctx.require_storage("leases_runs")
        options = execution_options(
            default_worker_id=self._ctx.worker_id,
            lease_duration=lease_duration,
            heartbeat_interval=heartbeat_interval,
            max_attempt_duration=max_attempt_duration,
            worker_id=worker_id,
            signal=signal,
            code=_CONFIG,
        )
        names = queue_names(self._ctx, queues)
        handle = WorkerHandle(
            self._ctx,
            mode=worker_mode,
            queues=names,
            concurrency=concurrency,
            batch_size=batch_size,
            poll_interval=to_duration(poll_interval, code=_CONFIG, field="poll_interval"),
            options=options,
        )
        self._workers.append(handle)
        handle.closed.add_done_callback(
            lambda _: self._workers.remove(handle) if handle in self._workers else None
        )
        return handle

    async def tick(self, *, limit: int | None = None) -> TickResult:
        """One bounded maintenance pass (run it from a schedule, not from every delivery)."""
        await self._ensure_started()
        bound = CONTRACT_DEFAULTS.maintenance.per_phase_limit if limit is None else limit
        _positive_int("limit", bound, _VALIDATION)
        return await tick(self._ctx, limit=bound)


def _environment(value: Environment | str | None) -> Environment:
    if isinstance(value, Environment):
        return value
    if value is not None and not isinstance(value, str):
        raise configuration_invalid("environment must be an Environment or a name.")
    try:
        return Environment(value or CONTRACT_DEFAULTS.environment)
    except RunlaneError as exc:
        raise configuration_invalid(f"environment is invalid: {exc.message}") from exc


def create_runlane(
    *,
    lane: Lane,
    queues: Sequence[QueueDefinition],
    tasks: Mapping[str, TaskDefinition] | Sequence[TaskDefinition],
    environment: Environment | str | None = None,
    dispatch: TriggerDispatchMode | str | None = None,
    clock: Clock | None = None,
    worker_id: str | None = None,
    max_payload_bytes: int = DEFAULT_MAX_PAYLOAD_BYTES,
    sync_handler_threads: int = 16,
    **unknown: object,
) -> Runlane:
    """Build the runtime; malformed or unknown options raise ``RunlaneError(configuration_invalid)``."""
    _reject_unknown("create_runlane", unknown, _CONFIG)
    if not isinstance(lane, Lane):
        raise configuration_invalid("lane must be built with create_lane(...) or a lane factory.")
    if isinstance(queues, str | QueueDefinition) or not isinstance(queues, Sequence):
        raise configuration_invalid("queues must be a list of queue definitions.")
    if tasks is None or isinstance(tasks, str):
        raise configuration_invalid("tasks must be a mapping of names to tasks, or a list of tasks.")
    registry = TaskRegistry(tasks, queues)
    env = _environment(environment)
    mode = _dispatch_mode(dispatch, _CONFIG) or CONTRACT_DEFAULTS.dispatch.on_trigger
    if clock is not None and not callable(getattr(clock, "now", None)):
        raise configuration_invalid("clock must have a now() method returning an aware datetime.")
    for name, value in (
        ("max_payload_bytes", max_payload_bytes),
        ("sync_handler_threads", sync_handler_threads),
    ):
        _positive_int(name, value, _CONFIG)
    storage_caps = lane.capabilities.storage
    if registry.bounded_queues and not storage_caps.enforces_queue_concurrency:
        raise capability_unsupported(
            "enforces_queue_concurrency", "Bounded queues need enforces_queue_concurrency."
        )
    if registry.schedules and not storage_caps.claims_schedule_occurrences:
        raise capability_unsupported(
            "claims_schedule_occurrences", "Schedules need claims_schedule_occurrences."
        )
    ctx = RuntimeContext(
        lane=lane,
        registry=registry,
        clock=clock or SYSTEM_CLOCK,
        environment=env,
        worker_id=new_worker_id() if worker_id is None else as_id(IdKind.WORKER, worker_id, code=_CONFIG),
        dispatch=mode,
        max_payload_bytes=max_payload_bytes,
        executor=ThreadPoolExecutor(max_workers=sync_handler_threads, thread_name_prefix="runlane-handler"),
    )
    return Runlane(ctx)
