"""Helpers the storage conformance tests share; everything goes through the ``StorageAdapter`` port."""

import uuid
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest

from runlane.domain.durations import DurationInput
from runlane.domain.errors import RunlaneError
from runlane.domain.pages import PaginationParams
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import ErrorCode, OutboxMessageStatus, RunStatus, StorageConflictKind
from runlane.ports.storage import StorageAdapter
from runlane.ports.storage_commands import (
    AppendPlan,
    AppendRunEventsResult,
    ClaimDueRuns,
    ClaimOutboxMessages,
    GetRun,
    ListOutboxMessages,
    ListRunEvents,
    ListRuns,
    OutboxMessage,
    PlanFn,
    RunFilter,
)
from runlane.testing.clocks import ControlledClock
from runlane.testing.run_builders import (
    cancelled_event,
    create_queued_run_data,
    create_scheduled_run_data,
    delivery_requested_event,
    failed_event,
    lease_claimed_event,
    next_run_data,
    succeeded_event,
)

MAX_PAGES = 1_000


def unique_environment(prefix: str = "conf") -> Environment:
    return Environment(f"{prefix}_{uuid.uuid4().hex[:16]}")


async def expect_conflict(awaitable: Awaitable[Any], kind: StorageConflictKind) -> RunlaneError:
    """Await ``awaitable`` and require a retryable ``storage_conflict`` of ``kind``."""
    with pytest.raises(RunlaneError) as info:
        await awaitable
    error = info.value
    assert error.code is ErrorCode.STORAGE_CONFLICT, f"expected storage_conflict, got {error!r}"
    assert error.conflict_kind is kind, f"expected conflict kind {kind.value}, got {error.conflict_kind}"
    assert error.retryable is True
    return error


async def expect_error(awaitable: Awaitable[Any], code: ErrorCode) -> RunlaneError:
    with pytest.raises(RunlaneError) as info:
        await awaitable
    assert info.value.code is code, f"expected {code.value}, got {info.value!r}"
    return info.value


@dataclass(slots=True)
class StorageKit:
    """One storage, one fresh environment and one controlled clock for a single test."""

    storage: StorageAdapter
    environment: Environment
    clock: ControlledClock

    def new_id(self, prefix: str = "run") -> str:
        return f"{prefix}_{uuid.uuid4().hex}"

    @property
    def now(self) -> datetime:
        return self.clock.now()

    async def create(
        self,
        run_id: str | None = None,
        *,
        with_delivery: bool = True,
        now: datetime | None = None,
        concurrency_limit: int | None = None,
        **created_options: Any,
    ) -> AppendRunEventsResult:
        """Create a queued run (``run.created`` + a delivery request due now, unless disabled)."""
        at = now or self.now
        data = create_queued_run_data(
            run_id or self.new_id(),
            now=at,
            environment=self.environment,
            with_delivery=with_delivery,
            **created_options,
        )
        return await self.storage.append_run_events(
            data.append_command(at, concurrency_limit=concurrency_limit)
        )

    async def create_scheduled(
        self, run_at: datetime, run_id: str | None = None, **options: Any
    ) -> RunRecord:
        data = create_scheduled_run_data(
            run_id or self.new_id(), now=self.now, run_at=run_at, environment=self.environment, **options
        )
        return (await self.storage.append_run_events(data.append_command(self.now))).run

    async def append(
        self,
        run: RunRecord,
        *events: RunEvent,
        now: datetime | None = None,
        concurrency_limit: int | None = None,
    ) -> AppendRunEventsResult:
        data = next_run_data(run, *events)
        return await self.storage.append_run_events(
            data.append_command(now or self.now, concurrency_limit=concurrency_limit)
        )

    async def get(self, run_id: str) -> RunRecord | None:
        return await self.storage.get_run(GetRun(environment=self.environment, run_id=run_id))

    async def require(self, run_id: str) -> RunRecord:
        run = await self.get(run_id)
        assert run is not None, f"run {run_id} should exist"
        return run

    async def events(self, run_id: str) -> tuple[RunEventRecord, ...]:
        collected: list[RunEventRecord] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await self.storage.list_run_events(
                ListRunEvents(
                    environment=self.environment,
                    run_id=run_id,
                    pagination=PaginationParams(limit=500, cursor=cursor),
                )
            )
            collected.extend(page.data)
            cursor = page.next_cursor
            if cursor is None:
                return tuple(collected)
        raise AssertionError("too many event pages")

    async def all_runs(self, **filter_options: Any) -> tuple[RunRecord, ...]:
        collected: list[RunRecord] = []
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            page = await self.storage.list_runs(
                ListRuns(
                    filter=RunFilter(environment=self.environment, **filter_options),
                    pagination=PaginationParams(limit=500, cursor=cursor),
                )
            )
            collected.extend(page.data)
            cursor = page.next_cursor
            if cursor is None:
                return tuple(collected)
        raise AssertionError("too many run pages")

    async def claim(
        self,
        run: RunRecord,
        *,
        worker_id: str = "worker_a",
        lease_duration: DurationInput = "30s",
        concurrency_limit: int | None = None,
    ) -> RunRecord:
        """Lease ``run`` through ``append_run_events`` (the ``execute_delivery`` / ``run_now`` path)."""
        event = lease_claimed_event(run, now=self.now, worker_id=worker_id, lease_duration=lease_duration)
        return (await self.append(run, event, concurrency_limit=concurrency_limit)).run

    async def finish(self, run: RunRecord, status: RunStatus) -> RunRecord:
        """Drive ``run`` to a terminal ``status`` the way core would (leasing it first if needed)."""
        if status is RunStatus.CANCELLED:
            return (await self.append(run, cancelled_event(run, now=self.now))).run
        if run.status not in (RunStatus.RUNNING, RunStatus.CANCELLATION_REQUESTED):
            run = await self.claim(run)
        if status is RunStatus.SUCCEEDED:
            return (await self.append(run, succeeded_event(run, now=self.now))).run
        if status is RunStatus.FAILED:
            return (await self.append(run, failed_event(run, now=self.now))).run
        raise AssertionError(f"{status} is not terminal")

    async def request_delivery(
        self, run: RunRecord, available_at: datetime | None = None
    ) -> AppendRunEventsResult:
        return await self.append(run, delivery_requested_event(run, now=self.now, available_at=available_at))

    def lease_plan(self, worker_id: str = "worker_a", lease_duration: DurationInput = "30s") -> PlanFn:
        """A ``claim_due_runs`` plan callback that leases each candidate for ``worker_id``."""

        def plan(run: RunRecord) -> AppendPlan:
            event = lease_claimed_event(run, now=self.now, worker_id=worker_id, lease_duration=lease_duration)
            return next_run_data(run, event).plan()

        return plan

    def delivery_plan(self) -> PlanFn:
        """A ``reserve_dispatch`` plan callback that requests delivery now."""

        def plan(run: RunRecord) -> AppendPlan:
            return next_run_data(run, delivery_requested_event(run, now=self.now)).plan()

        return plan

    def claim_due(
        self,
        limit: int = 10,
        *,
        worker_id: str = "worker_a",
        queues: tuple[str, ...] | None = None,
        concurrency_limits: dict[str, int] | None = None,
        task_ids: tuple[str, ...] | None = None,
    ) -> ClaimDueRuns:
        return ClaimDueRuns(
            environment=self.environment,
            now=self.now,
            limit=limit,
            plan=self.lease_plan(worker_id),
            queues=queues,
            concurrency_limits=concurrency_limits or {},
            task_ids=task_ids,
        )

    async def outbox(
        self, run_id: str | None = None, statuses: tuple[OutboxMessageStatus, ...] | None = None
    ) -> tuple[OutboxMessage, ...]:
        return await self.storage.list_outbox_messages(
            ListOutboxMessages(environment=self.environment, run_id=run_id, statuses=statuses, limit=1_000)
        )

    def claim_outbox(
        self, limit: int = 100, *, claim_timeout_ms: int = 60_000, ids: tuple[str, ...] | None = None
    ) -> ClaimOutboxMessages:
        return ClaimOutboxMessages(
            environment=self.environment,
            now=self.now,
            limit=limit,
            claim_timeout_ms=claim_timeout_ms,
            ids=ids,
        )
