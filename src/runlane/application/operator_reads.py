"""Operator reads: environment-scoped, cursor-paginated, gated on operator-read capabilities."""

from collections.abc import Sequence
from datetime import datetime

from runlane.application.runtime_context import RuntimeContext
from runlane.application.task_definition import TaskDefinition
from runlane.domain.attempts import RunAttemptSummary, summarize_attempts
from runlane.domain.errors import RunlaneError
from runlane.domain.ids import IdKind, as_id, as_optional_id
from runlane.domain.pages import Page, PaginationParams
from runlane.domain.queues import QueueDefinition
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord, RunSummary
from runlane.domain.timestamps import utc_ms
from runlane.domain.vocabulary import (
    ACTIVE_RUN_STATUSES,
    ErrorCode,
    RunSortField,
    RunStatus,
    SortDirection,
)
from runlane.ports.storage_commands import GetRun, GetRunByIdempotencyKey, ListRunEvents, ListRuns, RunFilter

_VALIDATION = ErrorCode.VALIDATION_FAILED


def _enum_tuple(kind: type, values: Sequence[object] | None, label: str) -> tuple[object, ...] | None:
    if values is None:
        return None
    if isinstance(values, str):
        values = [values]
    try:
        return tuple(kind(v) for v in values)
    except ValueError as exc:
        raise RunlaneError(_VALIDATION, f"Unknown {label}: {exc}.") from exc


class OperatorReads:
    def __init__(self, ctx: RuntimeContext) -> None:
        self._ctx = ctx

    async def get(self, run_id: str) -> RunRecord | None:
        self._ctx.require_operator_reads()
        return await self._get(run_id)

    async def _get(self, run_id: str) -> RunRecord | None:
        ctx = self._ctx
        return await ctx.lane.storage.get_run(
            GetRun(environment=ctx.environment, run_id=as_id(IdKind.RUN, run_id))
        )

    async def require(self, run_id: str) -> RunRecord:
        run = await self.get(run_id)
        if run is None:
            raise RunlaneError(
                ErrorCode.RUN_NOT_FOUND, f"Run {run_id!r} was not found.", meta={"runId": run_id}
            )
        return run

    async def list(
        self,
        *,
        statuses: Sequence[RunStatus | str] | None = None,
        task_ids: Sequence[str] | None = None,
        tasks: Sequence[TaskDefinition] | None = None,
        queues: Sequence[QueueDefinition] | None = None,
        idempotency_key: str | None = None,
        singleton_key: str | None = None,
        created_after: datetime | None = None,
        created_before: datetime | None = None,
        limit: int | None = None,
        cursor: str | None = None,
        sort_by: RunSortField | str | None = None,
        sort_direction: SortDirection | str | None = None,
    ) -> Page[RunSummary]:
        ctx = self._ctx
        ctx.require_operator_reads()
        ids = [as_id(IdKind.TASK, t) for t in task_ids or ()] + [t.id for t in tasks or ()]
        queue_names: tuple[str, ...] | None = None
        if queues is not None:
            if any(not isinstance(q, QueueDefinition) for q in queues):
                raise RunlaneError(_VALIDATION, "queues must be queue definitions.")
            queue_names = tuple(q.name for q in queues)
        query = ListRuns(
            filter=RunFilter(
                environment=ctx.environment,
                statuses=_enum_tuple(RunStatus, statuses, "status"),  # type: ignore[arg-type]
                task_ids=tuple(ids) if (task_ids is not None or tasks is not None) else None,
                queues=queue_names,
                idempotency_key=as_optional_id(IdKind.IDEMPOTENCY_KEY, idempotency_key),
                singleton_key=as_optional_id(IdKind.SINGLETON_KEY, singleton_key),
                created_after=None if created_after is None else utc_ms(created_after, field="created_after"),
                created_before=None
                if created_before is None
                else utc_ms(created_before, field="created_before"),
            ),
            pagination=PaginationParams(limit=limit, cursor=cursor),
            sort_by=RunSortField(sort_by) if sort_by is not None else RunSortField.CREATED_AT,
            sort_direction=SortDirection(sort_direction)
            if sort_direction is not None
            else SortDirection.DESC,
        )
        page = await ctx.lane.storage.list_runs(query)
        return Page(tuple(run.summary() for run in page.data), page.next_cursor)

    async def events(
        self,
        run_id: str,
        *,
        sort_by: object = None,
        sort_direction: SortDirection | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[RunEventRecord]:
        ctx = self._ctx
        ctx.require_operator_reads()
        if sort_by is not None and sort_by != "sequence":
            raise RunlaneError(_VALIDATION, "Run events can only be sorted by sequence.")
        return await ctx.lane.storage.list_run_events(
            ListRunEvents(
                environment=ctx.environment,
                run_id=as_id(IdKind.RUN, run_id),
                pagination=PaginationParams(limit=limit, cursor=cursor),
                sort_direction=SortDirection(sort_direction)
                if sort_direction is not None
                else SortDirection.ASC,
            )
        )

    async def all_events(self, run_id: str) -> tuple[RunEventRecord, ...]:
        collected: list[RunEventRecord] = []
        cursor: str | None = None
        while True:
            page = await self.events(run_id, limit=500, cursor=cursor)
            collected.extend(page.data)
            if page.next_cursor is None:
                return tuple(collected)
            cursor = page.next_cursor

    async def attempts(self, run_id: str) -> tuple[RunAttemptSummary, ...]:
        return summarize_attempts(await self.all_events(run_id))

    async def find_active(
        self, *, task: TaskDefinition, singleton_key: str | None = None, idempotency_key: str | None = None
    ) -> RunRecord | None:
        """Advisory read (may race); trigger plus storage ownership is the correctness boundary."""
        if (singleton_key is None) == (idempotency_key is None):
            raise RunlaneError(
                _VALIDATION, "find_active needs exactly one of singleton_key or idempotency_key."
            )
        definition = self._ctx.registry.resolve(task)
        page = await self.list(
            statuses=tuple(ACTIVE_RUN_STATUSES),
            task_ids=[definition.id],
            singleton_key=singleton_key,
            idempotency_key=idempotency_key,
            limit=1,
        )
        if not page.data:
            return None
        return await self._get(page.data[0].id)

    async def find_current(self, *, task: TaskDefinition, idempotency_key: str) -> RunRecord | None:
        ctx = self._ctx
        ctx.require_operator_reads()
        ctx.require_storage("enforces_idempotency")
        definition = ctx.registry.resolve(task)
        return await ctx.lane.storage.get_run_by_idempotency_key(
            GetRunByIdempotencyKey(
                environment=ctx.environment,
                task_id=definition.id,
                key=as_id(IdKind.IDEMPOTENCY_KEY, idempotency_key),
                now=ctx.now(),
            )
        )
