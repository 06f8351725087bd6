"""Bounded-queue capacity: partition locks and occupancy counts.

A partition is (environment, queue, concurrency key); its occupancy is the runs holding a lease
plus the unexpired dispatch reservations (GAPS #32). Every writer that may add occupancy takes the
partition's transaction-scoped advisory lock first and counts afterwards, in a new statement, so it
sees every commit of the writer that held the lock before it (READ COMMITTED takes a snapshot per
statement).

Lock order, to stay deadlock-free: a writer locks its run rows first, partitions second, and never
waits for a row lock while it holds a partition lock. Batch claimers (``claim_due_runs``,
``reserve_dispatch``) only *try* partition locks and skip a busy partition, as ``SKIP LOCKED`` skips
a busy row; a single append waits for its one partition.
"""

import hashlib
from collections.abc import Iterable
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.infrastructure.postgres.schema import LEASED_STATUS_VALUES, StorageTables

Partition = tuple[str, str, str | None]  # environment, queue, concurrency key
# A moment in SQL expressions: a value, or a bind parameter (statements built once, see ``claims``).
Instant = datetime | sa.ColumnElement[datetime]

# First key of every runlane advisory lock ("RLQP"), so they do not collide with an application's.
ADVISORY_LOCK_CLASS = 0x524C5150


def partition_lock_key(partition: Partition) -> int:
    """A stable signed 32-bit key: the same in every process and every Python version."""
    environment, queue, key = partition
    text = "\x1f".join((environment, queue, "" if key is None else "k" + key))
    return int.from_bytes(hashlib.blake2b(text.encode("utf-8"), digest_size=4).digest(), "big", signed=True)


async def lock_partition(conn: AsyncConnection, partition: Partition) -> None:
    await conn.execute(
        sa.select(sa.func.pg_advisory_xact_lock(ADVISORY_LOCK_CLASS, partition_lock_key(partition)))
    )


async def try_lock_partition(conn: AsyncConnection, partition: Partition) -> bool:
    result = await conn.execute(
        sa.select(sa.func.pg_try_advisory_xact_lock(ADVISORY_LOCK_CLASS, partition_lock_key(partition)))
    )
    return bool(result.scalar_one())


def _same_key(column: sa.ColumnElement[str | None], key: str | None) -> sa.ColumnElement[bool]:
    """Partition key match in the shape the md5(concurrency_key) indexes serve."""
    if key is None:
        return sa.func.md5(column).is_(None)
    return sa.and_(sa.func.md5(column) == sa.func.md5(sa.literal(key, sa.Text)), column == key)


def live_reservation(t: StorageTables, now: Instant) -> sa.ColumnElement[bool]:
    q = t.queue_reservations
    return sa.or_(q.c.expires_at.is_(None), q.c.expires_at > now)


async def occupancy(
    conn: AsyncConnection,
    t: StorageTables,
    partition: Partition,
    now: datetime,
    *,
    excluding_run: str | None = None,
) -> int:
    """Leased runs plus live reservations in ``partition`` (optionally not counting one run)."""
    environment, queue, key = partition
    r, q = t.runs, t.queue_reservations
    leased = sa.select(sa.func.count()).where(
        r.c.environment == environment,
        r.c.queue == queue,
        _same_key(r.c.concurrency_key, key),
        r.c.status.in_(LEASED_STATUS_VALUES),
    )
    reserved = sa.select(sa.func.count()).where(
        q.c.environment == environment,
        q.c.queue == queue,
        _same_key(q.c.concurrency_key, key),
        live_reservation(t, now),
    )
    if excluding_run is not None:
        leased = leased.where(r.c.id != excluding_run)
        reserved = reserved.where(q.c.run_id != excluding_run)
    result = await conn.execute(sa.select(leased.scalar_subquery() + reserved.scalar_subquery()))
    return int(result.scalar_one())


async def live_reservations(
    conn: AsyncConnection, t: StorageTables, environment: str, run_ids: Iterable[str], now: datetime
) -> set[str]:
    """Which of ``run_ids`` hold an unexpired reservation."""
    ids = list(run_ids)
    if not ids:
        return set()
    q = t.queue_reservations
    result = await conn.execute(
        sa.select(q.c.run_id).where(
            q.c.environment == environment, q.c.run_id.in_(ids), live_reservation(t, now)
        )
    )
    return set(result.scalars())


def occupancy_expression(t: StorageTables, now: Instant) -> sa.ColumnElement[int]:
    """Correlated occupancy of the outer ``runs`` row's partition (a pre-filter; recounted under lock)."""
    r = t.runs
    leased_runs = t.runs.alias("leased_runs")
    q = t.queue_reservations
    leased = (
        sa.select(sa.func.count())
        .where(
            leased_runs.c.environment == r.c.environment,
            leased_runs.c.queue == r.c.queue,
            leased_runs.c.concurrency_key.is_not_distinct_from(r.c.concurrency_key),
            # Inline constants, no expanding parameter: the claim runs this on the driver.
            leased_runs.c.status.in_([sa.literal_column(f"'{value}'") for value in LEASED_STATUS_VALUES]),
        )
        .correlate(r)
        .scalar_subquery()
    )
    reserved = (
        sa.select(sa.func.count())
        .where(
            q.c.environment == r.c.environment,
            q.c.queue == r.c.queue,
            q.c.concurrency_key.is_not_distinct_from(r.c.concurrency_key),
            live_reservation(t, now),
        )
        .correlate(r)
        .scalar_subquery()
    )
    return leased + reserved


def holds_live_reservation(t: StorageTables, now: Instant) -> sa.ColumnElement[bool]:
    r, q = t.runs, t.queue_reservations
    return (
        sa.exists()
        .where(q.c.environment == r.c.environment, q.c.run_id == r.c.id, live_reservation(t, now))
        .correlate(r)
    )
