"""The LISTEN/NOTIFY wakeup transport on a real server: conformance, payloads, failures, reconnects."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import psycopg
import pytest
from psycopg import sql

from runlane.domain.errors import RunlaneError
from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres import (
    PostgresNotifyTransport,
    PostgresWakeupSubscription,
    postgres_notify_transport,
)
from runlane.infrastructure.postgres.wakeup_channels import MAX_PAYLOAD_BYTES, all_queues_channel
from runlane.ports.transport import (
    FailedWakeupPublish,
    PublishedWakeup,
    PublishWakeupAttempt,
    PublishWakeups,
    TransportAdapter,
    WakeupSource,
)
from runlane.testing import TransportConformance
from runlane.testing.conformance.transport_suite import WakeupInbox
from tests.integration.postgres.statement_recorder import recorded_statements
from tests.support.pg_cluster import PostgresCluster

WAIT_S = 10.0


def _schema() -> str:
    return f"notify_{uuid.uuid4().hex[:12]}"


def _app_name() -> str:
    return f"rl-notify-{uuid.uuid4().hex[:12]}"


def _message(queue: str = "emails", **fields: Any) -> DeliveryMessage:
    return DeliveryMessage(
        environment=Environment("production"), run_id=f"run_{uuid.uuid4().hex}", queue=queue, **fields
    )


def _attempt(message: DeliveryMessage) -> PublishWakeupAttempt:
    return PublishWakeupAttempt(outbox_message_id=f"outbox_{uuid.uuid4().hex}", message=message)


@dataclass
class RawListener:
    """A plain psycopg connection LISTENing on the all-queues channel: what the server delivered."""

    conn: psycopg.AsyncConnection[Any]
    received: list[dict[str, Any]] = field(default_factory=list)

    async def drain(self, quiet: float = 0.3) -> list[dict[str, Any]]:
        """Collect notifications until none arrived for ``quiet`` seconds (bounded rounds)."""
        for _ in range(50):
            before = len(self.received)
            async for notify in self.conn.notifies(timeout=quiet):
                self.received.append(json.loads(notify.payload))
            if len(self.received) == before:
                break
        return self.received


async def _raw_listener(dsn: str, channel: str) -> RawListener:
    conn = await psycopg.AsyncConnection.connect(dsn, autocommit=True)
    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
    return RawListener(conn)


async def _terminate(dsn: str, application_name: str) -> int:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as conn:
        cursor = await conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity where application_name = %s",
            (application_name,),
        )
        return len(await cursor.fetchall())


class TestPostgresNotifyTransportConformance(TransportConformance):
    listeners: dict[int, RawListener]

    @pytest.fixture
    async def transport(self, pg_cluster: PostgresCluster) -> AsyncIterator[TransportAdapter]:
        schema = _schema()
        transport = postgres_notify_transport(connection_string=pg_cluster.dsn, schema=schema)
        raw = await _raw_listener(pg_cluster.libpq_dsn, all_queues_channel(schema))
        self.listeners = {id(transport): raw}
        await transport.start()
        try:
            yield transport
        finally:
            await transport.close()
            await raw.conn.close()

    async def received_wire_messages(self, transport: Any) -> list[dict[str, Any]] | None:
        return await self.listeners[id(transport)].drain()


@pytest.fixture
async def transport(pg_cluster: PostgresCluster) -> AsyncIterator[PostgresNotifyTransport]:
    transport = postgres_notify_transport(
        connection_string=pg_cluster.dsn,
        schema=_schema(),
        application_name=_app_name(),
        reconnect_initial_delay=0.05,
        reconnect_max_delay=0.5,
    )
    await transport.start()
    try:
        yield transport
    finally:
        await transport.close()


def test_options_are_validated() -> None:
    dsn = "postgresql://app@127.0.0.1:5432/app"
    bad: list[dict[str, Any]] = [
        {"name": ""},
        {"pool_size": 0},
        {"max_overflow": -1},
        {"reconnect_initial_delay": 0},
        {"health_check_interval": "30s"},
        {"application_name": ""},
    ]
    for options in bad:
        with pytest.raises(RunlaneError) as info:
            postgres_notify_transport(connection_string=dsn, **options)
        assert info.value.code is ErrorCode.CONFIGURATION_INVALID, options
    with pytest.raises(RunlaneError) as info:
        postgres_notify_transport(connection_string="mysql://app@host/db")
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
    transport = postgres_notify_transport(connection_string=dsn + "?schema=tenant_a")
    assert transport.schema == "tenant_a"
    assert transport.name == "postgres-notify"
    assert isinstance(transport, WakeupSource)
    assert set(transport.capabilities.to_wire().values()) == {False}


async def test_one_statement_publishes_a_whole_batch(transport: PostgresNotifyTransport) -> None:
    inbox = WakeupInbox()
    subscription = await transport.listen(None, inbox)
    messages = [_message(queue=f"q{index % 3}") for index in range(40)]
    with recorded_statements(transport.engine) as statements:
        result = await transport.publish_wakeups(PublishWakeups(attempts=tuple(map(_attempt, messages))))
    assert len(result.outcomes) == 40
    assert all(isinstance(outcome, PublishedWakeup) for outcome in result.outcomes)
    assert [s for s in statements if "pg_notify" in s] == statements
    assert len(statements) == 1
    assert await inbox.wait_for(lambda got: all(m in got for m in messages), WAIT_S)
    await subscription.close()


async def test_a_wakeup_too_long_for_notify_is_sent_without_its_optional_fields(
    transport: PostgresNotifyTransport,
) -> None:
    inbox = WakeupInbox()
    await transport.listen(("emails",), inbox)
    big = _message(trace_carrier={"tracestate": "x" * (MAX_PAYLOAD_BYTES + 10)})
    small = _message(trace_carrier={"traceparent": "00-a-b-01"})
    result = await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(big), _attempt(small))))
    assert all(isinstance(outcome, PublishedWakeup) for outcome in result.outcomes)
    minimal = DeliveryMessage(environment=big.environment, run_id=big.run_id, queue=big.queue)
    assert await inbox.wait_for(lambda got: minimal in got and small in got, WAIT_S)


async def test_a_wakeup_too_long_even_when_minimal_fails_alone(transport: PostgresNotifyTransport) -> None:
    inbox = WakeupInbox()
    await transport.listen(None, inbox)
    huge = _message(queue="q" * (MAX_PAYLOAD_BYTES + 1))
    fine = _message()
    result = await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(huge), _attempt(fine))))
    failed, published = result.outcomes
    assert isinstance(failed, FailedWakeupPublish)
    assert failed.error.code is ErrorCode.TRANSPORT_PUBLISH_FAILED
    assert failed.error.retryable is False
    assert isinstance(published, PublishedWakeup)
    assert await inbox.wait_for(lambda got: fine in got, WAIT_S)


async def test_a_database_error_fails_the_whole_call_as_transport_unavailable(
    pg_cluster: PostgresCluster,
) -> None:
    name = _app_name()
    transport = postgres_notify_transport(
        connection_string=pg_cluster.dsn, schema=_schema(), application_name=name, pool_pre_ping=False
    )
    await transport.start()
    try:
        await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(_message()),)))
        assert await _terminate(pg_cluster.libpq_dsn, name) >= 1
        with pytest.raises(RunlaneError) as info:
            await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(_message()),)))
        assert info.value.code is ErrorCode.TRANSPORT_UNAVAILABLE
        assert info.value.retryable is True
        # The broken connection was discarded: the next call reconnects.
        again = await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(_message()),)))
        assert isinstance(again.outcomes[0], PublishedWakeup)
    finally:
        await transport.close()


async def test_publishing_needs_start_but_an_empty_command_does_not(pg_cluster: PostgresCluster) -> None:
    transport = postgres_notify_transport(connection_string=pg_cluster.dsn)
    assert (await transport.publish_wakeups(PublishWakeups(attempts=()))).outcomes == ()
    with pytest.raises(RunlaneError) as info:
        await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(_message()),)))
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID


async def test_start_against_no_server_is_configuration_invalid_and_retryable() -> None:
    transport = postgres_notify_transport(
        connection_string="postgresql://runlane@127.0.0.1:1/runlane", connect_timeout=2
    )
    with pytest.raises(RunlaneError) as info:
        await transport.start()
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
    assert info.value.retryable is True
    with pytest.raises(RunlaneError) as listen_info:
        await transport.listen(None, WakeupInbox())
    assert listen_info.value.code is ErrorCode.TRANSPORT_UNAVAILABLE
    assert listen_info.value.retryable is True


async def test_channels_are_short_identifiers_scoped_by_schema_and_queue(
    pg_cluster: PostgresCluster,
) -> None:
    a = postgres_notify_transport(connection_string=pg_cluster.dsn, schema="tenant_a")
    b = postgres_notify_transport(connection_string=pg_cluster.dsn, schema="tenant_b")
    odd_queue = 'emails "eu" ; drop table x; ' + "é" * 200
    for transport in (a, b):
        for queue in ("emails", odd_queue, None):
            channel = transport.channel_for(queue)
            assert channel.isascii()
            assert len(channel.encode()) <= 63
            assert channel.replace("_", "").isalnum()
    assert a.channel_for("emails") != a.channel_for("reports")
    assert a.channel_for("emails") != b.channel_for("emails")
    assert a.channel_for(None) != b.channel_for(None)
    assert a.channel_for("emails") == postgres_notify_transport(
        connection_string=pg_cluster.dsn, schema="tenant_a"
    ).channel_for("emails")


async def test_listeners_of_another_schema_hear_nothing(pg_cluster: PostgresCluster) -> None:
    mine = postgres_notify_transport(connection_string=pg_cluster.dsn, schema=_schema())
    theirs = postgres_notify_transport(connection_string=pg_cluster.dsn, schema=_schema())
    await mine.start()
    try:
        other_inbox, my_inbox = WakeupInbox(), WakeupInbox()
        await theirs.listen(None, other_inbox)
        await mine.listen(None, my_inbox)
        sent = _message()
        await mine.publish_wakeups(PublishWakeups(attempts=(_attempt(sent),)))
        assert await my_inbox.wait_for(lambda got: sent in got, WAIT_S)
        assert other_inbox.messages == []
    finally:
        await mine.close()
        await theirs.close()


async def test_malformed_payloads_are_ignored_and_the_listener_keeps_going(
    transport: PostgresNotifyTransport, pg_cluster: PostgresCluster, caplog: pytest.LogCaptureFixture
) -> None:
    inbox = WakeupInbox()
    await transport.listen(("emails",), inbox)
    channel = transport.channel_for("emails")
    caplog.set_level(logging.WARNING, logger="runlane.postgres.notify")
    async with await psycopg.AsyncConnection.connect(pg_cluster.libpq_dsn, autocommit=True) as conn:
        for payload in ("not json", '{"runId": 1}', '{"payload": "secret"}', ""):
            await conn.execute("select pg_notify(%s, %s)", (channel, payload))
    sent = _message()
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(sent),)))
    assert await inbox.wait_for(lambda got: sent in got, WAIT_S)
    assert inbox.messages == [sent]
    assert caplog.text.count("ignoring a malformed wakeup payload") == 4


async def test_a_listener_reconnects_after_its_backend_is_terminated(
    transport: PostgresNotifyTransport, pg_cluster: PostgresCluster
) -> None:
    inbox = WakeupInbox()
    subscription = await transport.listen(("emails",), inbox)
    assert isinstance(subscription, PostgresWakeupSubscription)
    first = _message()
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(first),)))
    assert await inbox.wait_for(lambda got: first in got, WAIT_S)
    old_pid = subscription.backend_pid
    assert old_pid is not None
    async with await psycopg.AsyncConnection.connect(pg_cluster.libpq_dsn, autocommit=True) as conn:
        cursor = await conn.execute("select pg_terminate_backend(%s)", (old_pid,))
        assert (await cursor.fetchone()) == (True,)
    # Wakeups sent while it reconnects are lost (by design); keep publishing until one arrives.
    later: list[DeliveryMessage] = []
    for _ in range(100):
        message = _message()
        later.append(message)
        await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(message),)))
        if await inbox.wait_for(lambda got: any(m in got for m in later), 0.1):
            break
    assert any(m in inbox.messages for m in later), "the listener never came back"
    assert subscription.connections == 2
    assert subscription.backend_pid not in (None, old_pid)
    final = _message()
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(final),)))
    assert await inbox.wait_for(lambda got: final in got, WAIT_S)
    await subscription.close()
    assert subscription.backend_pid is None


async def test_health_checks_keep_a_quiet_listener_on_its_connection(
    pg_cluster: PostgresCluster,
) -> None:
    transport = postgres_notify_transport(
        connection_string=pg_cluster.dsn,
        schema=_schema(),
        health_check_interval=0.2,
        reconnect_initial_delay=0.05,
    )
    await transport.start()
    try:
        inbox = WakeupInbox()
        subscription = await transport.listen(None, inbox)
        await asyncio.sleep(0.5)  # a few health checks pass on a healthy connection
        assert subscription.connections == 1
        sent = _message()
        await transport.publish_wakeups(PublishWakeups(attempts=(_attempt(sent),)))
        assert await inbox.wait_for(lambda got: sent in got, WAIT_S)
    finally:
        await transport.close()


async def test_close_stops_every_subscription(transport: PostgresNotifyTransport) -> None:
    subscriptions = [await transport.listen(None, WakeupInbox()) for _ in range(3)]
    assert all(s.backend_pid is not None for s in subscriptions)
    await transport.close()
    assert all(s.closed and s.backend_pid is None for s in subscriptions)
    await transport.close()  # idempotent
