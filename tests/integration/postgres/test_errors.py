"""Driver failures become classified ``RunlaneError``s; the pool recovers from a server restart."""

from __future__ import annotations

import uuid

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql
from sqlalchemy import exc as sa_exc

from runlane.domain.errors import RunlaneError
from runlane.domain.timestamps import add_ms
from runlane.domain.vocabulary import ErrorCode, RunStatus, StorageConflictKind
from runlane.infrastructure.postgres.errors import translate_error
from runlane.ports.storage_commands import HeartbeatRunLease
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment
from tests.integration.postgres.helpers import started_storage
from tests.support.pg_cluster import PostgresCluster


async def test_the_pool_recovers_after_a_server_restart(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    async with (
        started_storage(pg_cluster.dsn, pg_migrated_schema) as socket_checked,
        started_storage(pg_cluster.dsn, pg_migrated_schema, pool_pre_ping=True) as pinging,
        started_storage(pg_cluster.dsn, pg_migrated_schema, pool_pre_ping=False) as trusting,
    ):
        clock = ControlledClock()
        checked = StorageKit(socket_checked, unique_environment("restart"), clock)
        pinged = StorageKit(pinging, checked.environment, clock)
        trusted = StorageKit(trusting, checked.environment, clock)
        run = (await checked.create()).run
        # Every pool now holds an open connection.
        assert await pinged.get(run.id) == await trusted.get(run.id) == run
        pg_cluster.restart()
        # The default socket check sees the closed connection without a round trip and replaces it.
        assert await checked.get(run.id) == run
        assert (await checked.create()).run.status is RunStatus.QUEUED
        # So does the query ping, on both pools (reads: SQLAlchemy's; single-statement writes: psycopg's).
        assert await pinged.get(run.id) == run
        assert (await pinged.create()).run.status is RunStatus.QUEUED
        # Without it the first use fails as a retryable error, and the pool heals itself.
        with pytest.raises(RunlaneError) as info:
            await trusted.get(run.id)
        assert info.value.code is ErrorCode.INTERNAL_ERROR
        assert info.value.retryable is True
        assert info.value.meta is not None
        assert info.value.meta["reason"] == "storage_unavailable"
        assert await trusted.get(run.id) == run
        with pytest.raises(RunlaneError) as write:
            await trusted.create()
        assert write.value.retryable is True
        assert (await trusted.create()).run.status is RunStatus.QUEUED


async def test_a_lock_timeout_is_a_retryable_transient_error_and_writes_nothing(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    options = {"options": "-c lock_timeout=200"}
    async with started_storage(pg_cluster.dsn, pg_migrated_schema, connect_args=options) as storage:
        kit = StorageKit(storage, unique_environment("locks"), ControlledClock())
        run = await kit.claim((await kit.create()).run)
        heartbeat = HeartbeatRunLease(
            environment=kit.environment,
            run_id=run.id,
            worker_id="worker_a",
            expected_sequence=run.event_sequence,
            heartbeat_at=kit.now,
            expires_at=add_ms(kit.now, 60_000),
        )
        table = sql.Identifier(pg_migrated_schema, "runs")
        with psycopg.connect(pg_cluster.libpq_dsn) as blocker:
            blocker.execute(sql.SQL("select 1 from {} where id = %s for update").format(table), (run.id,))
            with pytest.raises(RunlaneError) as info:
                await storage.heartbeat_run_lease(heartbeat)
            blocker.rollback()
        error = info.value
        assert error.code is ErrorCode.INTERNAL_ERROR
        assert error.retryable is True
        assert error.meta is not None
        assert error.meta["sqlstate"] == "55P03"
        assert error.meta["reason"] == "storage_transient"
        assert await kit.require(run.id) == run
        extended = await storage.heartbeat_run_lease(heartbeat)
        assert extended.lease is not None
        assert extended.lease.expires_at == heartbeat.expires_at


def test_unique_violations_become_conflicts_named_by_their_constraint(pg_cluster: PostgresCluster) -> None:
    engine = sa.create_engine(pg_cluster.dsn)
    try:
        with engine.begin() as conn:
            conn.exec_driver_sql(
                "create temporary table probe (id int constraint pk_schedule_occurrences primary key)"
            )
            conn.exec_driver_sql("insert into probe values (1)")
            with pytest.raises(sa_exc.IntegrityError) as info:
                conn.exec_driver_sql("insert into probe values (1)")
    finally:
        engine.dispose()
    error = translate_error(info.value, operation="probe")
    assert error.code is ErrorCode.STORAGE_CONFLICT
    assert error.conflict_kind is StorageConflictKind.SCHEDULE_OCCURRENCE
    assert error.retryable is True
    assert error.meta is not None
    assert error.meta["constraint"] == "pk_schedule_occurrences"


async def test_a_connection_killed_under_a_single_statement_write_fails_once_and_is_replaced(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    """Plain appends run on the storage's psycopg pool (driver_pool): a dead connection still
    surfaces as a retryable storage error, and the pool replaces every dead connection at once, so
    the next write gets a fresh one. Reads use SQLAlchemy's pool, whose connections the same kill
    ended: without a liveness check one read fails once, retryable, and that pool heals too."""
    name = f"runlane-killed-{uuid.uuid4().hex[:8]}"
    async with started_storage(
        pg_cluster.dsn, pg_migrated_schema, pool_pre_ping=False, application_name=name
    ) as storage:
        kit = StorageKit(storage, unique_environment("killed"), ControlledClock())
        first = (await kit.create()).run
        with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True) as admin:
            killed = admin.execute(
                "select count(pg_terminate_backend(pid)) from pg_stat_activity where application_name = %s",
                (name,),
            ).fetchone()
        assert killed is not None and killed[0] >= 1
        with pytest.raises(RunlaneError) as info:
            await kit.create()
        assert info.value.code is ErrorCode.INTERNAL_ERROR
        assert info.value.retryable is True
        assert info.value.meta is not None and info.value.meta["reason"] == "storage_unavailable"
        second = (await kit.create()).run
        third = (await kit.create()).run
        with pytest.raises(RunlaneError) as read:
            await kit.get(first.id)
        assert read.value.retryable is True
        assert read.value.meta is not None and read.value.meta["reason"] == "storage_unavailable"
        assert await kit.get(first.id) == first
        assert await kit.get(second.id) == second
        assert await kit.get(third.id) == third
