"""``PostgresNotifyTransport``: wakeups as Postgres ``NOTIFY``, for lanes without a message broker.

Publishing sends every attempt in one statement on an autocommit connection::

    SELECT pg_notify(channel, payload) FROM unnest(:channels, :payloads)

Core publishes only rows its storage transaction already committed, so a listener that wakes
always finds the run. Each wakeup goes to its queue's channel and to the schema's all-queues
channel (see ``wakeup_channels``). Nothing is durable: a notification nobody is listening for, or
that arrives while a listener reconnects, is gone. That is fine because the wakeup only shortens a
worker's wait; workers claim from storage and poll at their poll interval anyway (capabilities:
all ``False``). Identical (channel, payload) pairs in one call reach listeners once (Postgres folds
duplicate notifications of a transaction), which changes nothing for a wakeup.

The transport is also a ``WakeupSource``: ``listen(queues, on_wakeup)`` opens a dedicated
connection per subscription (``notify_listener``).
"""

import asyncio
from typing import Any

import psycopg
import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.ids import IdKind, as_id
from runlane.domain.queues import QueueDefinition
from runlane.domain.values import OutboxFailureRecord
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres import driver_statements
from runlane.infrastructure.postgres.commit_wakeups import PUBLISH, publish_params
from runlane.infrastructure.postgres.connection import ResolvedConnection, resolve_connection
from runlane.infrastructure.postgres.errors import driver_detail, translate_error
from runlane.infrastructure.postgres.liveness import SOCKET, PrePing, check_pre_ping, install_liveness_check
from runlane.infrastructure.postgres.notify_listener import PostgresWakeupSubscription
from runlane.infrastructure.postgres.wakeup_channels import (
    all_queues_channel,
    encode_wakeup,
    queue_channel,
)
from runlane.ports.capabilities import TransportCapabilities
from runlane.ports.clock import SYSTEM_CLOCK, Clock
from runlane.ports.transport import (
    FailedWakeupPublish,
    PublishedWakeup,
    PublishWakeups,
    PublishWakeupsResult,
    WakeupCallback,
    WakeupPublishOutcome,
    validate_publish_command,
)

POSTGRES_NOTIFY_CAPABILITIES = TransportCapabilities(
    durable_delivery=False,
    message_grouping=False,
    native_delay=False,
    ordered_delivery=False,
)
DEFAULT_NAME = "postgres-notify"

_DB_ERRORS = (sa_exc.SQLAlchemyError, psycopg.Error, OSError)


def _positive(value: object, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise configuration_invalid(f"{name} must be a positive number.", field=name)
    return float(value)


def _count(value: object, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise configuration_invalid(f"{name} must be an integer >= {minimum}.", field=name)
    return value


class PostgresNotifyTransport:
    """Publishes wakeups with ``pg_notify`` and lets workers LISTEN for them."""

    capabilities = POSTGRES_NOTIFY_CAPABILITIES

    def __init__(
        self,
        *,
        connection: ResolvedConnection,
        name: str = DEFAULT_NAME,
        pool_size: int = 2,
        max_overflow: int = 2,
        pool_pre_ping: PrePing = SOCKET,
        pool_recycle: float = 1800.0,
        connect_timeout: float = 10.0,
        application_name: str = "runlane-notify",
        reconnect_initial_delay: float = 0.1,
        reconnect_max_delay: float = 5.0,
        health_check_interval: float = 30.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise configuration_invalid("Postgres notify transport name must be a non-empty string.")
        if not isinstance(application_name, str) or not application_name:
            raise configuration_invalid("application_name must be a non-empty string.")
        self.name = name
        self._connection = connection
        self._initial_delay = _positive(reconnect_initial_delay, "reconnect_initial_delay")
        self._max_delay = max(self._initial_delay, _positive(reconnect_max_delay, "reconnect_max_delay"))
        self._health_interval = _positive(health_check_interval, "health_check_interval")
        self._connect_timeout = _positive(connect_timeout, "connect_timeout")
        self._application_name = application_name
        self._clock = clock
        self._engine_options: dict[str, Any] = {
            "pool_size": _count(pool_size, "pool_size", 1),
            "max_overflow": _count(max_overflow, "max_overflow", 0),
            "pool_pre_ping": check_pre_ping(pool_pre_ping) is True,
            "pool_recycle": _positive(pool_recycle, "pool_recycle"),
            # NOTIFY in a transaction is delivered at commit; autocommit delivers it at once.
            "isolation_level": "AUTOCOMMIT",
            "connect_args": {
                "connect_timeout": max(1, int(self._connect_timeout)),
                "application_name": application_name,
            },
        }
        self._socket_check = pool_pre_ping == SOCKET
        self._engine: AsyncEngine | None = None
        self._subscriptions: set[PostgresWakeupSubscription] = set()
        self._all_channel = all_queues_channel(connection.schema)

    # -- configuration ----------------------------------------------------------------------

    @property
    def queues(self) -> tuple[QueueDefinition, ...] | None:
        """``None``: any queue (a channel per queue is derived on demand)."""
        return None

    @property
    def schema(self) -> str:
        """The storage schema whose runs these wakeups are for (part of every channel name)."""
        return self._connection.schema

    @property
    def url(self) -> URL:
        return self._connection.url

    @property
    def engine(self) -> AsyncEngine:
        """The started publishing engine."""
        if self._engine is None:
            raise configuration_invalid("Postgres notify transport is not started; call start() first.")
        return self._engine

    def channel_for(self, queue: str | None) -> str:
        """The channel of ``queue``, or the all-queues channel for ``None``."""
        return self._all_channel if queue is None else queue_channel(self.schema, queue)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Create the publishing pool and check the server answers."""
        if self._engine is not None:
            return
        engine = create_async_engine(self._connection.url, **self._engine_options)
        if self._socket_check:
            install_liveness_check(engine)
        try:
            async with engine.connect() as conn:
                await conn.execute(sa.select(sa.literal(1)))
        except _DB_ERRORS as exc:
            await engine.dispose()
            target = self._connection.url.render_as_string(hide_password=True)
            raise RunlaneError(
                ErrorCode.CONFIGURATION_INVALID,
                f"Postgres notify transport cannot reach {target}: {driver_detail(exc)}",
                retryable=translate_error(exc, operation="start").retryable,
                meta={"operation": "start"},
                cause=exc,
            ) from exc
        except BaseException:
            await engine.dispose()
            raise
        self._engine = engine

    async def close(self) -> None:
        """Stop every subscription, then dispose the publishing pool."""
        subscriptions, self._subscriptions = list(self._subscriptions), set()
        await asyncio.gather(*(subscription.close() for subscription in subscriptions))
        engine, self._engine = self._engine, None
        if engine is not None:
            await engine.dispose()

    # -- publishing -------------------------------------------------------------------------

    async def publish_wakeups(self, command: PublishWakeups) -> PublishWakeupsResult:
        command = validate_publish_command(command)
        if not command.attempts:
            return PublishWakeupsResult(outcomes=())
        engine = self.engine
        channels: list[str] = []
        payloads: list[str] = []
        too_long: set[int] = set()
        for index, attempt in enumerate(command.attempts):
            payload = encode_wakeup(attempt.message)
            if payload is None:
                too_long.add(index)
                continue
            for channel in (queue_channel(self.schema, attempt.message.queue), self._all_channel):
                channels.append(channel)
                payloads.append(payload)
        if channels:
            try:
                async with engine.connect() as conn:
                    await driver_statements.execute(conn, PUBLISH, publish_params(channels, payloads))
            except _DB_ERRORS as exc:
                raise RunlaneError(
                    ErrorCode.TRANSPORT_UNAVAILABLE,
                    f"Postgres NOTIFY failed: {driver_detail(exc)}",
                    retryable=True,
                    meta={"operation": "publish", "attempts": len(command.attempts)},
                    cause=exc,
                ) from exc
        now = self._clock.now()
        outcomes: list[WakeupPublishOutcome] = []
        for index in range(len(command.attempts)):
            if index in too_long:
                outcomes.append(
                    FailedWakeupPublish(
                        error=OutboxFailureRecord(
                            code=ErrorCode.TRANSPORT_PUBLISH_FAILED,
                            message="The wakeup is too long for a NOTIFY payload (8000 bytes).",
                            occurred_at=now,
                            retryable=False,
                            meta={"limitBytes": 8000},
                        )
                    )
                )
            else:
                outcomes.append(PublishedWakeup(published_at=now))
        return PublishWakeupsResult(outcomes=tuple(outcomes))

    # -- listening (WakeupSource) -----------------------------------------------------------

    async def listen(
        self, queues: tuple[str, ...] | None, on_wakeup: WakeupCallback
    ) -> PostgresWakeupSubscription:
        """LISTEN for wakeups of ``queues`` (every queue when ``None``) on a dedicated connection.

        The connection is open and listening when this returns; ``transport_unavailable`` if it
        cannot be opened (callers then simply poll). Needs no ``start()``.
        """
        if not callable(on_wakeup):
            raise configuration_invalid("on_wakeup must be callable.")
        if queues is None:
            wanted: frozenset[str] | None = None
            channels = [self._all_channel]
        else:
            if isinstance(queues, str) or not isinstance(queues, tuple | list):
                raise configuration_invalid("queues must be a tuple of queue names or None.")
            wanted = frozenset(as_id(IdKind.QUEUE, q, code=ErrorCode.CONFIGURATION_INVALID) for q in queues)
            channels = [queue_channel(self.schema, queue) for queue in sorted(wanted)]
        subscription = _TrackedSubscription(
            owner=self,
            conninfo=self._connection.libpq_conninfo,
            channels=channels,
            queues=wanted,
            on_wakeup=on_wakeup,
            connect_timeout=self._connect_timeout,
            application_name=self._application_name,
            reconnect_initial_delay=self._initial_delay,
            reconnect_max_delay=self._max_delay,
            health_check_interval=self._health_interval,
        )
        if channels:
            await subscription.open()
        self._subscriptions.add(subscription)
        return subscription

    def _forget(self, subscription: PostgresWakeupSubscription) -> None:
        self._subscriptions.discard(subscription)


class _TrackedSubscription(PostgresWakeupSubscription):
    """A subscription the transport closes with itself, and forgets once closed."""

    def __init__(self, *, owner: PostgresNotifyTransport, **options: Any) -> None:
        super().__init__(**options)
        self._owner = owner

    async def close(self) -> None:
        self._owner._forget(self)
        await super().close()


def postgres_notify_transport(
    *,
    connection_string: str | URL,
    schema: str | None = None,
    name: str = DEFAULT_NAME,
    pool_size: int = 2,
    max_overflow: int = 2,
    pool_pre_ping: PrePing = SOCKET,
    pool_recycle: float = 1800.0,
    connect_timeout: float = 10.0,
    application_name: str = "runlane-notify",
    reconnect_initial_delay: float = 0.1,
    reconnect_max_delay: float = 5.0,
    health_check_interval: float = 30.0,
    clock: Clock = SYSTEM_CLOCK,
) -> PostgresNotifyTransport:
    """A LISTEN/NOTIFY wakeup transport for the Postgres database at ``connection_string``.

    ``schema`` (resolved like the storage's: option, then ``?schema=``, then ``public``) scopes the
    channels, so give it the storage's schema. Nothing connects until ``start()`` (publishing) or
    ``listen()`` (a dedicated connection per subscription). See docs/postgres.md, "Wakeups".
    """
    return PostgresNotifyTransport(
        connection=resolve_connection(connection_string, schema),
        name=name,
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_pre_ping=pool_pre_ping,
        pool_recycle=pool_recycle,
        connect_timeout=connect_timeout,
        application_name=application_name,
        reconnect_initial_delay=reconnect_initial_delay,
        reconnect_max_delay=reconnect_max_delay,
        health_check_interval=health_check_interval,
        clock=clock,
    )
