"""Migrations: equivalent to the tables, re-runnable, serialised, probed by ``start()``."""

from __future__ import annotations

import asyncio

import psycopg
import pytest
import sqlalchemy as sa
from psycopg import sql

from runlane.domain.errors import RunlaneError
from runlane.domain.values import Environment
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres import (
    LATEST_VERSION,
    MIGRATIONS,
    apply_postgres_storage_migrations,
    get_postgres_storage_migration_sql,
    postgres_storage,
)
from runlane.infrastructure.postgres.schema import build_tables
from runlane.ports.storage_commands import GetRun
from runlane.testing.clocks import ControlledClock
from runlane.testing.run_builders import create_queued_run_data
from tests.integration.postgres.helpers import catalog, migrate, scratch_schema, started_storage
from tests.support.pg_cluster import PostgresCluster

EXPECTED_TABLES = {
    "idempotency_owners",
    "outbox_messages",
    "queue_reservations",
    "run_events",
    "runs",
    "schema_migrations",
    "schedule_occurrences",
    "singleton_owners",
}


def _create_from_tables(pg: PostgresCluster, schema: str) -> None:
    engine = sa.create_engine(pg.dsn)
    try:
        with engine.begin() as conn:
            build_tables(schema).metadata.create_all(conn)
    finally:
        engine.dispose()


def _versions(pg: PostgresCluster, schema: str) -> list[int]:
    with psycopg.connect(pg.libpq_dsn) as conn:
        query = sql.SQL("select version from {} order by 1").format(
            sql.Identifier(schema, "schema_migrations")
        )
        return [row[0] for row in conn.execute(query)]


def _row_counts(pg: PostgresCluster, schema: str) -> dict[str, int]:
    with psycopg.connect(pg.libpq_dsn) as conn:
        return {
            table: conn.execute(
                sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(schema, table))
            ).fetchone()[0]  # type: ignore[index]
            for table in ("runs", "run_events", "outbox_messages")
        }


def test_every_migration_in_order_yields_the_catalog_of_the_tables(pg_cluster: PostgresCluster) -> None:
    with scratch_schema(pg_cluster.libpq_dsn) as migrated, scratch_schema(pg_cluster.libpq_dsn) as fresh:
        migrate(pg_cluster.libpq_dsn, migrated)
        _create_from_tables(pg_cluster, fresh)
        from_migrations = catalog(pg_cluster.libpq_dsn, migrated)
        from_tables = catalog(pg_cluster.libpq_dsn, fresh)
        assert {name for name, kind in from_migrations["tables"] if kind == "r"} == EXPECTED_TABLES
        for part in ("tables", "columns", "indexes", "constraints"):
            assert from_migrations[part] == from_tables[part], part
        assert (
            _versions(pg_cluster, migrated)
            == [m.version for m in MIGRATIONS]
            == list(range(1, LATEST_VERSION + 1))
        )


def test_the_hot_path_indexes_exist_with_their_predicates(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    indexes = {
        name: definition
        for _, name, definition in catalog(pg_cluster.libpq_dsn, pg_migrated_schema)["indexes"]
    }
    assert "(environment, queue, available_at, id) WHERE" in indexes["ix_runs_due"]
    assert "'queued'" in indexes["ix_runs_due"]
    assert "'running'" not in indexes["ix_runs_due"]
    assert "(environment, lease_expires_at, id) WHERE" in indexes["ix_runs_lease_expiry"]
    assert '(environment, available_at, "position") WHERE' in indexes["ix_outbox_messages_claim"]
    assert "(environment, created_at, id)" in indexes["ix_runs_created"]
    assert "(environment, updated_at, id)" in indexes["ix_runs_updated"]
    assert "(environment, status, updated_at, id)" in indexes["ix_runs_prune"]
    assert "UNIQUE" in indexes["uq_run_events_environment_run_id_sequence"]


def test_payload_columns_are_json_not_jsonb(pg_cluster: PostgresCluster, pg_migrated_schema: str) -> None:
    columns = catalog(pg_cluster.libpq_dsn, pg_migrated_schema)["columns"]
    types = {(table, column): data_type for table, column, _, data_type, *_ in columns}
    assert types[("runs", "record")] == "json"
    assert types[("run_events", "event")] == "json"
    assert types[("outbox_messages", "message")] == "json"


def test_the_script_is_re_runnable_and_changes_nothing_the_second_time(pg_cluster: PostgresCluster) -> None:
    with scratch_schema(pg_cluster.libpq_dsn, create=False) as schema:
        migrate(pg_cluster.libpq_dsn, schema)  # also creates the schema
        before = catalog(pg_cluster.libpq_dsn, schema)
        migrate(pg_cluster.libpq_dsn, schema)
        assert catalog(pg_cluster.libpq_dsn, schema) == before
        assert _versions(pg_cluster, schema) == list(range(1, LATEST_VERSION + 1))


async def test_version_2_drops_the_run_foreign_keys_of_events_and_outbox_rows_and_keeps_rows(
    pg_cluster: PostgresCluster,
) -> None:
    """A schema at version 1 (foreign keys in place, rows written) upgrades to the tables' catalog."""
    with (
        scratch_schema(pg_cluster.libpq_dsn, create=False) as schema,
        scratch_schema(pg_cluster.libpq_dsn) as fresh,
    ):
        migrate(pg_cluster.libpq_dsn, fresh)
        migrate(pg_cluster.libpq_dsn, schema)
        clock = ControlledClock()
        data = create_queued_run_data("run_upgraded", now=clock.now(), environment=Environment("up"))
        async with started_storage(pg_cluster.dsn, schema) as storage:
            await storage.append_run_events(data.append_command(clock.now()))
        written = _row_counts(pg_cluster, schema)
        assert written == {"runs": 1, "run_events": len(data.events), "outbox_messages": 1}
        with psycopg.connect(pg_cluster.libpq_dsn) as conn:  # back to version 1
            for table in ("run_events", "outbox_messages"):
                conn.execute(
                    sql.SQL(
                        "ALTER TABLE {} ADD CONSTRAINT {} FOREIGN KEY (environment, run_id)"
                        " REFERENCES {} (environment, id) ON DELETE CASCADE"
                    ).format(
                        sql.Identifier(schema, table),
                        sql.Identifier(f"fk_{table}_environment_run_id_runs"),
                        sql.Identifier(schema, "runs"),
                    )
                )
            migrations = sql.Identifier(schema, "schema_migrations")
            conn.execute(sql.SQL("DELETE FROM {} WHERE version > 1").format(migrations))
        before = catalog(pg_cluster.libpq_dsn, schema)["constraints"]
        assert before != catalog(pg_cluster.libpq_dsn, fresh)["constraints"]
        assert len(before) == len(catalog(pg_cluster.libpq_dsn, fresh)["constraints"]) + 2
        migrate(pg_cluster.libpq_dsn, schema)
        assert catalog(pg_cluster.libpq_dsn, schema) == catalog(pg_cluster.libpq_dsn, fresh)
        assert _versions(pg_cluster, schema) == list(range(1, LATEST_VERSION + 1))
        assert _row_counts(pg_cluster, schema) == written


async def test_apply_helper_applies_pending_versions_once_even_when_racing(
    pg_cluster: PostgresCluster,
) -> None:
    with scratch_schema(pg_cluster.libpq_dsn, create=False) as schema:
        results = await asyncio.gather(
            *(apply_postgres_storage_migrations(pg_cluster.dsn, schema) for _ in range(4))
        )
        assert sorted(results) == [[], [], [], list(range(1, LATEST_VERSION + 1))]
        assert await apply_postgres_storage_migrations(f"{pg_cluster.libpq_dsn}?schema={schema}") == []
        storage = postgres_storage(connection_string=pg_cluster.dsn, schema=schema)
        await storage.start()
        await storage.close()


async def test_apply_helper_reports_failures_as_configuration_invalid(pg_cluster: PostgresCluster) -> None:
    with pytest.raises(RunlaneError) as info:
        await apply_postgres_storage_migrations(pg_cluster.libpq_dsn_for("no_such_database"), "public")
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID


async def test_start_on_an_unmigrated_schema_fails_with_configuration_invalid(
    pg_cluster: PostgresCluster,
) -> None:
    with scratch_schema(pg_cluster.libpq_dsn) as empty:
        storage = postgres_storage(connection_string=pg_cluster.dsn, schema=empty)
        with pytest.raises(RunlaneError) as info:
            await storage.start()
    error = info.value
    assert error.code is ErrorCode.CONFIGURATION_INVALID
    assert "runs" in error.message
    assert "get_postgres_storage_migration_sql" in error.message
    assert error.meta is not None
    assert error.meta["schema"] == empty
    with pytest.raises(RunlaneError) as not_started:
        await storage.get_run(GetRun(environment=Environment(), run_id="run_1"))
    assert not_started.value.code is ErrorCode.CONFIGURATION_INVALID


async def test_start_on_a_missing_schema_fails_with_configuration_invalid(
    pg_cluster: PostgresCluster,
) -> None:
    storage = postgres_storage(connection_string=pg_cluster.dsn, schema="runlane_never_created")
    with pytest.raises(RunlaneError) as info:
        await storage.start()
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
    assert '"runlane_never_created"' in info.value.message


async def test_start_on_a_schema_behind_the_latest_migration_fails(pg_cluster: PostgresCluster) -> None:
    with scratch_schema(pg_cluster.libpq_dsn) as schema:
        migrate(pg_cluster.libpq_dsn, schema)
        with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True) as conn:
            conn.execute(sql.SQL("delete from {}").format(sql.Identifier(schema, "schema_migrations")))
        storage = postgres_storage(connection_string=pg_cluster.dsn, schema=schema)
        with pytest.raises(RunlaneError) as info:
            await storage.start()
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
    assert f"is at migration 0; this runlane needs {LATEST_VERSION}" in info.value.message


def test_the_script_quotes_the_schema_and_never_interpolates_it_raw() -> None:
    hostile = 'x"; drop schema public cascade; --'
    script = get_postgres_storage_migration_sql(hostile)
    quoted = '"x""; drop schema public cascade; --"'
    assert f"CREATE SCHEMA IF NOT EXISTS {quoted};" in script
    assert f"{quoted}.runs" in script
    assert hostile + "." not in script.replace(quoted, "")
    assert get_postgres_storage_migration_sql().count('"public".runs') >= 1


@pytest.mark.parametrize(
    "bad", ["", "pg_catalog", "PG_anything", "nul\x00byte", "tab\tname", "x" * 64, "é" * 32]
)
def test_invalid_schema_names_are_configuration_invalid(bad: str) -> None:
    with pytest.raises(RunlaneError) as info:
        get_postgres_storage_migration_sql(bad)
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
    with pytest.raises(RunlaneError) as info:
        postgres_storage(connection_string="postgresql://u@127.0.0.1/db", schema=bad)
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
