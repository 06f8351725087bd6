"""Count the SQL statements a piece of code sends, whichever path sends them.

Most statements go through SQLAlchemy (seen by its ``before_cursor_execute`` event); the hottest
ones go straight to psycopg through ``driver_statements.execute`` (on SQLAlchemy's connection or
on one of the storage's psycopg pool), which is wrapped here for the duration of the block (the
real statement still runs).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql.elements import ClauseElement

from runlane.infrastructure.postgres import driver_statements


@contextmanager
def recorded_statements(engine: AsyncEngine) -> Iterator[list[str]]:
    statements: list[str] = []
    real_execute = driver_statements.execute

    def record(conn: object, cursor: object, statement: str, *rest: object) -> None:
        statements.append(statement)

    async def execute(
        conn: driver_statements.Driver,
        statement: ClauseElement,
        params: Mapping[str, Any],
        *,
        prepare: bool | None = None,
    ) -> Any:
        statements.append(str(statement.compile(dialect=engine.dialect)))
        return await real_execute(conn, statement, params, prepare=prepare)

    sync_engine = engine.sync_engine
    event.listen(sync_engine, "before_cursor_execute", record)
    driver_statements.execute = execute
    try:
        yield statements
    finally:
        driver_statements.execute = real_execute
        event.remove(sync_engine, "before_cursor_execute", record)
