"""The Postgres lane sends an eager trigger's wakeup in the trigger's own commit (``commit_wakeups``).

One statement (one transaction) per key-less trigger instead of three: the outbox row is written
``published`` and ``pg_notify`` is called by the same statement, so listeners hear of exactly the
runs that committed. Everything runs on the real server; listeners are real LISTEN connections.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import pytest

from runlane import create_runlane, queue, task
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode, OutboxMessageStatus, StorageConflictKind
from runlane.infrastructure.lanes import create_postgres_lane
from runlane.infrastructure.postgres import PostgresNotifyTransport, PostgresStorage
from runlane.infrastructure.postgres.batch_appends import PIPELINE_CHUNK
from runlane.ports.storage_commands import ListOutboxMessages, OutboxMessage
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.transport_suite import WakeupInbox
from tests.integration.postgres.helpers import migrate, scratch_schema
from tests.integration.postgres.statement_recorder import recorded_statements
from tests.support.pg_cluster import PostgresCluster

NOW = datetime(2026, 11, 21, 12, 0, 0, tzinfo=UTC)
WAIT = 10.0


@pytest.fixture
def lane_schema(pg_cluster: PostgresCluster) -> Iterator[str]:
    with scratch_schema(pg_cluster.libpq_dsn) as schema:
        migrate(pg_cluster.libpq_dsn, schema)
        yield schema


class Setup:
    def __init__(
        self, runtime: Any, storage: PostgresStorage, every: WakeupInbox, emails: WakeupInbox
    ) -> None:
        self.runtime, self.storage, self.every, self.emails = runtime, storage, every, emails

    async def rows(self, run_id: str) -> list[OutboxMessage]:
        query = ListOutboxMessages(environment=self.runtime.environment, run_id=run_id, limit=10)
        return list(await self.storage.list_outbox_messages(query))


@asynccontextmanager
async def _setup(dsn: str, schema: str, *, in_commit: bool) -> AsyncIterator[Setup]:
    lane = create_postgres_lane(connection_string=dsn, schema=schema, wakeups_in_commit=in_commit)
    emails = queue("emails", default=True)
    job = task("emails.send", run=lambda payload, context: None, queue=emails)
    keyed = task("emails.keyed", run=lambda p, c: None, queue=emails, idempotency_key=lambda p: p["key"])
    runtime = create_runlane(lane=lane, queues=[emails], tasks=[job, keyed], clock=ControlledClock(NOW))
    await runtime.start()
    transport = lane.transport
    assert isinstance(transport, PostgresNotifyTransport) and isinstance(lane.storage, PostgresStorage)
    every, on_emails = WakeupInbox(), WakeupInbox()
    await transport.listen(None, every)
    await transport.listen(("emails",), on_emails)
    try:
        yield Setup(runtime, lane.storage, every, on_emails)
    finally:
        await runtime.close()


@pytest.fixture
async def setup(pg_cluster: PostgresCluster, lane_schema: str) -> AsyncIterator[Setup]:
    async with _setup(pg_cluster.dsn, lane_schema, in_commit=True) as value:
        yield value


def _heard(inbox: WakeupInbox, run_ids: set[str]) -> Any:
    return lambda got: run_ids <= {m.run_id for m in got}


async def test_an_eager_trigger_is_one_statement_whose_commit_publishes_the_row_and_the_wakeup(
    setup: Setup,
) -> None:
    assert setup.storage.wakeups_in_commit is True
    with recorded_statements(setup.storage.engine) as sent:
        triggered = await setup.runtime.trigger("emails.send", {"to": "a@example.com"})
    assert len(sent) == 1, sent
    assert "pg_notify" in sent[0]
    assert [(o.published_at, o.provider_message_id) for o in triggered.published] == [(NOW, None)]
    (row,) = await setup.rows(triggered.run.id)
    assert (row.status, row.attempts, row.published_at, row.updated_at) == (
        OutboxMessageStatus.PUBLISHED,
        1,
        NOW,
        NOW,
    )
    assert (row.claim_token, row.last_error) == (None, None)
    run_id = {triggered.run.id}
    assert await setup.every.wait_for(_heard(setup.every, run_id), WAIT)
    assert await setup.emails.wait_for(_heard(setup.emails, run_id), WAIT)
    (message,) = [m for m in setup.emails.messages if m.run_id == triggered.run.id]
    assert (message.queue, message.environment) == ("emails", setup.runtime.environment)


async def test_a_write_that_loses_its_compare_and_set_wakes_nobody(setup: Setup) -> None:
    first = await setup.runtime.trigger("emails.send", {}, run_id="run_twice")
    with pytest.raises(RunlaneError) as lost:
        await setup.runtime.trigger("emails.send", {}, run_id="run_twice")
    assert lost.value.code is ErrorCode.STORAGE_CONFLICT
    assert (lost.value.meta or {})["kind"] == StorageConflictKind.SEQUENCE.value
    # Notifications reach a listener in commit order: once the marker arrives, a second wakeup
    # of the lost write would already be there.
    marker = await setup.runtime.trigger("emails.send", {})
    assert await setup.every.wait_for(_heard(setup.every, {marker.run.id}), WAIT)
    assert [m.run_id for m in setup.every.messages] == [first.run.id, marker.run.id]
    assert len(await setup.rows("run_twice")) == 1


async def test_batched_and_keyed_triggers_publish_in_their_commit_too(setup: Setup) -> None:
    with recorded_statements(setup.storage.engine) as sent:
        plain = await setup.runtime.trigger_many("emails.send", [{"n": n} for n in range(5)])
    assert len(sent) == 1, sent  # key-less trigger_many: one statement for the whole batch
    keyed = await setup.runtime.trigger("emails.keyed", {"key": "k1"})  # the transactional path
    mixed = await setup.runtime.trigger_many("emails.keyed", [{"key": "k2"}, {"key": "k1"}, {"key": "k3"}])
    results = [*plain, keyed, *mixed]
    assert all(not isinstance(result, Exception) for result in results)
    created = [r for r in results if not isinstance(r, Exception) and r.outcome.value == "created"]
    assert len(created) == 8  # k1 again returns the existing run and writes nothing
    ids = {r.run.id for r in created}
    for result in created:
        assert len(result.published) == 1
        (row,) = await setup.rows(result.run.id)
        assert (row.status, row.attempts, row.claim_token) == (OutboxMessageStatus.PUBLISHED, 1, None)
    assert await setup.every.wait_for(_heard(setup.every, ids), WAIT)
    assert sorted(m.run_id for m in setup.every.messages) == sorted(ids)  # once each


async def test_a_pipelined_batch_publishes_every_wakeup_once_in_its_one_commit(setup: Setup) -> None:
    count = 2 * PIPELINE_CHUNK + 1  # three chunks (batch_appends.write_pipelined_creates)
    with recorded_statements(setup.storage.engine) as sent:
        results = await setup.runtime.trigger_many("emails.send", [{"n": n} for n in range(count)])
    assert len(sent) == 3 and all("pg_notify" in text for text in sent), sent
    created = [r for r in results if not isinstance(r, Exception)]
    assert len(created) == count and all(len(r.published) == 1 for r in created)
    ids = {r.run.id for r in created}
    assert await setup.every.wait_for(_heard(setup.every, ids), WAIT)
    assert sorted(m.run_id for m in setup.every.messages) == sorted(ids)  # once each


async def test_a_trigger_in_the_callers_transaction_wakes_listeners_when_the_caller_commits(
    setup: Setup,
) -> None:
    async with setup.storage.engine.connect() as conn:
        await conn.begin()
        inside = await setup.runtime.trigger("emails.send", {}, connection=conn)
        assert [o.published_at for o in inside.published] == [NOW]
        assert await setup.rows(inside.run.id) == []  # invisible to others until the commit
        assert not await setup.every.wait_for(_heard(setup.every, {inside.run.id}), 0.5)
        await conn.commit()
    assert await setup.every.wait_for(_heard(setup.every, {inside.run.id}), WAIT)
    (row,) = await setup.rows(inside.run.id)
    assert (row.status, row.attempts, row.claim_token) == (OutboxMessageStatus.PUBLISHED, 1, None)


async def test_a_rolled_back_callers_transaction_wakes_nobody(setup: Setup) -> None:
    async with setup.storage.engine.connect() as conn:
        await conn.begin()
        gone = await setup.runtime.trigger("emails.keyed", {"key": "k"}, connection=conn)
        await conn.rollback()
    marker = await setup.runtime.trigger("emails.send", {})
    assert await setup.every.wait_for(_heard(setup.every, {marker.run.id}), WAIT)
    assert [m.run_id for m in setup.every.messages] == [marker.run.id]
    assert await setup.runtime.runs.get(gone.run.id) is None


async def test_without_in_commit_wakeups_the_outbox_and_the_transport_publish(
    pg_cluster: PostgresCluster, lane_schema: str
) -> None:
    async with _setup(pg_cluster.dsn, lane_schema, in_commit=False) as setup:
        assert setup.storage.wakeups_in_commit is False
        with recorded_statements(setup.storage.engine) as sent:
            triggered = await setup.runtime.trigger("emails.send", {})
        assert len(sent) == 3, sent  # the claimed row, NOTIFY, the completion
        (row,) = await setup.rows(triggered.run.id)
        assert row.status is OutboxMessageStatus.PUBLISHED
        assert row.claim_token is not None  # it went through a publisher's claim
        assert await setup.every.wait_for(_heard(setup.every, {triggered.run.id}), WAIT)
        # Inside a caller's transaction nothing may be published before the commit: the row
        # stays pending, and tick publishes it once it is visible.
        async with setup.storage.engine.connect() as conn, conn.begin():
            inside = await setup.runtime.trigger("emails.send", {}, connection=conn)
        assert inside.published == ()
        (pending,) = await setup.rows(inside.run.id)
        assert pending.status is OutboxMessageStatus.PENDING
        assert not await setup.every.wait_for(_heard(setup.every, {inside.run.id}), 0.3)
        assert (await setup.runtime.tick()).published_wakeups == 1
        assert await setup.every.wait_for(_heard(setup.every, {inside.run.id}), WAIT)


def test_the_lane_option_must_be_a_bool() -> None:
    with pytest.raises(RunlaneError) as info:
        create_postgres_lane(connection_string="postgresql://a@127.0.0.1/b", wakeups_in_commit="yes")  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
    lane = create_postgres_lane(connection_string="postgresql://a@127.0.0.1/b")
    assert isinstance(lane.storage, PostgresStorage) and lane.storage.wakeups_in_commit is True
