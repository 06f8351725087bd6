"""Batch claims: due-run leases, dispatch reservations, and freeing expired reservations.

Candidates are locked with ``FOR UPDATE SKIP LOCKED`` in (availability, id) order, so concurrent
claimers split the due runs between them and never wait for each other. Core's ``plan`` callback
(pure Python) decides each locked run's events; the plans are written in the same transaction.
A bounded queue's candidate passes a correlated occupancy pre-filter in SQL, then the exact check
under its partition lock (see ``capacity``). When locked candidates are skipped (full or busy
partition, ``plan`` returned ``None``) the scan continues after the last one, for a bounded number
of rounds, so skipped runs do not shrink the batch; later rounds leave out the partitions already
found full or busy, so a claim does not lock (and hide from other claimers) runs it cannot take.

The due-run claim's candidate query is the hottest read of a worker: it is built once per filter
shape (``claim_statement``) and sent straight to psycopg (``driver_statements``).
"""

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import Grouping

from runlane.domain.errors import invariant_violation, validation_failed
from runlane.domain.run_record import RunRecord
from runlane.domain.timestamps import add_ms
from runlane.domain.vocabulary import RUNNABLE_RUN_STATUSES
from runlane.infrastructure.postgres import driver_statements
from runlane.infrastructure.postgres.array_literals import array_literal, array_param
from runlane.infrastructure.postgres.bulk import update_locked_runs
from runlane.infrastructure.postgres.capacity import (
    Partition,
    holds_live_reservation,
    live_reservations,
    occupancy,
    occupancy_expression,
    try_lock_partition,
)
from runlane.infrastructure.postgres.driver_statements import Driver
from runlane.infrastructure.postgres.row_versions import row_version_text
from runlane.infrastructure.postgres.rows import run_from_record
from runlane.infrastructure.postgres.schema import RUNNABLE_STATUS_VALUES, StorageTables, build_tables
from runlane.infrastructure.postgres.writes import StagedWrite, stage_plan
from runlane.ports.storage_commands import (
    ClaimDueRuns,
    ClaimedRun,
    ReleaseExpiredReservations,
    ReserveDispatch,
)
from runlane.ports.storage_rules import check_limit

MAX_SCAN_ROUNDS = 8
# From this many runs a claim writes its rows by version (``row_versions``, ``RunWrite.HELD``).
HELD_WRITE_MIN_RUNS = 32


def candidates_statement(
    t: StorageTables,
    *,
    environment: str,
    now: datetime,
    limit: int,
    after: tuple[datetime, str] | None = None,
    filters: Sequence[sa.ColumnElement[bool]] = (),
) -> sa.Select[tuple[Any]]:
    """Due runnable runs in (availability, id) order, locked ``FOR UPDATE SKIP LOCKED``.

    Served by the partial index ``ix_runs_due`` (runnable statuses only, so terminal history never
    enters the scan).
    """
    r = t.runs
    stmt = sa.select(r.c.record).where(
        r.c.environment == environment,
        r.c.status.in_(RUNNABLE_STATUS_VALUES),
        r.c.available_at <= now,
        *filters,
    )
    if after is not None:
        stmt = stmt.where(sa.tuple_(r.c.available_at, r.c.id) > sa.tuple_(*after))
    # SKIP LOCKED: a row another claimer holds is simply not ours this time.
    return stmt.order_by(r.c.available_at, r.c.id).limit(limit).with_for_update(of=r, skip_locked=True)


def outside_partitions(t: StorageTables, partitions: Iterable[Partition]) -> list[sa.ColumnElement[bool]]:
    """Leave out runs of ``partitions`` in later scan rounds.

    A claim that found a partition full or busy gains nothing from locking more of its runs: they
    would be skipped again, cost a round each, and stay locked (so other claimers skip them too)
    until the claim commits. The pre-filter cannot see this claim's own uncommitted leases.
    """
    r = t.runs
    filters: list[sa.ColumnElement[bool]] = []
    for _, queue, key in partitions:
        # IS NOT DISTINCT FROM: an unkeyed run is outside a keyed partition (``=`` would give NULL).
        same_key = r.c.concurrency_key.is_not_distinct_from(key)
        filters.append(sa.not_(sa.and_(r.c.queue == queue, same_key)))
    return filters


async def _lock_candidates(
    conn: AsyncConnection,
    t: StorageTables,
    *,
    environment: str,
    now: datetime,
    limit: int,
    after: tuple[datetime, str] | None,
    filters: Sequence[sa.ColumnElement[bool]],
) -> list[RunRecord]:
    stmt = candidates_statement(
        t, environment=environment, now=now, limit=limit, after=after, filters=filters
    )
    result = await conn.execute(stmt)
    return [run_from_record(record) for record in result.scalars()]


async def _write(
    conn: Driver, t: StorageTables, staged: list[StagedWrite], versions: Mapping[str, str] | None = None
) -> tuple[ClaimedRun, ...]:
    # One statement: the run rows, their events, outbox rows and ended reservations (see bulk).
    # Large claims reach their rows by version; the held write is planned on every execution
    # (about 0.3 ms of server time), which a small claim's prepared by-id write does not pay.
    held = versions if versions is not None and len(staged) >= HELD_WRITE_MIN_RUNS else None
    await update_locked_runs(conn, t, staged, held)
    return tuple(ClaimedRun(run=item.new, events=item.records) for item in staged)


@dataclass(frozen=True, slots=True)
class ClaimShape:
    """Which optional conditions a due-run claim round has; one statement per shape and schema."""

    queues: bool  # queue = ANY(queues)
    task_ids: bool  # task_id = ANY(task ids)
    bounded: bool  # the bounded-queue occupancy pre-filter
    closed: bool  # leave out partitions found full or busy in earlier rounds
    after: bool  # continue after the last run of the previous round


_ENVIRONMENT = "c_environment"
_NOW = "c_now"
_LIMIT = "c_limit"
_QUEUES = "c_queues"
_TASK_IDS = "c_task_ids"
_BOUNDED_QUEUES = "c_bounded_queues"
_BOUNDED_LIMITS = "c_bounded_limits"
_CLOSED_QUEUES = "c_closed_queues"
_CLOSED_KEYS = "c_closed_keys"
_AFTER_AT = "c_after_at"
_AFTER_ID = "c_after_id"


@lru_cache(maxsize=256)
def claim_statement(schema: str, shape: ClaimShape) -> sa.Select[str, str]:
    """``candidates_statement`` with bind parameters only, built once per (schema, shape).

    It runs through ``driver_statements``, so it takes no expanding parameter: the runnable
    statuses are inline constants (the partial indexes ``ix_runs_due*`` need them in the SQL to
    apply), lists are ``text[]``/``int[]`` array literals, and ``now`` is a timezone-aware datetime
    psycopg binds as ``timestamptz``. The record comes back as the stored text (``ExactJson``).
    """
    t = build_tables(schema)
    r = t.runs
    now = sa.bindparam(_NOW, type_=sa.DateTime(timezone=True))
    conditions: list[sa.ColumnElement[bool]] = [
        r.c.environment == sa.bindparam(_ENVIRONMENT, type_=sa.Text()),
        r.c.status.in_([sa.literal_column(f"'{value}'") for value in RUNNABLE_STATUS_VALUES]),
        r.c.available_at <= now,
    ]
    if shape.queues:
        conditions.append(r.c.queue == sa.any_(array_param(_QUEUES, sa.Text())))
    if shape.task_ids:
        conditions.append(r.c.task_id == sa.any_(array_param(_TASK_IDS, sa.Text())))
    if shape.bounded:
        bounded_queues = array_param(_BOUNDED_QUEUES, sa.Text())
        # The queue's limit: limits[array_position(queues, run.queue)] (parenthesised to index a cast).
        queue_limit = Grouping(array_param(_BOUNDED_LIMITS, sa.Integer()))[
            sa.func.array_position(bounded_queues, r.c.queue)
        ]
        conditions.append(
            sa.or_(
                r.c.queue != sa.all_(bounded_queues),
                holds_live_reservation(t, now),
                occupancy_expression(t, now) < queue_limit,
            )
        )
    if shape.closed:
        closed = (
            sa.func.unnest(array_param(_CLOSED_QUEUES, sa.Text()), array_param(_CLOSED_KEYS, sa.Text()))
            .table_valued(sa.column("queue", sa.Text()), sa.column("concurrency_key", sa.Text()))
            .render_derived(name="c_closed")
        )
        in_closed = (
            sa.exists()
            .select_from(closed)
            .where(
                closed.c.queue == r.c.queue,
                closed.c.concurrency_key.is_not_distinct_from(r.c.concurrency_key),
            )
            .correlate(r)
        )
        # See ``outside_partitions``; a run holding a live reservation needs no free slot, so it stays.
        conditions.append(sa.or_(sa.not_(in_closed), holds_live_reservation(t, now)))
    if shape.after:
        after_at = sa.bindparam(_AFTER_AT, type_=sa.DateTime(timezone=True))
        after_id = sa.bindparam(_AFTER_ID, type_=sa.Text())
        conditions.append(sa.tuple_(r.c.available_at, r.c.id) > sa.tuple_(after_at, after_id))
    # SKIP LOCKED: a row another claimer holds is simply not ours this time. The row version
    # takes the write back to each locked row (``row_versions``).
    return (
        sa.select(sa.cast(r.c.record, sa.Text), row_version_text(r))
        .where(*conditions)
        .order_by(r.c.available_at, r.c.id)
        .limit(sa.bindparam(_LIMIT, type_=sa.Integer()))
        .with_for_update(of=r, skip_locked=True)
    )


async def _claim_candidates(
    conn: Driver,
    t: StorageTables,
    shape: ClaimShape,
    params: dict[str, Any],
    versions: dict[str, str],
) -> list[RunRecord]:
    """The locked candidates, in claim order; records each one's row version in ``versions``."""
    statement = claim_statement(t.schema, shape)
    cursor = await driver_statements.execute(conn, statement, params)
    runs: list[RunRecord] = []
    for text, version in await cursor.fetchall():
        # The stored text, parsed once (what ``ExactJson`` does on SQLAlchemy's path).
        run = run_from_record(json.loads(text))
        versions[run.id] = version
        runs.append(run)
    return runs


def bounded_queues(command: ClaimDueRuns) -> Mapping[str, int]:
    """The claimed queues with a concurrency limit: their claims check capacity under partition
    locks (``capacity``), which only run in SQLAlchemy's transaction."""
    queues = command.queues
    return {q: n for q, n in command.concurrency_limits.items() if queues is None or q in queues}


def _capacity_connection(conn: Driver) -> AsyncConnection:
    if not isinstance(conn, AsyncConnection):
        raise invariant_violation("A claim of bounded queues runs in SQLAlchemy's transaction.")
    return conn


async def claim_due_runs(conn: Driver, t: StorageTables, command: ClaimDueRuns) -> tuple[ClaimedRun, ...]:
    """On either connection; with bounded queues (``bounded_queues``) on SQLAlchemy's only."""
    limit = check_limit(command.limit)
    queues = None if command.queues is None else tuple(dict.fromkeys(command.queues))
    task_ids = None if command.task_ids is None else tuple(dict.fromkeys(command.task_ids))
    if limit == 0 or queues == () or task_ids == ():
        return ()
    env, now = command.environment.name, command.now
    bounded = bounded_queues(command)
    capacity = _capacity_connection(conn) if bounded else None
    params: dict[str, Any] = {_ENVIRONMENT: env, _NOW: now}
    if queues is not None:
        params[_QUEUES] = array_literal(queues)
    if task_ids is not None:
        params[_TASK_IDS] = array_literal(task_ids)
    if bounded:
        params[_BOUNDED_QUEUES] = array_literal(bounded)
        params[_BOUNDED_LIMITS] = array_literal(bounded.values())
    used: dict[Partition, int | None] = {}  # None: another claimer holds the partition
    closed: set[Partition] = set()  # full or busy: later rounds leave them out
    staged: list[StagedWrite] = []
    versions: dict[str, str] = {}  # run id: the row version its candidate query locked
    after: tuple[datetime, str] | None = None
    for _ in range(MAX_SCAN_ROUNDS):
        wanted = limit - len(staged)
        shape = ClaimShape(
            queues=queues is not None,
            task_ids=task_ids is not None,
            bounded=bool(bounded),
            closed=bool(closed),
            after=after is not None,
        )
        params[_LIMIT] = wanted
        if closed:
            params[_CLOSED_QUEUES] = array_literal(queue for _, queue, _ in closed)
            params[_CLOSED_KEYS] = array_literal(key for _, _, key in closed)
        if after is not None:
            params[_AFTER_AT], params[_AFTER_ID] = after
        runs = await _claim_candidates(conn, t, shape, params, versions)
        reserved = (
            set()
            if capacity is None
            else await live_reservations(
                capacity, t, env, [run.id for run in runs if run.queue in bounded], now
            )
        )
        for run in runs:
            queue_limit = bounded.get(run.queue)
            needs_slot = queue_limit is not None and run.id not in reserved
            partition = (env, run.queue, run.concurrency_key)
            if queue_limit is not None and needs_slot:
                assert capacity is not None  # a queue limit means the queue is bounded
                if partition not in used:
                    locked = await try_lock_partition(capacity, partition)
                    used[partition] = await occupancy(capacity, t, partition, now) if locked else None
                taken = used[partition]
                if taken is None or taken >= queue_limit:
                    closed.add(partition)
                    continue
            plan = command.plan(run)
            if plan is None:
                continue
            item = stage_plan(command.environment, run, plan, now)
            if needs_slot and item.takes_lease:
                used[partition] = taken = (used[partition] or 0) + 1
                if queue_limit is not None and taken >= queue_limit:
                    closed.add(partition)
            staged.append(item)
            if len(staged) >= limit:
                break
        if len(staged) >= limit or len(runs) < wanted:
            break
        after = (runs[-1].available_at, runs[-1].id)
    return await _write(conn, t, staged, versions)


async def reserve_dispatch(
    conn: AsyncConnection, t: StorageTables, command: ReserveDispatch
) -> tuple[ClaimedRun, ...]:
    limit = check_limit(command.limit)
    capacity = command.concurrency_limit
    if isinstance(capacity, bool) or not isinstance(capacity, int) or capacity < 1:
        raise validation_failed("concurrency_limit must be a positive integer.", field="concurrency_limit")
    if limit == 0:
        return ()
    env, now = command.environment.name, command.now
    expires_at = None if command.dispatch_timeout_ms is None else add_ms(now, command.dispatch_timeout_ms)
    r = t.runs
    filters = [
        r.c.queue == command.queue,
        sa.not_(holds_live_reservation(t, now)),
        occupancy_expression(t, now) < capacity,
    ]
    free: dict[Partition, int | None] = {}
    closed: set[Partition] = set()  # full or busy: later rounds leave them out
    staged: list[StagedWrite] = []
    reservations: list[dict[str, object]] = []
    after: tuple[datetime, str] | None = None
    for _ in range(MAX_SCAN_ROUNDS):
        wanted = limit - len(staged)
        runs = await _lock_candidates(
            conn,
            t,
            environment=env,
            now=now,
            limit=wanted,
            after=after,
            filters=[*filters, *outside_partitions(t, closed)],
        )
        for run in runs:
            partition = (env, run.queue, run.concurrency_key)
            if partition not in free:
                locked = await try_lock_partition(conn, partition)
                free[partition] = capacity - await occupancy(conn, t, partition, now) if locked else None
            slots = free[partition]
            if slots is None or slots <= 0:
                closed.add(partition)
                continue
            plan = command.plan(run)
            if plan is None:
                continue
            item = stage_plan(command.environment, run, plan, now)
            if item.new.status in RUNNABLE_RUN_STATUSES:
                reservations.append(
                    {
                        "environment": env,
                        "run_id": run.id,
                        "queue": run.queue,
                        "concurrency_key": run.concurrency_key,
                        "reserved_at": now,
                        "expires_at": expires_at,
                    }
                )
                free[partition] = slots - 1
                if slots == 1:
                    closed.add(partition)
            staged.append(item)
            if len(staged) >= limit:
                break
        if len(staged) >= limit or len(runs) < wanted:
            break
        after = (runs[-1].available_at, runs[-1].id)
    claimed = await _write(conn, t, staged)
    if reservations:
        q = t.queue_reservations
        upsert = pg_insert(q).values(reservations)
        await conn.execute(
            upsert.on_conflict_do_update(
                index_elements=[q.c.environment, q.c.run_id],
                set_={
                    "queue": upsert.excluded.queue,
                    "concurrency_key": upsert.excluded.concurrency_key,
                    "reserved_at": upsert.excluded.reserved_at,
                    "expires_at": upsert.excluded.expires_at,
                },
            )
        )
    return claimed


async def release_expired_reservations(
    conn: AsyncConnection, t: StorageTables, command: ReleaseExpiredReservations
) -> int:
    limit = check_limit(command.limit)
    if limit == 0:
        return 0
    q = t.queue_reservations
    env = command.environment.name
    # SKIP LOCKED: a reservation being renewed by reserve_dispatch right now is not expired any more.
    expired = (
        sa.select(q.c.run_id)
        .where(q.c.environment == env, q.c.expires_at.is_not(None), q.c.expires_at <= command.now)
        .order_by(q.c.expires_at, q.c.run_id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    result = await conn.execute(
        sa.delete(q).where(q.c.environment == env, q.c.run_id.in_(expired)).returning(q.c.run_id)
    )
    return len(result.all())
