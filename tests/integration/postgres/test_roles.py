"""The documented role split: a migrator owns the schema, the runtime role only reads and writes rows."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from urllib.parse import quote

import psycopg
import psycopg.conninfo
import pytest
from psycopg import sql

from runlane import create_runlane, queue, task
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode, OutboxMessageStatus, RunStatus
from runlane.infrastructure.lanes import create_postgres_lane
from runlane.infrastructure.postgres import (
    apply_postgres_storage_migrations,
    get_postgres_storage_grant_sql,
    get_postgres_storage_migration_sql,
)
from runlane.infrastructure.postgres.connection import resolve_connection
from runlane.infrastructure.postgres.notify_transport import PostgresNotifyTransport
from runlane.ports.storage_commands import CompleteOutboxMessages, OutboxCompletion, PruneRuns
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment
from runlane.testing.conformance.transport_suite import WakeupInbox
from tests.integration.postgres.helpers import started_storage
from tests.support.pg_cluster import PostgresCluster


@pytest.fixture(scope="module")
def roles(pg_cluster: PostgresCluster) -> Iterator[tuple[str, str, str]]:
    """(migrator, runtime role, schema): the schema is migrated by the migrator and granted to the app."""
    suffix = uuid.uuid4().hex[:8]
    migrator, app, schema = f"migrator_{suffix}", f"app {suffix}", f"runlane_{suffix}"
    with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True) as admin:
        for role in (migrator, app):
            admin.execute(sql.SQL("create role {} login").format(sql.Identifier(role)))
        admin.execute(
            sql.SQL("grant create on database {} to {}").format(
                sql.Identifier(pg_cluster.database), sql.Identifier(migrator)
            )
        )
    with psycopg.connect(_as(pg_cluster, migrator)) as conn:
        conn.execute(get_postgres_storage_migration_sql(schema))
        conn.execute(get_postgres_storage_grant_sql(app, schema))
    try:
        yield migrator, app, schema
    finally:
        with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))
            for role in (migrator, app):
                admin.execute(sql.SQL("drop owned by {}").format(sql.Identifier(role)))
                admin.execute(sql.SQL("drop role {}").format(sql.Identifier(role)))


def _as(pg: PostgresCluster, role: str, *, driver: str = "postgresql") -> str:
    """A URL that logs in as ``role`` (the test cluster trusts local TCP logins)."""
    return f"{driver}://{quote(role, safe='')}@{pg.host}:{pg.port}/{pg.database}"


async def test_the_runtime_role_runs_a_whole_lifecycle(
    pg_cluster: PostgresCluster, roles: tuple[str, str, str]
) -> None:
    _, app, schema = roles
    async with started_storage(_as(pg_cluster, app, driver="postgresql+psycopg"), schema) as storage:
        kit = StorageKit(storage, unique_environment("roles"), ControlledClock())
        created = await kit.create(idempotency_key="k", singleton_key="s")
        assert (await kit.create(idempotency_key="k")).returned_existing
        (claimed,) = await storage.claim_due_runs(kit.claim_due())
        (message,) = await storage.claim_outbox_messages(kit.claim_outbox())
        applied = await storage.complete_outbox_messages(
            CompleteOutboxMessages(
                environment=kit.environment,
                completions=(
                    OutboxCompletion(
                        id=message.id,
                        claim_token=message.claim_token or "",
                        status=OutboxMessageStatus.PUBLISHED,
                        at=kit.now,
                    ),
                ),
            )
        )
        assert applied == 1
        await kit.finish(claimed.run, RunStatus.SUCCEEDED)
        kit.clock.advance(timedelta(days=1))
        pruned = await storage.prune_runs(
            PruneRuns(
                environment=kit.environment, older_than=kit.now, statuses=(RunStatus.SUCCEEDED,), limit=10
            )
        )
        assert pruned.deleted == 1
        assert await kit.get(created.run.id) is None


async def test_the_runtime_role_cannot_change_the_schema(
    pg_cluster: PostgresCluster, roles: tuple[str, str, str]
) -> None:
    _, app, schema = roles
    with pytest.raises(RunlaneError) as info:
        await apply_postgres_storage_migrations(_as(pg_cluster, app), f"{schema}_other")
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
    with psycopg.connect(_as(pg_cluster, app)) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
        conn.execute(sql.SQL("drop table {}").format(sql.Identifier(schema, "run_events")))


def test_grant_sql_quotes_role_and_schema() -> None:
    text = get_postgres_storage_grant_sql('app"; drop role x; --', 'my "schema"')
    assert 'TO "app""; drop role x; --";' in text
    assert 'ON SCHEMA "my ""schema"""' in text
    with pytest.raises(RunlaneError):
        get_postgres_storage_grant_sql("pg_monitor")


async def test_a_role_with_a_space_listens_and_is_woken_on_the_postgres_lane(
    pg_cluster: PostgresCluster, roles: tuple[str, str, str]
) -> None:
    """The listener connects with psycopg alone (``ResolvedConnection.libpq_conninfo``): a role
    name with a space must be quoted there too (a URL rendered back to text left it raw)."""
    _, app, schema = roles
    assert " " in app
    lane = create_postgres_lane(connection_string=_as(pg_cluster, app), schema=schema)
    await lane.start()
    try:
        inbox = WakeupInbox()
        assert isinstance(lane.transport, PostgresNotifyTransport)
        await lane.transport.listen(None, inbox)
        jobs = queue("jobs", default=True)
        job = task("jobs.role", run=lambda payload, context: None, queue=jobs)
        runtime = create_runlane(lane=lane, queues=[jobs], tasks=[job], environment="roles")
        triggered = await runtime.trigger(job, {})
        assert await inbox.wait_for(lambda got: any(m.run_id == triggered.run.id for m in got), 10.0)
    finally:
        await lane.close()


def test_the_libpq_conninfo_quotes_every_part() -> None:
    resolved = resolve_connection(
        "postgresql://app%20x:p%40ss%20w@127.0.0.1:5433/my%20db?application_name=a%20b&schema=s1"
    )
    assert resolved.schema == "s1"
    assert psycopg.conninfo.conninfo_to_dict(resolved.libpq_conninfo) == {
        "host": "127.0.0.1",
        "port": "5433",
        "user": "app x",
        "password": "p@ss w",
        "dbname": "my db",
        "application_name": "a b",
    }
