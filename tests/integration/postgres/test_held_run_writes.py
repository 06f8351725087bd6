"""A claim's write reaches the runs its candidate query locked by row version (``row_versions``).

The version is only a faster way back to a held row: the write still matches id and expected
sequence, so a version that does not hold the run updates nothing, the claim fails loudly, and
no other row is written. Claims from ``claims.HELD_WRITE_MIN_RUNS`` runs write this way, with a
statement the server plans on every execution; smaller ones keep the prepared by-id write.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import psycopg
import pytest
from psycopg import sql

from runlane.domain.errors import RunlaneError
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import ErrorCode, RunStatus
from runlane.infrastructure.postgres import PostgresStorage, bulk, claims
from runlane.infrastructure.postgres.writes import StagedWrite, stage_command
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment
from runlane.testing.run_builders import create_queued_run_data, delivery_requested_event, next_run_data
from tests.integration.postgres.helpers import started_storage
from tests.integration.postgres.statement_recorder import recorded_statements as record_statements
from tests.support.pg_cluster import PostgresCluster


@pytest.fixture
def kit(pg_storage: PostgresStorage) -> StorageKit:
    return StorageKit(storage=pg_storage, environment=unique_environment("held"), clock=ControlledClock())


def _next_write(kit: StorageKit, run: RunRecord) -> StagedWrite:
    event = delivery_requested_event(run, now=kit.clock.now())
    return stage_command(next_run_data(run, event).append_command(kit.clock.now()))


async def _held_write(
    kit: StorageKit, pg_cluster: PostgresCluster, runs: list[RunRecord], versions_of: dict[str, str] | None
) -> None:
    """Lock ``runs`` as a claim does, then write them by the versions ``versions_of`` names
    (``None``: the versions the lock returned), in the same transaction."""
    storage = kit.storage
    assert isinstance(storage, PostgresStorage)
    table = sql.Identifier(storage.tables.schema, "runs")
    async with await psycopg.AsyncConnection.connect(pg_cluster.libpq_dsn) as conn:
        cursor = await conn.execute(
            sql.SQL(
                "SELECT id, ctid::text FROM {} WHERE environment = %s AND id = ANY(%s) FOR UPDATE"
            ).format(table),
            (kit.environment.name, [run.id for run in runs]),
        )
        locked: dict[str, str] = dict(await cursor.fetchall())
        assert set(locked) == {run.id for run in runs}
        versions = (
            locked
            if versions_of is None
            else {run_id: locked[other] for run_id, other in versions_of.items()}
        )
        await bulk.update_locked_runs(conn, storage.tables, [_next_write(kit, run) for run in runs], versions)


async def test_a_held_write_reaches_each_run_by_the_version_its_lock_returned(
    kit: StorageKit, pg_cluster: PostgresCluster
) -> None:
    first = (await kit.create(with_delivery=False)).run
    second = (await kit.create(with_delivery=False)).run
    await _held_write(kit, pg_cluster, [first, second], None)
    for run in (first, second):
        stored = await kit.require(run.id)
        assert stored.event_sequence == run.event_sequence + 1
        assert [event.type for event in await kit.events(run.id)][-1] == "run.delivery_requested"


async def test_a_version_that_holds_another_run_writes_nothing_and_fails_loudly(
    kit: StorageKit, pg_cluster: PostgresCluster
) -> None:
    first = (await kit.create(with_delivery=False)).run
    second = (await kit.create(with_delivery=False)).run
    swapped = {first.id: second.id, second.id: first.id}
    with pytest.raises(RunlaneError) as raised:
        await _held_write(kit, pg_cluster, [first, second], swapped)
    assert raised.value.code is ErrorCode.INVARIANT_VIOLATION
    assert raised.value.meta == {"run_ids": sorted([first.id, second.id])}
    for run in (first, second):
        stored = await kit.require(run.id)
        assert (stored.event_sequence, stored.status) == (run.event_sequence, RunStatus.QUEUED)
        assert len(await kit.events(run.id)) == run.event_sequence


def test_row_versions_go_with_and_only_with_a_held_write() -> None:
    clock = ControlledClock()
    run = create_queued_run_data("run_a", now=clock.now(), environment=Environment("held")).run
    event = delivery_requested_event(run, now=clock.now())
    staged = [stage_command(next_run_data(run, event).append_command(clock.now()))]
    for mode, versions in ((bulk.RunWrite.HELD, None), (bulk.RunWrite.UPDATE, {"run_a": "(0,1)"})):
        with pytest.raises(RunlaneError, match="Row versions go with"):
            bulk.staged_statement("public", staged, mode, versions)
    with pytest.raises(RunlaneError, match="no row version") as raised:
        bulk.staged_statement("public", staged, bulk.RunWrite.HELD, {"run_b": "(0,1)"})
    assert raised.value.meta == {"run_ids": ["run_a"]}


def test_an_update_of_one_run_binds_scalars_and_of_more_runs_arrays_behind_the_lock() -> None:
    clock = ControlledClock()
    env = Environment("one")
    staged = []
    for run_id in ("run_a", "run_b"):
        run = create_queued_run_data(run_id, now=clock.now(), environment=env).run
        event = delivery_requested_event(run, now=clock.now())
        staged.append(stage_command(next_run_data(run, event).append_command(clock.now())))
    one, one_params = bulk.staged_statement("public", staged[:1], bulk.RunWrite.UPDATE)
    two, two_params = bulk.staged_statement("public", staged, bulk.RunWrite.UPDATE)
    assert "AS w_expected) AS r WHERE" in str(one) and "w_locked" not in str(one)
    assert one_params["r_id"] == "run_a" and one_params["r_w_expected"] == staged[0].expected_sequence
    assert "w_locked" in str(two) and two_params["r_id"] == '{"run_a","run_b"}'
    with pytest.raises(RunlaneError, match="exactly one run"):
        bulk.staged_statement("public", staged, bulk.RunWrite.ONE)


def test_a_create_of_one_run_with_one_outbox_row_binds_scalars_and_anything_else_arrays() -> None:
    clock = ControlledClock()
    env = Environment("one")

    def staged(run_id: str, **options: Any) -> StagedWrite:
        data = create_queued_run_data(run_id, now=clock.now(), environment=env, **options)
        return stage_command(data.append_command(clock.now()))

    queued = [staged("run_a"), staged("run_b")]
    no_outbox = staged("run_c", with_delivery=False)
    one, one_params = bulk.staged_statement("public", queued[:1], bulk.RunWrite.CREATE)
    assert "AS record) AS r" in str(one) and "AS published_at) AS o" in str(one)
    assert (one_params["r_id"], one_params["o_run_id"]) == ("run_a", "run_a")
    assert one_params["e_run_id"] == '{"run_a","run_a"}'  # two events: still one array per column
    for staged in (queued, [no_outbox]):
        many, many_params = bulk.staged_statement("public", staged, bulk.RunWrite.CREATE)
        assert "unnest" in str(many) and "AS record) AS r" not in str(many)
        assert many_params["r_id"].startswith("{")
    with pytest.raises(RunlaneError, match="exactly one run"):
        bulk.staged_statement("public", queued, bulk.RunWrite.CREATE_ONE)
    with pytest.raises(RunlaneError, match="exactly one outbox row"):
        bulk.staged_statement("public", [no_outbox], bulk.RunWrite.CREATE_ONE)


async def test_large_claims_write_by_version_unprepared_and_small_ones_by_id_prepared(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    big = claims.HELD_WRITE_MIN_RUNS
    rounds = 8  # past psycopg's prepare_threshold (5): a prepared statement would be there by now
    async with started_storage(
        pg_cluster.dsn, pg_migrated_schema, pool_size=1, max_overflow=0, pool_pre_ping=False
    ) as storage:
        kit = StorageKit(
            storage=storage, environment=unique_environment("held_prep"), clock=ControlledClock()
        )
        created = [(await kit.create(with_delivery=False)).run for _ in range(rounds * (big + 1))]
        claimed: list[str] = []
        with record_statements(storage.engine) as sent:
            for _ in range(rounds):
                claimed += [item.run.id for item in await storage.claim_due_runs(kit.claim_due(limit=big))]
                claimed += [item.run.id for item in await storage.claim_due_runs(kit.claim_due(limit=1))]
        assert sorted(claimed) == sorted(run.id for run in created)
        held = [text for text in sent if "UPDATE" in text and ".ctid = " in text]
        assert len(held) == rounds, sent  # each large claim wrote by version, each small one did not
        async with storage.driver_pool.connection() as driver:
            cursor = await driver.execute("SELECT statement FROM pg_prepared_statements")
            prepared = [text for (text,) in await cursor.fetchall()]
    updates = [text for text in prepared if "UPDATE" in text and ".runs SET" in text]
    assert updates, prepared
    assert all("ctid" not in text for text in updates), updates  # the held write: never prepared
    # The one-run claims' write: by id, its values one row of scalar parameters (``RunWrite.ONE``).
    assert any("AS w_expected) AS r WHERE" in text for text in updates), updates


async def _until_waiting(
    observer: psycopg.AsyncConnection[Any], waiter: psycopg.AsyncConnection[Any]
) -> None:
    """Until ``waiter`` waits for a lock (bounded)."""
    for _ in range(200):
        cursor = await observer.execute(
            "SELECT count(*) FROM pg_locks WHERE pid = %s AND NOT granted", (waiter.info.backend_pid,)
        )
        row = await cursor.fetchone()
        if row is not None and row[0]:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the connection never waited for the row lock")


@asynccontextmanager
async def _racing_an_eventless_update(
    kit: StorageKit, pg_cluster: PostgresCluster, query: sql.SQL
) -> AsyncIterator[tuple[RunRecord, psycopg.AsyncConnection[Any], list[tuple[Any, ...]]]]:
    """A run, and ``query`` run on a connection of its own while another holds an uncommitted
    update of the run's row that makes no event (as a heartbeat does); ``query`` has ``{t}`` for the
    runs table and ``%s`` for the environment and run id. Yields once that update has committed
    and ``query`` has returned: the run, ``query``'s connection (its transaction still open) and
    its rows."""
    storage = kit.storage
    assert isinstance(storage, PostgresStorage)
    run = (await kit.create(with_delivery=False)).run
    table = sql.Identifier(storage.tables.schema, "runs")
    key = (kit.environment.name, run.id)
    dsn = pg_cluster.libpq_dsn
    async with (
        await psycopg.AsyncConnection.connect(dsn) as other,
        await psycopg.AsyncConnection.connect(dsn) as conn,
    ):
        eventless = sql.SQL("UPDATE {t} SET lease_expires_at = now() WHERE environment = %s AND id = %s")
        await other.execute(eventless.format(t=table), key)
        running = asyncio.create_task(conn.execute(query.format(t=table), key))
        await _until_waiting(other, conn)
        await other.commit()
        rows = await (await running).fetchall()
        yield run, conn, rows


async def test_a_version_locked_after_a_concurrent_update_is_the_current_one(
    kit: StorageKit, pg_cluster: PostgresCluster
) -> None:
    """What the held write relies on: a lock that finds its row updated by a transaction that
    committed meanwhile returns the newest version (Postgres rechecks and locks that one), and a
    later statement of the same transaction reaches the row by it."""
    storage = kit.storage
    assert isinstance(storage, PostgresStorage)
    lock = sql.SQL("SELECT ctid::text FROM {t} WHERE environment = %s AND id = %s FOR UPDATE")
    async with _racing_an_eventless_update(kit, pg_cluster, lock) as (run, claimer, rows):
        [(version,)] = rows
        table = sql.Identifier(storage.tables.schema, "runs")
        current = await (
            await claimer.execute(
                sql.SQL("SELECT ctid::text FROM {} WHERE environment = %s AND id = %s").format(table),
                (kit.environment.name, run.id),
            )
        ).fetchone()
        assert current == (version,)
        await bulk.update_locked_runs(claimer, storage.tables, [_next_write(kit, run)], {run.id: version})
        await claimer.commit()
    stored = await kit.require(run.id)
    assert stored.event_sequence == run.event_sequence + 1


async def test_one_statement_that_locks_and_updates_by_version_loses_to_a_concurrent_update(
    kit: StorageKit, pg_cluster: PostgresCluster
) -> None:
    """Why only claims (rows held since an earlier statement) write by version: in one statement,
    the version the lock returns after waiting is newer than the statement's snapshot, so the
    update finds nothing. An outcome batch (one statement) must win after a heartbeat, which
    changes the row without an event, so it keeps the by-id update."""
    one_statement = sql.SQL(
        "WITH held AS (SELECT ctid AS version FROM {t} WHERE environment = %s AND id = %s FOR UPDATE)"
        " UPDATE {t} SET lease_expires_at = NULL FROM held WHERE {t}.ctid = held.version RETURNING {t}.id"
    )
    async with _racing_an_eventless_update(kit, pg_cluster, one_statement) as (_, writer, rows):
        assert rows == []
        await writer.rollback()
