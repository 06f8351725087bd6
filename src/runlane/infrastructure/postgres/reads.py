"""Operator and maintenance reads: one run, keyset pages of runs and events, due and expired runs.

Pages use keyset pagination on (sort value, id) with opaque cursors (``cursors``), served by the
(environment, created_at, id) and (environment, updated_at, id) indexes.
"""

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.cursors import (
    cursor_int,
    cursor_str,
    decode_cursor,
    encode_cursor,
    time_from_key,
    time_key,
)
from runlane.domain.pages import Page
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import RunSortField, RunStatus, SortDirection
from runlane.infrastructure.postgres.ownership import fetch_run
from runlane.infrastructure.postgres.rows import event_from_document, run_from_record
from runlane.infrastructure.postgres.schema import LEASED_STATUS_VALUES, StorageTables
from runlane.ports.storage_commands import GetRun, ListDueRuns, ListExpiredLeases, ListRunEvents, ListRuns
from runlane.ports.storage_rules import check_limit

_RUNS_CURSOR = "runs"
_EVENTS_CURSOR = "events"


async def get_run(conn: AsyncConnection, t: StorageTables, query: GetRun) -> RunRecord | None:
    return await fetch_run(conn, t, query.environment.name, query.run_id)


async def list_runs(conn: AsyncConnection, t: StorageTables, query: ListRuns) -> Page[RunRecord]:
    flt = query.filter
    env = flt.environment.name
    sort_by = RunSortField(query.sort_by)
    direction = SortDirection(query.sort_direction)
    limit = query.pagination.clamped_limit
    r = t.runs
    sort_column = r.c.created_at if sort_by is RunSortField.CREATED_AT else r.c.updated_at
    stmt = sa.select(r.c.record, sort_column.label("sort_value")).where(r.c.environment == env)
    if flt.statuses is not None:
        stmt = stmt.where(r.c.status.in_([RunStatus(s).value for s in flt.statuses]))
    if flt.task_ids is not None:
        stmt = stmt.where(r.c.task_id.in_(flt.task_ids))
    if flt.queues is not None:
        stmt = stmt.where(r.c.queue.in_(flt.queues))
    if flt.idempotency_key is not None:
        stmt = stmt.where(r.c.idempotency_key == flt.idempotency_key)
    if flt.singleton_key is not None:
        stmt = stmt.where(r.c.singleton_key == flt.singleton_key)
    if flt.created_after is not None:
        stmt = stmt.where(r.c.created_at > flt.created_after)
    if flt.created_before is not None:
        stmt = stmt.where(r.c.created_at < flt.created_before)
    descending = direction is SortDirection.DESC
    if query.pagination.cursor is not None:
        data = decode_cursor(query.pagination.cursor, _RUNS_CURSOR, s=sort_by.value, d=direction.value, e=env)
        position = sa.tuple_(time_from_key(cursor_int(data, "t")), cursor_str(data, "i"))
        key = sa.tuple_(sort_column, r.c.id)
        stmt = stmt.where(key < position if descending else key > position)
    order = (sort_column.desc(), r.c.id.desc()) if descending else (sort_column.asc(), r.c.id.asc())
    rows = (await conn.execute(stmt.order_by(*order).limit(limit + 1))).all()
    runs = [run_from_record(row.record) for row in rows[:limit]]
    next_cursor = None
    if len(rows) > limit:
        last = runs[-1]
        value = last.created_at if sort_by is RunSortField.CREATED_AT else last.updated_at
        next_cursor = encode_cursor(
            _RUNS_CURSOR, s=sort_by.value, d=direction.value, e=env, t=time_key(value), i=last.id
        )
    return Page(data=tuple(runs), next_cursor=next_cursor)


async def list_run_events(
    conn: AsyncConnection, t: StorageTables, query: ListRunEvents
) -> Page[RunEventRecord]:
    env = query.environment.name
    direction = SortDirection(query.sort_direction)
    limit = query.pagination.clamped_limit
    e = t.run_events
    stmt = sa.select(e.c.event).where(e.c.environment == env, e.c.run_id == query.run_id)
    descending = direction is SortDirection.DESC
    if query.pagination.cursor is not None:
        data = decode_cursor(
            query.pagination.cursor, _EVENTS_CURSOR, r=query.run_id, d=direction.value, e=env
        )
        after = cursor_int(data, "q")
        stmt = stmt.where(e.c.sequence < after if descending else e.c.sequence > after)
    order = e.c.sequence.desc() if descending else e.c.sequence.asc()
    documents = (await conn.execute(stmt.order_by(order).limit(limit + 1))).scalars().all()
    events = [event_from_document(document) for document in documents[:limit]]
    next_cursor = None
    if len(documents) > limit:
        next_cursor = encode_cursor(
            _EVENTS_CURSOR, r=query.run_id, d=direction.value, e=env, q=events[-1].sequence
        )
    return Page(data=tuple(events), next_cursor=next_cursor)


async def list_due_runs(conn: AsyncConnection, t: StorageTables, query: ListDueRuns) -> tuple[RunRecord, ...]:
    limit = check_limit(query.limit)
    if limit == 0 or not query.statuses or query.queues == ():
        return ()
    r = t.runs
    stmt = sa.select(r.c.record).where(
        r.c.environment == query.environment.name,
        r.c.status.in_([RunStatus(s).value for s in query.statuses]),
        r.c.available_at <= query.now,
    )
    if query.queues is not None:
        stmt = stmt.where(r.c.queue.in_(query.queues))
    if query.exclude_queues:
        stmt = stmt.where(r.c.queue.not_in(query.exclude_queues))
    records = (await conn.execute(stmt.order_by(r.c.available_at, r.c.id).limit(limit))).scalars().all()
    return tuple(run_from_record(record) for record in records)


def expired_leases_statement(t: StorageTables, environment: str, now: datetime, limit: int) -> sa.Select[Any]:
    """Leased runs whose lease expired, oldest first (partial index ``ix_runs_lease_expiry``)."""
    r = t.runs
    return (
        sa.select(r.c.record)
        .where(
            r.c.environment == environment,
            r.c.status.in_(LEASED_STATUS_VALUES),
            r.c.lease_expires_at <= now,
        )
        .order_by(r.c.lease_expires_at, r.c.id)
        .limit(limit)
    )


async def list_expired_leases(
    conn: AsyncConnection, t: StorageTables, query: ListExpiredLeases
) -> tuple[RunRecord, ...]:
    limit = check_limit(query.limit)
    if limit == 0:
        return ()
    records = (
        await conn.execute(expired_leases_statement(t, query.environment.name, query.now, limit))
    ).scalars()
    return tuple(run_from_record(record) for record in records.all())
