"""Single-statement writes run on the storage's psycopg pool (``driver_pool``), configured like the engine."""

from __future__ import annotations

import uuid

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode, RunStatus
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment
from tests.integration.postgres.helpers import started_storage
from tests.support.pg_cluster import PostgresCluster


async def test_its_connections_carry_the_engines_settings_and_serve_plain_appends(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    name = f"runlane-pool-{uuid.uuid4().hex[:8]}"
    async with started_storage(
        pg_cluster.dsn,
        pg_migrated_schema,
        application_name=name,
        synchronous_commit="local",  # the test cluster runs with "off"
        connect_args={"options": "-c statement_timeout=12345"},
    ) as storage:
        pool = storage.driver_pool
        kit = StorageKit(storage, unique_environment("pool"), ControlledClock())
        before = pool.get_stats().get("requests_num", 0)
        created = (await kit.create()).run
        assert pool.get_stats()["requests_num"] == before + 1  # the create went through the pool
        assert (await kit.require(created.id)).status is RunStatus.QUEUED
        async with pool.connection() as conn:
            assert conn.autocommit is True  # one statement, no BEGIN round trip
            cursor = await conn.execute(
                "select current_setting('synchronous_commit'), current_setting('application_name'), "
                "current_setting('statement_timeout'), current_setting('search_path')"
            )
            assert await cursor.fetchone() == ("local", name, "12345ms", '"$user", public')
        async with storage.engine.connect() as engine_conn:  # the other pool gets the same setting
            level = await engine_conn.exec_driver_sql("select current_setting('synchronous_commit')")
            assert level.scalar_one() == "local"


async def test_a_busy_pool_overflows_then_fails_a_write_as_retryable_and_writes_nothing(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    async with started_storage(
        pg_cluster.dsn, pg_migrated_schema, pool_size=1, max_overflow=1, pool_timeout=0.3
    ) as storage:
        kit = StorageKit(storage, unique_environment("overflow"), ControlledClock())
        async with storage.driver_pool.connection():  # the pool's only connection
            created = (await kit.create()).run  # on an overflow connection, closed afterwards
        assert (await kit.require(created.id)).status is RunStatus.QUEUED
        assert storage.driver_pool.get_stats()["pool_size"] == 1
    async with started_storage(
        pg_cluster.dsn, pg_migrated_schema, pool_size=1, max_overflow=0, pool_timeout=0.3
    ) as storage:
        kit = StorageKit(storage, unique_environment("busy"), ControlledClock())
        run_id = kit.new_id()
        async with storage.driver_pool.connection():  # its only connection, and no overflow
            with pytest.raises(RunlaneError) as info:
                await kit.create(run_id=run_id)
        assert info.value.code is ErrorCode.INTERNAL_ERROR
        assert info.value.retryable is True
        assert info.value.meta is not None
        assert info.value.meta["reason"] == "storage_unavailable"
        assert info.value.meta["operation"] == "append_run_events"
        assert await kit.get(run_id) is None
        assert (await kit.create(run_id=run_id)).run.id == run_id  # the connection is back


async def test_a_closed_storage_refuses_single_statement_writes(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    async with started_storage(pg_cluster.dsn, pg_migrated_schema) as storage:
        kit = StorageKit(storage, unique_environment("closed"), ControlledClock())
        await kit.create()
    with pytest.raises(RunlaneError) as pool:
        _ = storage.driver_pool
    with pytest.raises(RunlaneError) as write:
        await kit.create()
    for info in (pool, write):
        assert info.value.code is ErrorCode.CONFIGURATION_INVALID
        assert "not started" in info.value.message
