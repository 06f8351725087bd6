"""Reusable Postgres test helpers: schemas, migrations, started storages, catalogs, bulk rows.

Everything talks to a real server (the session ``pg_cluster``); nothing here fakes a port. Later
multi-process tests can import these too (the functions take DSNs, not fixtures).
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import uuid
from collections.abc import AsyncIterator, Iterable, Iterator
from typing import Any

import psycopg
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.ids import new_event_id
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.infrastructure.postgres import (
    PostgresStorage,
    get_postgres_storage_migration_sql,
    postgres_storage,
)
from runlane.infrastructure.postgres.rows import event_values, run_values
from runlane.infrastructure.postgres.schema import dumps_json
from runlane.testing.run_builders import RunData


def unique_schema_name(prefix: str = "t") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:16]}"


@contextlib.contextmanager
def scratch_schema(libpq_dsn: str, name: str | None = None, *, create: bool = True) -> Iterator[str]:
    """A uniquely named schema (created unless ``create=False``), dropped with everything in it."""
    schema = name or unique_schema_name()
    if create:
        with psycopg.connect(libpq_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("create schema {}").format(sql.Identifier(schema)))
    try:
        yield schema
    finally:
        with psycopg.connect(libpq_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(schema)))


def migrate(libpq_dsn: str, schema: str) -> None:
    """Apply the full migration script in one transaction (what `psql -1 -f` would do)."""
    with psycopg.connect(libpq_dsn, connect_timeout=10) as conn:
        conn.execute(get_postgres_storage_migration_sql(schema))


@contextlib.asynccontextmanager
async def started_storage(dsn: str, schema: str | None, **options: Any) -> AsyncIterator[PostgresStorage]:
    storage = postgres_storage(connection_string=dsn, schema=schema, **options)
    await storage.start()
    try:
        yield storage
    finally:
        await storage.close()


def _mask(value: Any, schema: str) -> Any:
    if not isinstance(value, str):
        return value
    return value.replace(f'"{schema}".', "<schema>.").replace(f"{schema}.", "<schema>.")


def catalog(libpq_dsn: str, schema: str) -> dict[str, list[tuple[Any, ...]]]:
    """Tables, columns, indexes and constraints of ``schema``, with the schema name masked out."""
    queries = {
        "tables": """
            select c.relname, c.relkind from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = %(s)s and c.relkind in ('r', 'p', 'S', 'v', 'm') order by 1""",
        "columns": """
            select table_name, column_name, ordinal_position, data_type, is_nullable, column_default,
                   is_identity, identity_generation
            from information_schema.columns where table_schema = %(s)s order by 1, 3""",
        "indexes": """
            select tablename, indexname, indexdef from pg_indexes where schemaname = %(s)s order by 1, 2""",
        "constraints": """
            select cl.relname, co.conname, co.contype, co.condeferrable, co.condeferred,
                   pg_get_constraintdef(co.oid)
            from pg_constraint co join pg_class cl on cl.oid = co.conrelid
            join pg_namespace n on n.oid = co.connamespace
            where n.nspname = %(s)s order by 1, 2""",
    }
    masked: dict[str, list[tuple[Any, ...]]] = {}
    with psycopg.connect(libpq_dsn, connect_timeout=10) as conn:
        for name, query in queries.items():
            rows = conn.execute(query, {"s": schema}).fetchall()
            masked[name] = [
                tuple(v.replace(f"{schema}.", "<schema>.") if isinstance(v, str) else v for v in row)
                for row in rows
            ]
    return masked


_RUN_COLUMNS = (
    "environment",
    "id",
    "task_id",
    "queue",
    "status",
    "event_sequence",
    "created_at",
    "updated_at",
    "run_at",
    "available_at",
    "idempotency_key",
    "singleton_key",
    "concurrency_key",
    "lease_worker_id",
    "lease_expires_at",
    "record",
)
_EVENT_COLUMNS = ("id", "environment", "run_id", "sequence", "type", "occurred_at", "event")


def _copy_statement(schema: str, table: str, columns: Iterable[str]) -> sql.Composed:
    return sql.SQL("copy {} ({}) from stdin").format(
        sql.Identifier(schema, table), sql.SQL(", ").join(map(sql.Identifier, columns))
    )


def copy_runs(libpq_dsn: str, schema: str, runs: Iterable[RunData]) -> int:
    """Bulk-load runs and their events (no outbox rows) with COPY: fast fixtures for plan tests."""
    batch = list(runs)
    with psycopg.connect(libpq_dsn, connect_timeout=10) as conn, conn.cursor() as cur:
        with cur.copy(_copy_statement(schema, "runs", _RUN_COLUMNS)) as copy:
            for data in batch:
                values = run_values(data.run)
                values["record"] = dumps_json(values["record"])
                copy.write_row([values[column] for column in _RUN_COLUMNS])
        with cur.copy(_copy_statement(schema, "run_events", _EVENT_COLUMNS)) as copy:
            for data in batch:
                for sequence, event in enumerate(data.events, start=1):
                    values = event_values(RunEventRecord.of(event, id=new_event_id(), sequence=sequence))
                    values["event"] = dumps_json(values["event"])
                    copy.write_row([values[column] for column in _EVENT_COLUMNS])
    return len(batch)


def copy_run_records(libpq_dsn: str, schema: str, runs: Iterable[RunRecord]) -> int:
    """Bulk-load projections only (no events): tens of thousands of rows in a second or two."""
    count = 0
    with psycopg.connect(libpq_dsn, connect_timeout=10) as conn, conn.cursor() as cur:
        with cur.copy(_copy_statement(schema, "runs", _RUN_COLUMNS)) as copy:
            for run in runs:
                values = run_values(run)
                values["record"] = dumps_json(values["record"])
                copy.write_row([values[column] for column in _RUN_COLUMNS])
                count += 1
        conn.execute(sql.SQL("analyze {}").format(sql.Identifier(schema, "runs")))
    return count


def many(template: RunRecord, count: int, prefix: str, **changes: Any) -> Iterator[RunRecord]:
    """``count`` copies of ``template`` with ids ``<prefix>_<n>`` (and ``changes`` applied)."""
    for index in range(count):
        yield dataclasses.replace(template, id=f"{prefix}_{index:06d}", **changes)


async def driver_plans(conn: AsyncConnection, statement: Any, params: dict[str, Any]) -> tuple[str, str]:
    """Custom and generic plans of a ``driver_statements`` statement, as psycopg sends it.

    psycopg prepares a statement on the server after a few executions, and Postgres may then
    switch to a generic plan that never sees the parameter values, so both must use the index.
    """
    compiled = statement.compile(dialect=conn.dialect)
    values = compiled.construct_params(params)
    raw = await conn.get_raw_connection()
    driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
    cursor = await driver.execute(f"EXPLAIN {compiled.string}", values)
    custom = "\n".join(row[0] for row in await cursor.fetchall())
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    prepared = re.sub(r"%\((\w+)\)s", placeholder, compiled.string)
    await driver.execute(f"PREPARE plan_check AS {prepared}")
    try:
        await driver.execute("SET plan_cache_mode = force_generic_plan")
        arguments = sql.SQL(", ").join(sql.Literal(values[name]) for name in names)
        cursor = await driver.execute(sql.SQL("EXPLAIN EXECUTE plan_check({})").format(arguments))
        generic = "\n".join(row[0] for row in await cursor.fetchall())
    finally:
        await driver.execute("RESET plan_cache_mode")
        await driver.execute("DEALLOCATE plan_check")
    return custom, generic
