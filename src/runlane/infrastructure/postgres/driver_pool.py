"""A psycopg connection pool for the storage's single-statement writes.

A trigger, a single outcome, a worker's outcome batch and an outbox completion are each one
autocommit statement (``driver_statements``). Checking a connection out of SQLAlchemy's pool for
them cost more CPU than the statement itself: the async engine's greenlet hand-off, the pool's
bookkeeping, and switching the connection to autocommit and back on every checkout. In
alternating loops of 300 eager triggers on one machine the median trigger took 1.34 ms of CPU and
2.64 ms of wall time through SQLAlchemy's checkout, against 0.93 and 1.51 ms through this pool
(docs/performance.md). Transactions and reads keep SQLAlchemy's engine.

Its connections are opened in autocommit (a statement is its own transaction, with no ``BEGIN``
round trip), with the arguments SQLAlchemy gives psycopg and the same ``synchronous_commit`` (set
once per connection). ``checked_out`` applies the storage's ``pool_pre_ping`` at checkout. When a
checkout or a statement finds a dead connection, every idle one is tested and the dead replaced
(``AsyncConnectionPool.check``), as SQLAlchemy invalidates its pool: after a server restart the
pool heals at the first call instead of failing, or backing off, once per pooled connection.
"""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from psycopg_pool import AsyncConnectionPool

from runlane.infrastructure.postgres.liveness import SOCKET, PrePing, connection_is_dead

DriverPool = AsyncConnectionPool[psycopg.AsyncConnection[Any]]
_Hook = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]


def _configure(synchronous_commit: str | None) -> _Hook | None:
    if synchronous_commit is None:
        return None

    async def configure(conn: psycopg.AsyncConnection[Any]) -> None:
        # Session scope; the connection is in autocommit, so it holds at once.
        await conn.execute("SELECT set_config('synchronous_commit', %s, false)", (synchronous_commit,))

    return configure


async def open_driver_pool(
    *,
    connect_kwargs: Mapping[str, Any],
    max_size: int,
    checkout_timeout: float,
    max_lifetime: float,
    synchronous_commit: str | None,
    name: str,
) -> DriverPool:
    """Open with one connection (so ``start()`` fails, not a first trigger, when it cannot connect).

    ``checkout_timeout`` bounds that first connection and every checkout: waiting for a free
    connection, or for the pool to reconnect while the server is unreachable; it then fails with
    ``PoolTimeout``, a retryable ``storage_unavailable`` (``errors.translate_error``).
    """
    pool: DriverPool = AsyncConnectionPool(
        "",  # everything is in ``connect_kwargs``, which psycopg quotes (a role may contain spaces)
        kwargs={**connect_kwargs, "autocommit": True},
        min_size=1,
        max_size=max_size,
        timeout=checkout_timeout,
        max_lifetime=max_lifetime,
        configure=_configure(synchronous_commit),
        name=name,
        open=False,
    )
    try:
        await pool.open(wait=True, timeout=checkout_timeout)
    except BaseException:
        await pool.close()
        raise
    return pool


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


@asynccontextmanager
async def checked_out(pool: DriverPool, pre_ping: PrePing) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
    """A connection of ``pool``, checked as ``pre_ping`` says, returned (or discarded) afterwards."""
    conn = await pool.getconn()
    if await _is_dead(conn, pre_ping):
        await conn.close()  # returned closed, the pool discards it and opens another
        await pool.putconn(conn)
        await _replace_dead(pool)
        conn = await pool.getconn()
    try:
        yield conn
    except BaseException:
        lost = conn.broken or conn.closed
        await pool.putconn(conn)
        if lost:
            await _replace_dead(pool)
        raise
    await pool.putconn(conn)
