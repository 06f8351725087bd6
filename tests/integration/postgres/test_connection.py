"""Connection strings and schema resolution: option, then ``?schema=`` (removed), then ``public``."""

from __future__ import annotations

import socket

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.values import Environment
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres import POSTGRES_STORAGE_CAPABILITIES, postgres_storage
from runlane.ports.storage import StorageAdapter
from runlane.ports.storage_commands import GetRun
from runlane.testing.clocks import ControlledClock
from runlane.testing.run_builders import create_queued_run_data
from tests.integration.postgres.helpers import migrate, scratch_schema, started_storage
from tests.support.pg_cluster import PostgresCluster

BASE = "postgresql://app:secret@127.0.0.1:5432/appdb"


def test_explicit_schema_wins_over_the_query_parameter() -> None:
    storage = postgres_storage(connection_string=f"{BASE}?schema=from_url", schema="explicit")
    assert storage.schema == "explicit"
    assert "schema" not in storage.url.query


def test_query_parameter_is_used_and_removed_from_the_url() -> None:
    storage = postgres_storage(connection_string=f"{BASE}?sslmode=disable&schema=tenant_a&application_name=x")
    assert storage.schema == "tenant_a"
    assert dict(storage.url.query) == {"sslmode": "disable", "application_name": "x"}
    assert "schema" not in storage.url.render_as_string(hide_password=False)


def test_public_is_the_default_schema() -> None:
    assert postgres_storage(connection_string=BASE).schema == "public"


@pytest.mark.parametrize(
    "url",
    [
        BASE,
        BASE.replace("postgresql://", "postgres://"),
        BASE.replace("postgresql://", "postgresql+psycopg://"),
    ],
)
def test_urls_are_normalised_to_psycopg(url: str) -> None:
    storage = postgres_storage(connection_string=url)
    assert storage.url.drivername == "postgresql+psycopg"
    assert storage.url.password == "secret"
    assert storage.url.database == "appdb"


@pytest.mark.parametrize(
    "url",
    ["", "   ", "mysql://u@h/db", "postgresql+asyncpg://u@h/db", "not a url", f"{BASE}?schema=a&schema=b"],
)
def test_unusable_connection_strings_are_configuration_invalid(url: str) -> None:
    with pytest.raises(RunlaneError) as info:
        postgres_storage(connection_string=url)
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID


def test_a_hostile_schema_in_the_query_parameter_is_validated() -> None:
    with pytest.raises(RunlaneError) as info:
        postgres_storage(connection_string=f"{BASE}?schema=pg_catalog")
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID


def test_the_adapter_reports_postgres_capabilities() -> None:
    storage = postgres_storage(connection_string=BASE)
    assert isinstance(storage, StorageAdapter)
    assert storage.name == "postgres"
    assert storage.capabilities is POSTGRES_STORAGE_CAPABILITIES
    flags = POSTGRES_STORAGE_CAPABILITIES.to_wire()
    assert flags.pop("processLocalState") is False
    assert all(value is True for value in flags.values())


async def test_the_schema_query_parameter_reaches_the_right_schema(pg_cluster: PostgresCluster) -> None:
    clock = ControlledClock()
    with scratch_schema(pg_cluster.libpq_dsn) as first, scratch_schema(pg_cluster.libpq_dsn) as second:
        migrate(pg_cluster.libpq_dsn, first)
        migrate(pg_cluster.libpq_dsn, second)
        data = create_queued_run_data("run_schema_probe", now=clock.now(), environment=Environment("e"))
        # libpq rejects unknown URL parameters, so start() succeeding proves ?schema= was removed.
        async with started_storage(f"{pg_cluster.libpq_dsn}?schema={first}", schema=None) as via_url:
            assert via_url.schema == first
            await via_url.append_run_events(data.append_command(clock.now()))
        async with started_storage(f"{pg_cluster.dsn}?schema={first}", schema=second) as explicit:
            assert await explicit.get_run(GetRun(environment=Environment("e"), run_id=data.run.id)) is None
        async with started_storage(pg_cluster.dsn, schema=first) as check:
            assert await check.get_run(GetRun(environment=Environment("e"), run_id=data.run.id)) == data.run


async def test_a_schema_name_that_needs_quoting_works_end_to_end(pg_cluster: PostgresCluster) -> None:
    hostile = 'Tenant "A"; drop table runs; --$runlane_migration_1$ %s'
    clock = ControlledClock()
    with scratch_schema(pg_cluster.libpq_dsn, hostile, create=False) as schema:
        migrate(pg_cluster.libpq_dsn, schema)
        async with started_storage(pg_cluster.dsn, schema=schema) as storage:
            data = create_queued_run_data("run_quoted", now=clock.now(), environment=Environment("e"))
            await storage.append_run_events(data.append_command(clock.now()))
            assert (
                await storage.get_run(GetRun(environment=Environment("e"), run_id="run_quoted")) == data.run
            )
        # Nothing escaped the quotes: public has no runlane tables, and the schema kept its exact name.
        import psycopg

        with psycopg.connect(pg_cluster.libpq_dsn) as conn:
            names = [
                row[0]
                for row in conn.execute("select nspname from pg_namespace where nspname = %s", (hostile,))
            ]
            stray = conn.execute("select to_regclass('public.runs')").fetchone()
        assert names == [hostile]
        assert stray == (None,)


def _closed_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


async def test_an_unreachable_server_fails_start_with_a_retryable_configuration_error() -> None:
    storage = postgres_storage(
        connection_string=f"postgresql://nobody:hidden@127.0.0.1:{_closed_port()}/db", connect_timeout=2
    )
    with pytest.raises(RunlaneError) as info:
        await storage.start()
    error = info.value
    assert error.code is ErrorCode.CONFIGURATION_INVALID
    assert error.retryable is True
    assert "cannot reach" in error.message
    assert "hidden" not in error.message, "the password must not leak into messages"
    assert error.meta is not None
    assert error.meta["reason"] == "storage_unavailable"
