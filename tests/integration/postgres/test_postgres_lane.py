"""create_postgres_lane: Postgres storage + LISTEN/NOTIFY wakeups, on a real server.

The lane conformance suite runs with the lane's own adapters composed by ``create_lane`` (the
suite hands the factory its adapters, so it checks the composition rules with these adapters);
the tests after it check what ``create_postgres_lane`` itself promises, end to end through core.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from typing import Any

import pytest

from runlane import RunStatus, create_runlane, queue, task
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.lanes import create_postgres_lane
from runlane.infrastructure.postgres import (
    PostgresNotifyTransport,
    PostgresStorage,
    postgres_notify_transport,
    postgres_storage,
)
from runlane.infrastructure.postgres.connection import resolve_connection
from runlane.ports.lane import create_lane
from runlane.ports.storage_commands import GetRun
from runlane.testing import LaneConformance
from runlane.testing.conformance.transport_suite import WakeupInbox
from tests.integration.postgres.helpers import migrate, scratch_schema
from tests.support.pg_cluster import PostgresCluster

DSN = "postgresql://app@127.0.0.1:5432/app"


class TestPostgresLaneAdaptersConformance(LaneConformance):
    """The lane contract with the Postgres lane's adapters on a migrated schema (section 6 runs core)."""

    dsn = DSN
    schema = "runlane"

    @pytest.fixture(autouse=True)
    def _database(self, pg_cluster: PostgresCluster, pg_migrated_schema: str) -> None:
        self.dsn, self.schema = pg_cluster.dsn, pg_migrated_schema

    def make_storage(self) -> Any:
        return postgres_storage(connection_string=self.dsn, schema=self.schema)

    def make_transport(self) -> Any:
        return postgres_notify_transport(connection_string=self.dsn, schema=self.schema)

    @pytest.fixture
    def lane_factory(self) -> Any:
        return create_lane


class TestPostgresLaneInCommitWakeupsConformance(TestPostgresLaneAdaptersConformance):
    """The same contract with the storage ``create_postgres_lane`` builds: wakeups sent by the commit."""

    def make_storage(self) -> Any:
        return PostgresStorage(connection=resolve_connection(self.dsn, self.schema), wakeups_in_commit=True)


@pytest.fixture
def lane_schema(pg_cluster: PostgresCluster) -> Iterator[str]:
    with scratch_schema(pg_cluster.libpq_dsn) as schema:
        migrate(pg_cluster.libpq_dsn, schema)
        yield schema


def test_defaults_compose_postgres_storage_and_notify_transport_on_one_schema() -> None:
    lane = create_postgres_lane(connection_string=DSN + "?schema=tenant_a", pool_size=3)
    assert lane.name == "postgres"
    assert isinstance(lane.storage, PostgresStorage)
    assert isinstance(lane.transport, PostgresNotifyTransport)
    assert lane.storage.schema == lane.transport.schema == "tenant_a"
    assert lane.storage.url == lane.transport.url
    caps = lane.capabilities
    assert caps.production_durable is True
    assert caps.operator_reads is True
    assert caps.storage.durable_state is True
    assert set(caps.transport.to_wire().values()) == {False}
    assert lane.started is False


def test_options_reach_their_adapter_and_unknown_ones_are_refused() -> None:
    lane = create_postgres_lane(
        connection_string=DSN,
        schema="s1",
        name="tenant-b",
        notify_options={"name": "pg-wakeups"},
        synchronous_commit="off",
    )
    assert lane.name == "tenant-b"
    assert lane.transport.name == "pg-wakeups"
    assert lane.storage.schema == "s1"
    bad: list[dict[str, Any]] = [
        {"name": ""},
        {"name": "a:b"},
        {"worker_loop": True},
        {"notify_options": {"pool_size": 1, "poll": True}},
        {"notify_options": "fast"},
        {"synchronous_commit": "sometimes"},
        {"pool_size": 0},
        {"schema": "pg_catalog"},
    ]
    for options in bad:
        with pytest.raises(RunlaneError) as info:
            create_postgres_lane(connection_string=DSN, **options)
        assert info.value.code is ErrorCode.CONFIGURATION_INVALID, options
    with pytest.raises(RunlaneError) as missing:
        create_postgres_lane(connection_string="")
    assert missing.value.code is ErrorCode.CONFIGURATION_INVALID


async def test_the_lane_starts_publishes_to_listeners_and_closes(
    pg_cluster: PostgresCluster, lane_schema: str
) -> None:
    lane = create_postgres_lane(connection_string=pg_cluster.dsn, schema=lane_schema)
    await lane.start()
    try:
        transport = lane.transport
        assert isinstance(transport, PostgresNotifyTransport)
        inbox = WakeupInbox()
        await transport.listen(None, inbox)
        emails = queue("emails", default=True)
        job = task("emails.send", run=lambda payload, context: None, queue=emails)
        runtime = create_runlane(lane=lane, queues=[emails], tasks=[job], environment="production")
        triggered = await runtime.trigger(job, {"to": "a@example.com"})
        assert len(triggered.published) == 1
        assert await inbox.wait_for(lambda got: any(m.run_id == triggered.run.id for m in got), 10.0)
    finally:
        await lane.close()
    assert lane.started is False


async def test_a_polling_worker_wakes_on_notify_long_before_its_poll_interval(
    pg_cluster: PostgresCluster, lane_schema: str
) -> None:
    lane = create_postgres_lane(connection_string=pg_cluster.dsn, schema=lane_schema)
    emails = queue("emails", default=True)
    done = asyncio.Event()

    async def handler(payload: object, context: object) -> None:
        done.set()

    job = task("emails.send", run=handler, queue=emails)
    runtime = create_runlane(lane=lane, queues=[emails], tasks=[job], environment="production")
    await runtime.start()
    try:
        worker = runtime.worker(poll_interval="60s", concurrency=2)
        await asyncio.sleep(1.0)  # its first claim finds nothing; it now waits up to 60s
        started = time.monotonic()
        triggered = await runtime.trigger(job, {"n": 1})
        await asyncio.wait_for(done.wait(), timeout=15)
        assert time.monotonic() - started < 15, "the worker was woken, not polled"
        for _ in range(100):
            run = await lane.storage.get_run(GetRun(environment=runtime.environment, run_id=triggered.run.id))
            if run is not None and run.status is RunStatus.SUCCEEDED:
                break
            await asyncio.sleep(0.05)
        assert run is not None
        assert run.status is RunStatus.SUCCEEDED
        await worker.stop()
    finally:
        await runtime.close()
