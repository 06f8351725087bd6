"""Hot statements executed on the pooled psycopg connection itself.

SQLAlchemy's async execution path (greenlet hand-off, execution context, result wrapping) costs
about 0.3 ms of CPU per statement, more than the round trip to a local server. The few statements
on the hottest paths (set-based run writes, outbox completions, NOTIFY) are built with SQLAlchemy
Core once, compiled once per dialect here, and sent straight to psycopg on the connection
SQLAlchemy checked out, inside its transaction when there is one. psycopg still prepares them
server-side after a few executions. Only statements whose parameters need no SQLAlchemy bind
processing (text, integers, array literals) may come here.

Driver errors are re-raised as the SQLAlchemy ``DBAPIError`` subclass SQLAlchemy itself would
raise, so ``errors.translate_error`` treats both paths alike; a connection the error broke is
invalidated so the pool never hands it out again.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Dialect
from sqlalchemy.engine.interfaces import Compiled
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ClauseElement

from runlane.domain.errors import invariant_violation

_COMPILED: dict[tuple[int, str], tuple[ClauseElement, Compiled, str]] = {}


def _compiled(statement: ClauseElement, dialect: Dialect) -> tuple[Compiled, str]:
    key = (id(statement), dialect.name)
    cached = _COMPILED.get(key)
    # The statement is kept in the entry, so its id cannot be reused by another object.
    if cached is None or cached[0] is not statement:
        compiled = statement.compile(dialect=dialect)
        if "POSTCOMPILE" in compiled.string:
            # Expanding ``IN`` parameters are rendered by SQLAlchemy's own execution path only.
            raise invariant_violation("A driver statement cannot use an expanding IN parameter.")
        cached = (statement, compiled, compiled.string)
        _COMPILED[key] = cached
    return cached[1], cached[2]


async def execute(
    conn: AsyncConnection, statement: ClauseElement, params: Mapping[str, Any]
) -> psycopg.AsyncCursor[Any]:
    """Run ``statement`` with ``params`` on ``conn``'s psycopg connection; the cursor holds the result."""
    compiled, sql = _compiled(statement, conn.dialect)
    values = compiled.construct_params(dict(params))
    proxied = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = proxied.driver_connection  # type: ignore[assignment]
    try:
        return await driver.execute(sql, values)
    except psycopg.Error as exc:
        lost = driver.broken or driver.closed
        if lost:
            await conn.invalidate(exc)
        raise sa_exc.DBAPIError.instance(
            sql, values, exc, psycopg.Error, connection_invalidated=lost
        ) from exc


async def scalars(
    conn: AsyncConnection, statement: ClauseElement, params: Mapping[str, Any]
) -> Sequence[Any]:
    """The first column of every row ``statement`` returns."""
    cursor = await execute(conn, statement, params)
    return [row[0] for row in await cursor.fetchall()]
