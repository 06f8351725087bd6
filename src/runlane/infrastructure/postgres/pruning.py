"""Pruning: delete old terminal runs in bounded, cursor-resumable batches.

One batch locks its runs (``SELECT ... ORDER BY updated_at, id LIMIT n FOR UPDATE SKIP LOCKED``),
deletes their events and outbox rows (no foreign key, see ``schema``), then the runs; ownership
rows and reservations go with their run through ``ON DELETE CASCADE``. Nothing can add an event
or outbox row to a locked run: every such write updates the run row. Schedule occurrences stay
(a pruned once-schedule must not fire again).
"""

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
from runlane.domain.errors import validation_failed
from runlane.domain.timestamps import utc_ms
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES, RunStatus
from runlane.infrastructure.postgres.schema import StorageTables
from runlane.ports.storage_commands import PruneRuns, PruneRunsResult
from runlane.ports.storage_rules import check_limit

_PRUNE_CURSOR = "prune"


async def prune_runs(conn: AsyncConnection, t: StorageTables, command: PruneRuns) -> PruneRunsResult:
    limit = check_limit(command.limit)
    env = command.environment.name
    statuses = frozenset(RunStatus(s) for s in command.statuses)
    active = statuses - TERMINAL_RUN_STATUSES
    if active:
        raise validation_failed(
            "prune_runs deletes terminal runs only.", statuses=sorted(status.value for status in active)
        )
    r = t.runs
    stmt = sa.select(r.c.id, r.c.updated_at).where(
        r.c.environment == env,
        r.c.status.in_(sorted(s.value for s in statuses)),
        r.c.updated_at < command.older_than,
    )
    if command.cursor is not None:
        data = decode_cursor(command.cursor, _PRUNE_CURSOR, e=env)
        after = sa.tuple_(time_from_key(cursor_int(data, "t")), cursor_str(data, "i"))
        stmt = stmt.where(sa.tuple_(r.c.updated_at, r.c.id) > after)
    if limit == 0 or not statuses:
        return PruneRunsResult(deleted=0)
    # One more than the batch tells whether another batch remains; SKIP LOCKED keeps pruning off
    # the rows a writer is busy with (they are pruned on a later pass).
    stmt = stmt.order_by(r.c.updated_at, r.c.id).limit(limit + 1).with_for_update(skip_locked=True)
    chosen = (await conn.execute(stmt)).all()
    batch = chosen[:limit]
    if batch:
        ids = [row.id for row in batch]
        for child in (t.run_events, t.outbox_messages):
            await conn.execute(sa.delete(child).where(child.c.environment == env, child.c.run_id.in_(ids)))
        await conn.execute(sa.delete(r).where(r.c.environment == env, r.c.id.in_(ids)))
    next_cursor = None
    if len(chosen) > limit:
        last = batch[-1]
        next_cursor = encode_cursor(_PRUNE_CURSOR, e=env, t=time_key(utc_ms(last.updated_at)), i=last.id)
    return PruneRunsResult(deleted=len(batch), next_cursor=next_cursor)
