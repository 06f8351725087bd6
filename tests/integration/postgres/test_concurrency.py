"""Races against the real server: many connections, two engines, the outcomes the contract promises."""

from __future__ import annotations

import asyncio
import random
import time
from collections import Counter
from collections.abc import AsyncIterator

import psycopg
import pytest
import sqlalchemy as sa

from runlane.domain.errors import RunlaneError
from runlane.domain.run_record import RunRecord
from runlane.domain.schedules import occurrence_id
from runlane.domain.values import RunSource
from runlane.domain.vocabulary import RunEventType, RunSourceType, RunStatus, StorageConflictKind
from runlane.infrastructure.postgres import PostgresStorage
from runlane.infrastructure.postgres.schema import LEASED_STATUS_VALUES
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    AppendPlan,
    AppendRunEventsResult,
    ClaimDueRuns,
    ListDueRuns,
    ReserveDispatch,
    ScheduleOccurrenceClaim,
)
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment
from runlane.testing.run_builders import (
    TEST_TASK_ID,
    create_queued_run_data,
    delivery_requested_event,
    lease_claimed_event,
    next_run_data,
    succeeded_event,
)
from tests.integration.postgres.helpers import copy_runs, started_storage
from tests.support.pg_cluster import PostgresCluster

DEADLINE_S = 90


@pytest.fixture
async def second_storage(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> AsyncIterator[PostgresStorage]:
    """Another engine and pool on the same schema, as a second worker process would have."""
    async with started_storage(pg_cluster.dsn, pg_migrated_schema, pool_size=10, max_overflow=10) as storage:
        yield storage


@pytest.fixture
def kits(pg_storage: PostgresStorage, second_storage: PostgresStorage) -> tuple[StorageKit, StorageKit]:
    environment, clock = unique_environment("race"), ControlledClock()
    return StorageKit(pg_storage, environment, clock), StorageKit(second_storage, environment, clock)


async def _event_counts(kit: StorageKit, event_type: RunEventType) -> Counter[str]:
    storage = kit.storage
    assert isinstance(storage, PostgresStorage)
    e = storage.tables.run_events
    async with storage.engine.connect() as conn:
        rows = await conn.execute(
            sa.select(e.c.run_id, sa.func.count())
            .where(e.c.environment == kit.environment.name, e.c.type == event_type.value)
            .group_by(e.c.run_id)
        )
        return Counter({run_id: count for run_id, count in rows})


async def test_fifty_concurrent_idempotent_creates_over_two_pools_make_one_run(
    kits: tuple[StorageKit, StorageKit],
) -> None:
    results = await asyncio.gather(*(kits[i % 2].create(idempotency_key="once") for i in range(50)))
    created = [r for r in results if not r.returned_existing]
    assert len(created) == 1
    assert {r.run.id for r in results} == {created[0].run.id}
    assert [run.id for run in await kits[0].all_runs()] == [created[0].run.id]
    assert len(await kits[1].outbox()) == 1


async def test_two_concurrent_occurrence_creates_make_one_run(kits: tuple[StorageKit, StorageKit]) -> None:
    fire = kits[0].now
    occurrence = occurrence_id("sched.race", fire)
    claim = ScheduleOccurrenceClaim(
        schedule_id="sched.race", occurrence_id=occurrence, fire_time=fire, task_id=TEST_TASK_ID
    )
    source = RunSource(type=RunSourceType.SCHEDULE, schedule_id="sched.race", occurrence_id=occurrence)

    async def materialize(kit: StorageKit) -> AppendRunEventsResult:
        data = create_queued_run_data(kit.new_id(), now=kit.now, environment=kit.environment, source=source)
        return await kit.storage.append_run_events(data.append_command(kit.now, schedule_occurrence=claim))

    results = await asyncio.gather(*(materialize(kit) for kit in kits), return_exceptions=True)
    winners = [r for r in results if isinstance(r, AppendRunEventsResult)]
    losers = [r for r in results if isinstance(r, RunlaneError)]
    assert len(winners) == 1
    assert len(losers) == 1
    assert losers[0].conflict_kind is StorageConflictKind.SCHEDULE_OCCURRENCE
    assert [run.id for run in await kits[0].all_runs()] == [winners[0].run.id]


async def test_eight_claim_loops_over_two_thousand_runs_never_claim_a_run_twice(
    kits: tuple[StorageKit, StorageKit], pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    kit = kits[0]
    total = 2_000
    runs = [
        create_queued_run_data(f"run_bulk_{i:05d}", now=kit.now, environment=kit.environment)
        for i in range(total)
    ]
    copy_runs(pg_cluster.libpq_dsn, pg_migrated_schema, runs)
    claimed_by: dict[str, list[str]] = {}

    async def loop(worker: int) -> None:
        own = kits[worker % 2]
        claimed_by[f"worker_{worker}"] = []
        empty = 0
        for _ in range(total):  # bounded: each pass claims at least one run or counts as empty
            batch = await own.storage.claim_due_runs(own.claim_due(25, worker_id=f"worker_{worker}"))
            claimed_by[f"worker_{worker}"].extend(item.run.id for item in batch)
            empty = 0 if batch else empty + 1
            if empty >= 2:
                return

    started = time.monotonic()
    await asyncio.gather(*(loop(worker) for worker in range(8)))
    elapsed = time.monotonic() - started
    every_claim = [run_id for ids in claimed_by.values() for run_id in ids]
    assert len(every_claim) == len(set(every_claim)) == total
    assert sum(1 for ids in claimed_by.values() if ids) >= 2, "the work was shared between claimers"
    counts = await _event_counts(kit, RunEventType.LEASE_CLAIMED)
    assert len(counts) == total
    assert set(counts.values()) == {1}
    assert elapsed < 60


async def test_bounded_capacity_is_never_exceeded_when_claimers_race(
    kits: tuple[StorageKit, StorageKit],
) -> None:
    kit = kits[0]
    limit, keys, per_key = 3, ("tenant_a", "tenant_b"), 30
    for key in keys:
        for _ in range(per_key):
            await kit.create(queue="bounded", concurrency_key=key, with_delivery=False)
    storage = kit.storage
    assert isinstance(storage, PostgresStorage)
    r = storage.tables.runs
    peak: Counter[str | None] = Counter()
    lost_races: list[StorageConflictKind | None] = []
    done = asyncio.Event()
    rng = random.Random(7)

    async def sample() -> None:
        async with storage.engine.connect() as conn:
            while not done.is_set():
                rows = await conn.execute(
                    sa.select(r.c.concurrency_key, sa.func.count())
                    .where(r.c.environment == kit.environment.name, r.c.status.in_(LEASED_STATUS_VALUES))
                    .group_by(r.c.concurrency_key)
                )
                await conn.rollback()
                for key, count in rows:
                    peak[key] = max(peak[key], count)
                await asyncio.sleep(0.002)

    async def work(own: StorageKit, run: RunRecord) -> None:
        # Leases held long enough, against claims of a few ms, that every partition fills up.
        await asyncio.sleep(rng.uniform(0.01, 0.03))
        await own.append(run, succeeded_event(run, now=own.now))

    async def batch_claimer(worker: int) -> None:
        own = kits[worker % 2]
        command = ClaimDueRuns(
            environment=own.environment,
            now=own.now,
            limit=2,
            plan=own.lease_plan(f"worker_{worker}"),
            concurrency_limits={"bounded": limit},
        )
        while not done.is_set():
            claimed = await own.storage.claim_due_runs(command)
            await asyncio.gather(*(work(own, item.run) for item in claimed))
            await asyncio.sleep(0.001)

    async def append_claimer(worker: int) -> None:
        """The execute_delivery path: lease one listed run through append_run_events."""
        own = kits[worker % 2]
        query = ListDueRuns(environment=own.environment, now=own.now, limit=5, statuses=(RunStatus.QUEUED,))
        while not done.is_set():
            for run in await own.storage.list_due_runs(query):
                try:
                    event = lease_claimed_event(run, now=own.now, worker_id=f"worker_{worker}")
                    leased = (await own.append(run, event, concurrency_limit=limit)).run
                except RunlaneError as error:
                    lost_races.append(error.conflict_kind)
                    continue
                await work(own, leased)
            await asyncio.sleep(0.001)

    async def until_all_succeeded() -> None:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            finished = await kit.all_runs(statuses=(RunStatus.SUCCEEDED,))
            if len(finished) == per_key * len(keys):
                break
            await asyncio.sleep(0.05)
        done.set()

    await asyncio.gather(
        until_all_succeeded(),
        sample(),
        *(batch_claimer(worker) for worker in range(6)),
        *(append_claimer(worker) for worker in range(6, 8)),
    )
    assert len(await kit.all_runs(statuses=(RunStatus.SUCCEEDED,))) == per_key * len(keys)
    assert set(peak) <= set(keys)
    assert max(peak.values()) <= limit, peak
    assert max(peak.values()) == limit, f"the race never filled a partition: {peak}"
    counts = await _event_counts(kit, RunEventType.LEASE_CLAIMED)
    assert set(counts.values()) == {1}
    assert set(lost_races) <= {StorageConflictKind.SEQUENCE, StorageConflictKind.QUEUE_CAPACITY}


async def test_racing_reservers_never_reserve_beyond_capacity(kits: tuple[StorageKit, StorageKit]) -> None:
    kit = kits[0]
    for _ in range(40):
        await kit.create(queue="bounded", with_delivery=False)

    def reserve(own: StorageKit) -> ReserveDispatch:
        def plan(run: RunRecord) -> AppendPlan:
            return next_run_data(run, delivery_requested_event(run, now=own.now)).plan()

        return ReserveDispatch(
            environment=own.environment,
            queue="bounded",
            concurrency_limit=3,
            dispatch_timeout_ms=60_000,
            now=own.now,
            limit=10,
            plan=plan,
        )

    results = await asyncio.gather(
        *(kits[i % 2].storage.reserve_dispatch(reserve(kits[i % 2])) for i in range(8))
    )
    raced = sum(len(batch) for batch in results)
    assert 1 <= raced <= 3
    top_up = await kit.storage.reserve_dispatch(reserve(kit))
    assert raced + len(top_up) == 3
    assert await kit.storage.reserve_dispatch(reserve(kit)) == ()
    assert len(await kit.outbox()) == 3


_ORDER_RUNS = 200


async def _waiting_on_locks(dsn: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'")
        row = await cursor.fetchone()
        return int(row[0]) if row else 0


async def test_batched_appends_over_the_same_runs_in_opposite_orders_never_deadlock(
    kits: tuple[StorageKit, StorageKit], pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    """Set-based writes lock their runs in id order, whatever order the batch lists them in.

    Two pools append to the same runs at the same sequences, one batch listing them forwards and
    the other backwards, while a third transaction holds the middle run so both statements are
    inside their writes at once. One batch wins every run and the other gets a sequence conflict
    for each. A deadlock would abort one whole batch and raise here. What it cannot show is which
    part orders the locks: with the lock CTE's ``ORDER BY id`` removed it still passed, because the
    planner reached the rows in id order anyway.
    """
    kit = kits[0]
    runs = [
        create_queued_run_data(f"run_order_{i:04d}", now=kit.now, environment=kit.environment)
        for i in range(_ORDER_RUNS)
    ]
    copy_runs(pg_cluster.libpq_dsn, pg_migrated_schema, runs)
    records = sorted(await kit.all_runs(), key=lambda run: run.id)
    commands = [
        next_run_data(run, delivery_requested_event(run, now=kit.now)).append_command(kit.now)
        for run in records
    ]
    forwards = AppendManyRunEvents(environment=kit.environment, commands=tuple(commands))
    backwards = AppendManyRunEvents(environment=kit.environment, commands=tuple(reversed(commands)))
    middle = records[_ORDER_RUNS // 2].id
    async with await psycopg.AsyncConnection.connect(pg_cluster.libpq_dsn) as blocker:
        await blocker.execute(
            f'SELECT 1 FROM "{pg_migrated_schema}".runs WHERE environment = %s AND id = %s FOR UPDATE',
            (kit.environment.name, middle),
        )
        writes = asyncio.gather(
            kits[0].storage.append_many_run_events(forwards),
            kits[1].storage.append_many_run_events(backwards),
        )
        for _ in range(400):  # bounded: both statements wait on a row lock within a few seconds
            if await _waiting_on_locks(pg_cluster.libpq_dsn) >= 2:
                break
            await asyncio.sleep(0.01)
        else:
            pytest.fail("the two batches never waited on the held run")
        await blocker.rollback()
        results = await asyncio.wait_for(writes, timeout=DEADLINE_S)
    outcomes = [item for result in results for item in result.results]
    won = [item for item in outcomes if isinstance(item, AppendRunEventsResult)]
    lost = [item for item in outcomes if isinstance(item, RunlaneError)]
    assert len(won) == len(lost) == _ORDER_RUNS
    assert {item.conflict_kind for item in lost} == {StorageConflictKind.SEQUENCE}
    assert sorted(item.run.id for item in won) == [run.id for run in records]
    counts = await _event_counts(kit, RunEventType.DELIVERY_REQUESTED)
    assert len(counts) == _ORDER_RUNS
    assert set(counts.values()) == {2}  # the one each run was created with, and this one
