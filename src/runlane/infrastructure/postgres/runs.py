"""Compare-and-append of one run, and lease heartbeats.

A create inserts the run row (a duplicate id is a ``sequence`` conflict); any later append is
``UPDATE runs ... WHERE environment = :env AND id = :id AND event_sequence = :expected``, and zero
updated rows is a ``sequence`` conflict. Events, outbox rows, ownership rows, the schedule
occurrence and the capacity check happen in the same transaction, so a conflict writes nothing.
"""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.errors import invariant_violation, storage_conflict
from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import (
    RunEventType,
    ScheduleOccurrenceStatus,
    StorageConflictKind,
)
from runlane.infrastructure.postgres.bulk import write_children
from runlane.infrastructure.postgres.capacity import live_reservations, lock_partition, occupancy
from runlane.infrastructure.postgres.ownership import OwnerKey, take_idempotency_key, take_singleton_key
from runlane.infrastructure.postgres.rows import run_from_record, run_values
from runlane.infrastructure.postgres.schema import StorageTables
from runlane.infrastructure.postgres.writes import StagedWrite, stage_command
from runlane.ports.storage_commands import AppendRunEvents, AppendRunEventsResult, HeartbeatRunLease
from runlane.ports.storage_rules import heartbeated, sequence_conflict


class ConvergedOnOwner(Exception):
    """Raised inside the transaction so it rolls back: a create met a live owner and writes nothing."""

    def __init__(self, owner: RunRecord) -> None:
        super().__init__(owner.id)
        self.owner = owner


async def _current_sequence(
    conn: AsyncConnection, t: StorageTables, environment: str, run_id: str
) -> int | None:
    r = t.runs
    result = await conn.execute(
        sa.select(r.c.event_sequence).where(r.c.environment == environment, r.c.id == run_id)
    )
    return result.scalar_one_or_none()


async def append_run_events(
    conn: AsyncConnection, t: StorageTables, command: AppendRunEvents, *, notify: bool = False
) -> AppendRunEventsResult:
    """``notify``: an eager append sends its wakeups in this transaction (``commit_wakeups``)."""
    if command.expected_sequence == 0:
        staged = await _create(conn, t, command, notify)
    else:
        staged = await _update(conn, t, command, notify)
    if command.concurrency_limit is not None and staged.takes_lease:
        await _check_capacity(conn, t, staged, command.concurrency_limit, command)
    await write_children(conn, t, [staged])
    return staged.result()


async def _create(
    conn: AsyncConnection, t: StorageTables, command: AppendRunEvents, notify: bool
) -> StagedWrite:
    env = command.environment.name
    created = command.events[0] if command.events else None
    if created is None or created.type is not RunEventType.CREATED:
        raise invariant_violation("A new run's first event must be run.created.", run_id=command.run_id)
    assert created.task_id is not None
    # Keys first, as the contract orders it: a live owner wins even over a duplicate run id.
    owner = None
    if created.idempotency_key is not None:
        key = OwnerKey(env, created.task_id, created.idempotency_key)
        owner = await take_idempotency_key(conn, t, key, command.run_id, command.now)
    if owner is None and created.singleton_key is not None:
        owner = await take_singleton_key(
            conn, t, OwnerKey(env, created.task_id, created.singleton_key), command.run_id
        )
    if owner is not None:
        raise ConvergedOnOwner(owner)
    staged = stage_command(command, notify=notify)
    inserted = await conn.execute(
        pg_insert(t.runs).values(run_values(staged.new)).on_conflict_do_nothing().returning(t.runs.c.id)
    )
    if inserted.first() is None:
        raise sequence_conflict(command.run_id, 0, await _current_sequence(conn, t, env, command.run_id))
    claim = command.schedule_occurrence
    if claim is not None:
        o = t.schedule_occurrences
        taken = await conn.execute(
            pg_insert(o)
            .values(
                environment=env,
                occurrence_id=claim.occurrence_id,
                schedule_id=claim.schedule_id,
                task_id=claim.task_id,
                fire_time=claim.fire_time,
                status=ScheduleOccurrenceStatus.MATERIALIZED.value,
                run_id=command.run_id,
                claimed_at=command.now,
            )
            .on_conflict_do_nothing()
            .returning(o.c.occurrence_id)
        )
        if taken.first() is None:
            raise storage_conflict(
                StorageConflictKind.SCHEDULE_OCCURRENCE,
                f"Schedule occurrence {claim.occurrence_id!r} was already claimed.",
                {"schedule_id": claim.schedule_id, "occurrence_id": claim.occurrence_id},
            )
    return staged


async def _update(
    conn: AsyncConnection, t: StorageTables, command: AppendRunEvents, notify: bool
) -> StagedWrite:
    env = command.environment.name
    staged = stage_command(command, notify=notify)
    r = t.runs
    values = run_values(staged.new)
    del values["environment"], values["id"]
    result = await conn.execute(
        sa.update(r)
        .where(
            r.c.environment == env, r.c.id == command.run_id, r.c.event_sequence == command.expected_sequence
        )
        .values(values)
    )
    if result.rowcount != 1:
        actual = await _current_sequence(conn, t, env, command.run_id)
        raise sequence_conflict(command.run_id, command.expected_sequence, actual)
    return staged


async def _check_capacity(
    conn: AsyncConnection, t: StorageTables, staged: StagedWrite, limit: int, command: AppendRunEvents
) -> None:
    """The run's row is already locked (inserted or updated); now its partition, then count."""
    run = staged.new
    env = command.environment.name
    await lock_partition(conn, (env, run.queue, run.concurrency_key))
    if not staged.is_create and await live_reservations(conn, t, env, [run.id], command.now):
        return
    used = await occupancy(conn, t, (env, run.queue, run.concurrency_key), command.now, excluding_run=run.id)
    if used >= limit:
        raise storage_conflict(
            StorageConflictKind.QUEUE_CAPACITY,
            f"Queue {run.queue!r} has no free slot (limit {limit}).",
            {"run_id": run.id, "queue": run.queue},
        )


async def heartbeat_run_lease(
    conn: AsyncConnection, t: StorageTables, command: HeartbeatRunLease
) -> RunRecord:
    env = command.environment.name
    r = t.runs
    locked = await conn.execute(
        sa.select(r.c.record).where(r.c.environment == env, r.c.id == command.run_id).with_for_update()
    )
    record = locked.scalar_one_or_none()
    updated = heartbeated(None if record is None else run_from_record(record), command)
    values = run_values(updated)
    await conn.execute(
        sa.update(r)
        .where(r.c.environment == env, r.c.id == updated.id)
        .values(record=values["record"], lease_expires_at=values["lease_expires_at"])
    )
    return updated
