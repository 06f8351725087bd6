"""Idempotency and singleton ownership rows: who holds a (environment, task, key).

A row names the run that last took the key; whether that run still owns it is judged from its
current record at the command's ``now`` (``owner_is_retained`` for idempotency, "still active" for
singletons), so rows never need a sweep. Taking a key is ``INSERT ... ON CONFLICT DO NOTHING``
(which waits for a concurrent uncommitted insert of the same key), then ``SELECT ... FOR UPDATE``
of the existing row: concurrent duplicate creates serialise on the row and converge on one run.
"""

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.errors import storage_conflict
from runlane.domain.idempotency import owner_is_retained
from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import StorageConflictKind
from runlane.infrastructure.postgres.rows import run_from_record
from runlane.infrastructure.postgres.schema import StorageTables

# A key row can vanish between our insert attempt and our lock (reset, pruning): try again, boundedly.
_TAKE_ATTEMPTS = 5


@dataclass(frozen=True, slots=True)
class OwnerKey:
    environment: str
    task_id: str
    key: str

    @property
    def digest(self) -> bytes:
        """SHA-256 of the key: the primary key column, so keys of any length fit a btree."""
        return hashlib.sha256(self.key.encode("utf-8")).digest()

    def where(self, table: sa.Table) -> tuple[sa.ColumnElement[bool], ...]:
        return (
            table.c.environment == self.environment,
            table.c.task_id == self.task_id,
            table.c.key_digest == self.digest,
        )


def retains_idempotency_key(run: RunRecord, now: datetime) -> bool:
    return owner_is_retained(
        status=run.status, created_at=run.created_at, ttl=run.idempotency_key_ttl, now=now
    )


def _is_active(run: RunRecord) -> bool:
    return run.is_active


async def fetch_run(
    conn: AsyncConnection, t: StorageTables, environment: str, run_id: str
) -> RunRecord | None:
    r = t.runs
    result = await conn.execute(sa.select(r.c.record).where(r.c.environment == environment, r.c.id == run_id))
    record = result.scalar_one_or_none()
    return None if record is None else run_from_record(record)


async def _take_or_find_owner(
    conn: AsyncConnection,
    table: sa.Table,
    key_column: str,
    owner: OwnerKey,
    run_id: str,
    t: StorageTables,
    is_live: Callable[[RunRecord], bool],
    kind: StorageConflictKind,
) -> RunRecord | None:
    """Make ``run_id`` the owner of ``owner`` and return ``None``, or return the live owner."""
    where = owner.where(table)
    for _ in range(_TAKE_ATTEMPTS):
        inserted = await conn.execute(
            pg_insert(table)
            .values(
                environment=owner.environment,
                task_id=owner.task_id,
                key_digest=owner.digest,
                run_id=run_id,
                **{key_column: owner.key},
            )
            .on_conflict_do_nothing()
            .returning(table.c.run_id)
        )
        if inserted.first() is not None:
            return None
        locked = await conn.execute(sa.select(table.c.run_id).where(*where).with_for_update())
        owner_id = locked.scalar_one_or_none()
        if owner_id is None:
            continue
        current = await fetch_run(conn, t, owner.environment, owner_id)
        if current is not None and is_live(current):
            return current
        await conn.execute(sa.update(table).where(*where).values(run_id=run_id))
        return None
    raise storage_conflict(kind, "Ownership of the key kept changing; try again.", {"key": owner.key})


async def take_idempotency_key(
    conn: AsyncConnection, t: StorageTables, owner: OwnerKey, run_id: str, now: datetime
) -> RunRecord | None:
    return await _take_or_find_owner(
        conn,
        t.idempotency_owners,
        "idempotency_key",
        owner,
        run_id,
        t,
        lambda run: retains_idempotency_key(run, now),
        StorageConflictKind.IDEMPOTENCY_OWNER,
    )


async def take_singleton_key(
    conn: AsyncConnection, t: StorageTables, owner: OwnerKey, run_id: str
) -> RunRecord | None:
    return await _take_or_find_owner(
        conn,
        t.singleton_owners,
        "singleton_key",
        owner,
        run_id,
        t,
        _is_active,
        StorageConflictKind.SINGLETON_OWNER,
    )


async def find_idempotency_owner(
    conn: AsyncConnection, t: StorageTables, owner: OwnerKey, now: datetime
) -> RunRecord | None:
    o, r = t.idempotency_owners, t.runs
    result = await conn.execute(
        sa.select(r.c.record)
        .select_from(o.join(r, sa.and_(r.c.environment == o.c.environment, r.c.id == o.c.run_id)))
        .where(*owner.where(o))
    )
    record = result.scalar_one_or_none()
    if record is None:
        return None
    run = run_from_record(record)
    return run if retains_idempotency_key(run, now) else None


async def reset_idempotency_key(
    conn: AsyncConnection, t: StorageTables, owner: OwnerKey, now: datetime
) -> bool:
    """Drop the key row unless its owner is active; ``True`` when a retained owner was released."""
    o = t.idempotency_owners
    where = owner.where(o)
    locked = await conn.execute(sa.select(o.c.run_id).where(*where).with_for_update())
    owner_id = locked.scalar_one_or_none()
    if owner_id is None:
        return False
    current = await fetch_run(conn, t, owner.environment, owner_id)
    if current is not None and current.is_active:
        raise storage_conflict(
            StorageConflictKind.IDEMPOTENCY_OWNER,
            f"Idempotency key is owned by active run {current.id}; it cannot be reset.",
            {"run_id": current.id},
        )
    await conn.execute(sa.delete(o).where(*where))
    return current is not None and retains_idempotency_key(current, now)
