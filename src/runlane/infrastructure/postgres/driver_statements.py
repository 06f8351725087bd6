"""Hot statements executed on the pooled psycopg connection itself.

SQLAlchemy's async execution path (greenlet hand-off, execution context, result wrapping) costs
about 0.3 ms of CPU per statement, more than the round trip to a local server. The few statements
on the hottest paths (set-based run writes, outbox completions, NOTIFY) are built with SQLAlchemy
Core once, compiled once per dialect here, and sent straight to psycopg on the connection
SQLAlchemy checked out, inside its transaction when there is one. psycopg still prepares them
server-side after a few executions. Only statements whose parameters need no SQLAlchemy bind
processing (text, integers, array literals) may come here.

They are compiled with ``$n`` placeholders and sent through psycopg's raw cursor: psycopg parses a
``%(name)s`` query on every execution once it is longer than 4 KB (its conversion cache holds only
shorter ones), which for the set-based writes cost more CPU than the rest of the call.

They run either on the connection SQLAlchemy checked out (inside its transaction when there is
one) or on a connection of the storage's own psycopg pool (``driver_pool``: single autocommit
statements, and claims of unbounded queues in a psycopg transaction). Driver errors are re-raised
as the SQLAlchemy ``DBAPIError`` subclass SQLAlchemy itself would raise, so
``errors.translate_error`` treats both paths alike; a SQLAlchemy connection the error broke is
invalidated so its pool never hands it out again (the psycopg pool discards a broken connection
when it is returned).
"""

from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.psycopg import PGDialectAsync_psycopg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

from runlane.domain.errors import invariant_violation

# Either connection: SQLAlchemy's (the pooled psycopg connection is reached through it) or psycopg's.
Driver = AsyncConnection | psycopg.AsyncConnection[Any]

# The storage's engine is always ``postgresql+psycopg`` (``connection.DRIVER``) and async;
# ``$1, $2, ...`` placeholders are what a raw cursor sends.
_DIALECT: Dialect = PGDialectAsync_psycopg(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]


@lru_cache(maxsize=1024)
def _compiled(statement: ClauseElement) -> tuple[SQLCompiler, str, tuple[str, ...]]:
    """Compiled once per statement object (they are built once and cached by their modules).

    Bounded, so statements rebuilt after their builders' caches evicted them (many schemas in one
    process) are eventually released too.
    """
    compiled = statement.compile(dialect=_DIALECT)
    assert isinstance(compiled, SQLCompiler)
    if "POSTCOMPILE" in compiled.string:
        # Expanding ``IN`` parameters are rendered by SQLAlchemy's own execution path only.
        raise invariant_violation("A driver statement cannot use an expanding IN parameter.")
    return compiled, compiled.string, tuple(compiled.positiontup or ())


async def execute(
    conn: Driver, statement: ClauseElement, params: Mapping[str, Any], *, prepare: bool | None = None
) -> psycopg.AsyncRawCursor[Any]:
    """Run ``statement`` with ``params`` on ``conn``'s psycopg connection; the cursor holds the result.

    ``prepare=False``: never prepared, so the server plans every execution with its parameter
    values (for a statement whose cached generic plan would be wrong as the table grows).
    """
    compiled, sql, order = _compiled(statement)
    named = compiled.construct_params(dict(params)) or {}
    values = [named[name] for name in order]
    if isinstance(conn, AsyncConnection):
        proxied = await conn.get_raw_connection()
        driver: psycopg.AsyncConnection[Any] = proxied.driver_connection  # type: ignore[assignment]
    else:
        driver = conn
    try:
        cursor: psycopg.AsyncRawCursor[Any] = psycopg.AsyncRawCursor(driver)
        await cursor.execute(sql, values, prepare=prepare)
        return cursor
    except psycopg.Error as exc:
        lost = driver.broken or driver.closed
        if lost and isinstance(conn, AsyncConnection):
            await conn.invalidate(exc)
        raise sa_exc.DBAPIError.instance(
            sql, values, exc, psycopg.Error, connection_invalidated=lost
        ) from exc


async def scalars(
    conn: Driver, statement: ClauseElement, params: Mapping[str, Any], *, prepare: bool | None = None
) -> Sequence[Any]:
    """The first column of every row ``statement`` returns."""
    cursor = await execute(conn, statement, params, prepare=prepare)
    return [row[0] for row in await cursor.fetchall()]
