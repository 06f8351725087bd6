"""A psycopg connection pool for the storage's single-statement writes and due-run claims.

A trigger, a single outcome, a worker's outcome batch and an outbox completion are each one
autocommit statement (``driver_statements``); a claim of unbounded queues is a transaction of
driver statements only. Checking a connection out of SQLAlchemy's pool for them cost more CPU
than the statement itself: the async engine's greenlet hand-off, the pool's bookkeeping, and
switching the connection to autocommit and back on every checkout. In alternating loops of 300
eager triggers on one machine the median trigger took 13-31% less CPU through this pool than
through SQLAlchemy's checkout, depending on the machine's phase (docs/performance.md). Other
transactions and reads keep SQLAlchemy's engine.

Its connections are opened in autocommit (a statement is its own transaction, with no ``BEGIN``
round trip; a claim sends ``BEGIN`` itself), with the arguments SQLAlchemy gives psycopg and the
same ``synchronous_commit`` (set once per connection). ``DriverConnections`` hands them out as
SQLAlchemy's ``QueuePool`` would: ``pool_size`` pooled, up to ``max_overflow`` more opened per
call when none is ready, ``pool_pre_ping`` applied at checkout. When a checkout or a statement
finds a dead connection, every idle one is tested and the dead replaced
(``AsyncConnectionPool.check``), as SQLAlchemy invalidates its pool: after a server restart the
pool heals at the first call instead of failing, or backing off, once per pooled connection.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from runlane.infrastructure.postgres.commit_durability import SET_SYNCHRONOUS_COMMIT
from runlane.infrastructure.postgres.liveness import SOCKET, PrePing, connection_is_dead

DriverPool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
# How long a checkout waits for a pooled connection before it overflows: a ready one is returned
# at once; psycopg_pool refuses a zero timeout even then.
_READY_WAIT = 0.001
_Hook = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]


def _configure(synchronous_commit: str | None) -> _Hook | None:
    if synchronous_commit is None:
        return None

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        await conn.execute(SET_SYNCHRONOUS_COMMIT, (synchronous_commit,))  # autocommit: holds at once

    return configure


async def _is_dead(conn: psycopg.AsyncConnection[Any], pre_ping: PrePing) -> bool:
    if pre_ping == SOCKET:
        return connection_is_dead(conn)
    if pre_ping is True:
        try:
            await AsyncConnectionPool.check_connection(conn)  # an empty query: one round trip
        except psycopg.Error:
            return True
    return False


async def _replace_dead(pool: DriverPool) -> None:
    """Test every idle connection and replace the dead (failures here only cost the sweep)."""
    with contextlib.suppress(Exception):
        await pool.check()


class DriverConnections:
    """The pool, checked out the way SQLAlchemy's ``QueuePool`` hands connections out.

    A pooled connection ready at once is used (after the ``pre_ping`` check). When none is, and
    fewer than ``max_overflow`` extra connections are open, the call opens one of its own and
    closes it afterwards while the pool grows in the background: a server that cannot be reached
    fails the call at once (as SQLAlchemy's connect does), so a worker's claim fails and backs off
    instead of waiting ``pool_timeout`` for the pool to reconnect. With every overflow slot taken
    (or ``max_overflow=0``) the call waits for a pooled connection, up to ``pool_timeout``.
    """

    def __init__(
        self,
        pool: DriverPool,
        *,
        connect_kwargs: Mapping[str, Any],
        max_overflow: int,
        pre_ping: PrePing,
        configure: _Hook | None,
    ) -> None:
        self.pool = pool
        self._connect_kwargs = connect_kwargs  # the pool's own, so overflow connections match it
        self._max_overflow = max_overflow
        self._overflow = 0
        self._pre_ping = pre_ping
        self._configure = configure  # the pool's session settings, on overflow connections too

    async def close(self) -> None:
        await self.pool.close()

    @asynccontextmanager
    async def checked_out(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A live connection; returned to the pool (or closed, if it overflowed) afterwards."""
        conn, pooled = await self._acquire()
        try:
            yield conn
        except BaseException:
            lost = conn.broken or conn.closed
            await self._release(conn, pooled)
            if lost:
                await _replace_dead(self.pool)
            raise
        await self._release(conn, pooled)

    async def _acquire(self) -> tuple[psycopg.AsyncConnection[Any], bool]:
        pool = self.pool
        for _ in range(2):
            try:
                conn = await pool.getconn(timeout=_READY_WAIT)
            except PoolTimeout:
                if self._overflow < self._max_overflow:
                    return await self._open_overflow(), False
                conn = await pool.getconn()
            if not await _is_dead(conn, self._pre_ping):
                return conn, True
            await conn.close()  # returned closed, the pool discards it and opens another
            await pool.putconn(conn)
            await _replace_dead(pool)  # a restart ends every pooled connection
        return await pool.getconn(), True

    async def _open_overflow(self) -> psycopg.AsyncConnection[Any]:
        self._overflow += 1
        try:
            conn = await psycopg.AsyncConnection.connect(**self._connect_kwargs)
            if self._configure is not None:
                await self._configure(conn)
        except BaseException:
            self._overflow -= 1
            raise
        return conn

    async def _release(self, conn: psycopg.AsyncConnection[Any], pooled: bool) -> None:
        if pooled:
            await self.pool.putconn(conn)
            return
        self._overflow -= 1
        with contextlib.suppress(Exception):
            await conn.close()


async def open_driver_pool(
    *,
    connect_kwargs: Mapping[str, Any],
    max_size: int,
    max_overflow: int,
    checkout_timeout: float,
    max_lifetime: float,
    pre_ping: PrePing,
    synchronous_commit: str | None,
    name: str,
) -> DriverConnections:
    """Open with one connection (so ``start()`` fails, not a first trigger, when it cannot connect).

    ``checkout_timeout`` bounds that first connection and every checkout: waiting for a free
    connection, or for the pool to reconnect while the server is unreachable; it then fails with
    ``PoolTimeout``, a retryable ``storage_unavailable`` (``errors.translate_error``).
    """
    configure = _configure(synchronous_commit)
    kwargs = {**connect_kwargs, "autocommit": True}
    pool: DriverPool = AsyncConnectionPool(
        "",  # everything is in ``kwargs``, which psycopg quotes (a role may contain spaces)
        kwargs=kwargs,
        min_size=1,
        max_size=max_size,
        timeout=checkout_timeout,
        max_lifetime=max_lifetime,
        configure=configure,
        name=name,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=checkout_timeout)
    except BaseException:
        await pool.close()
        raise
    return DriverConnections(
        pool,
        connect_kwargs=kwargs,
        max_overflow=max_overflow,
        pre_ping=pre_ping,
        configure=configure,
    )
