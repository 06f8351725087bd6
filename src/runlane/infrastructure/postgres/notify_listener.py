"""One wakeup subscription: a dedicated connection that LISTENs and hands wakeups to a callback.

The connection is a plain psycopg ``AsyncConnection`` in autocommit (LISTEN needs a session of its
own, so it can never come from a pool or sit behind a transaction-pooling PgBouncer). A background
task reads ``notifies()``; every ``health_check_interval`` without traffic it runs ``SELECT 1``, so
a connection that died silently is noticed. When the connection drops it reconnects with bounded
exponential backoff and LISTENs again. Wakeups sent while it was down are lost, which costs
latency only: workers still poll storage at their poll interval.
"""

import asyncio
import contextlib
import logging
import random
from collections.abc import Sequence

import psycopg
from psycopg import sql

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres.wakeup_channels import decode_wakeup
from runlane.ports.transport import WakeupCallback

logger = logging.getLogger("runlane.postgres.notify")


class PostgresWakeupSubscription:
    """A running listener; ``close()`` stops its task and closes its connection (idempotent)."""

    def __init__(
        self,
        *,
        conninfo: str,
        channels: Sequence[str],
        queues: frozenset[str] | None,
        on_wakeup: WakeupCallback,
        connect_timeout: float,
        application_name: str,
        reconnect_initial_delay: float,
        reconnect_max_delay: float,
        health_check_interval: float,
    ) -> None:
        self._conninfo = conninfo
        self._channels = tuple(dict.fromkeys(channels))
        self._queues = queues
        self._on_wakeup = on_wakeup
        self._connect_timeout = connect_timeout
        self._application_name = application_name
        self._initial_delay = reconnect_initial_delay
        self._max_delay = reconnect_max_delay
        self._health_interval = health_check_interval
        self._conn: psycopg.AsyncConnection[object] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.connections = 0
        """How many times a connection was opened and LISTENed (1 plus the reconnects)."""

    @property
    def channels(self) -> tuple[str, ...]:
        return self._channels

    @property
    def backend_pid(self) -> int | None:
        """The server process of the current connection (``None`` while reconnecting)."""
        conn = self._conn
        return None if conn is None or conn.closed else conn.info.backend_pid

    @property
    def closed(self) -> bool:
        return self._closed

    async def open(self) -> None:
        """Connect and LISTEN before returning, so a wakeup published afterwards is received."""
        try:
            self._conn = await self._connect()
        except (psycopg.Error, OSError) as exc:
            raise RunlaneError(
                ErrorCode.TRANSPORT_UNAVAILABLE,
                f"Postgres wakeup listener cannot connect: {str(exc).strip()[:300]}",
                retryable=True,
                meta={"operation": "listen"},
                cause=exc,
            ) from exc
        self._task = asyncio.create_task(self._run(), name="runlane-postgres-listen")

    async def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self._drop_connection()

    async def _connect(self) -> "psycopg.AsyncConnection[object]":
        conn = await psycopg.AsyncConnection.connect(
            self._conninfo,
            autocommit=True,
            connect_timeout=max(1, int(self._connect_timeout)),
            application_name=self._application_name,
        )
        try:
            for channel in self._channels:
                await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(channel)))
        except BaseException:
            await conn.close()
            raise
        self.connections += 1
        return conn

    async def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                await conn.close()

    async def _run(self) -> None:
        delay = self._initial_delay
        while not self._closed:
            try:
                if self._conn is None:
                    self._conn = await self._connect()
                    logger.info("wakeup listener reconnected", extra={"channels": len(self._channels)})
                delay = self._initial_delay
                await self._receive(self._conn)
            except Exception as exc:  # the listener outlives any one connection (or bug)
                logger.warning(
                    "wakeup listener connection lost; reconnecting in %.2fs: %s: %s",
                    delay,
                    type(exc).__name__,
                    str(exc).strip()[:200],
                )
                await self._drop_connection()
                # Jitter spreads the reconnects of many workers after a server restart.
                await asyncio.sleep(delay * (0.5 + random.random() / 2))
                delay = min(self._max_delay, delay * 2)

    async def _receive(self, conn: "psycopg.AsyncConnection[object]") -> None:
        while not self._closed:
            async for notify in conn.notifies(timeout=self._health_interval):
                self._dispatch(notify.payload)
            await conn.execute("SELECT 1")  # quiet for a while: is the connection still alive?

    def _dispatch(self, payload: str) -> None:
        try:
            message = decode_wakeup(payload)
        except (RunlaneError, ValueError, TypeError) as exc:
            logger.warning("ignoring a malformed wakeup payload: %s", exc)
            return
        if self._queues is not None and message.queue not in self._queues:
            return
        try:
            self._on_wakeup(message)
        except Exception:
            logger.exception("wakeup callback failed")
