"""Hot writes look runs up by primary key even before Postgres has statistics for the tables.

A fresh database has no column statistics until autovacuum analyzes it (up to a minute after the
first writes), so the planner takes ``environment = $1`` as very selective. A set-based update
whose only path to its runs was a join with the unnest'ed rows was then planned as a scan of the
whole environment per statement (with psycopg's prepared generic plan, for every claim and
outcome): on a fresh benchmark database, trigger-to-start latency reached seconds. The lock CTE
join makes every update reach its runs through ``pk_runs`` with the run id in the index
condition, whatever the statistics say, and the lock itself looks each id up (an unnest join:
``id = ANY(...)`` was planned as a filter over the whole environment).

These are plan checks; the fresh-database replay in the session notes (a steady 200 runs/s on an
empty database) is the end-to-end check, and a plan that passes here can still be chosen badly
there, so change these statements only with that replay.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import psycopg
import pytest
from psycopg import sql
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.values import Environment
from runlane.infrastructure.postgres import PostgresStorage, bulk, outbox
from runlane.infrastructure.postgres.array_literals import array_literal
from runlane.infrastructure.postgres.rows import event_values, run_values
from runlane.infrastructure.postgres.writes import stage_command
from runlane.ports.storage_commands import AppendManyRunEvents
from runlane.testing.clocks import ControlledClock
from runlane.testing.run_builders import create_queued_run_data, delivery_requested_event, next_run_data
from tests.integration.postgres.helpers import started_storage
from tests.integration.postgres.test_query_plans import _driver_plans
from tests.support.pg_cluster import PostgresCluster

ENV = Environment("fresh")
RUNS = 2_000
_PK_SCAN = re.compile(r"Index (?:Only )?Scan using pk_(runs|outbox_messages) on \w+")


@pytest.fixture
async def conn(
    pg_storage: PostgresStorage, pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> AsyncIterator[AsyncConnection]:
    with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True) as admin:
        for table in ("runs", "outbox_messages", "run_events"):
            # No autovacuum analyze may give the planner statistics while the test runs.
            admin.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(
                    sql.Identifier(pg_migrated_schema, table)
                )
            )
    clock = ControlledClock()
    commands = tuple(
        create_queued_run_data(f"run_{uuid.uuid4().hex}", now=clock.now(), environment=ENV).append_command(
            clock.now()
        )
        for _ in range(RUNS)
    )
    await pg_storage.append_many_run_events(AppendManyRunEvents(environment=ENV, commands=commands))
    async with pg_storage.engine.connect() as connection:
        stats = await connection.exec_driver_sql(
            "SELECT count(*) FROM pg_stats WHERE schemaname = %(schema)s AND tablename = 'runs'",
            {"schema": pg_migrated_schema},
        )
        assert stats.scalar_one() == 0, "the table must have no statistics for this test"
        yield connection


def _pk_lookups_by_id(plan: str) -> list[str]:
    """Each primary-key scan of ``plan`` with the index condition under it."""
    lines = plan.splitlines()
    scans = []
    for index, line in enumerate(lines):
        if _PK_SCAN.search(line):
            condition = next((later for later in lines[index + 1 :] if "Index Cond" in later), "")
            scans.append(f"{line.strip()} | {condition.strip()}")
    return scans


def _assert_reaches_rows_by_id(plan: str) -> None:
    scans = _pk_lookups_by_id(plan)
    assert scans, plan
    for scan in scans:
        assert re.search(r"\bid = ", scan), f"a primary-key scan without the id in its condition:\n{plan}"
    assert "Seq Scan on runs" not in plan, plan


async def test_a_run_update_reaches_its_run_by_id_without_statistics(
    conn: AsyncConnection, pg_storage: PostgresStorage
) -> None:
    clock = ControlledClock()
    run = create_queued_run_data("run_x", now=clock.now(), environment=ENV).run
    staged = stage_command(
        next_run_data(run, delivery_requested_event(run, now=clock.now())).append_command(clock.now())
    )
    built = bulk._statement(pg_storage.tables.schema, bulk.RunWrite.UPDATE)
    runs = [{**run_values(staged.new), "w_expected": staged.expected_sequence}]
    params: dict[str, Any] = {
        "w_environment": ENV.name,
        "w_run_ids": array_literal([staged.new.id]),
        **built.runs.params(runs, extra=("w_expected",)),
        **built.events.params([event_values(record) for record in staged.records]),
        **built.outbox.params(list(staged.outbox_rows)),
    }
    custom, generic = await _driver_plans(conn, built.statement, params)
    _assert_reaches_rows_by_id(custom)
    _assert_reaches_rows_by_id(generic)


async def test_an_outbox_completion_reaches_its_rows_by_id_without_statistics(
    conn: AsyncConnection, pg_storage: PostgresStorage
) -> None:
    built = outbox._complete_statement(pg_storage.tables.schema)
    now = ControlledClock().now()
    row = {
        "id": "outbox_x",
        "claim_token": "token",
        "status": "published",
        "updated_at": now,
        "published_at": now,
        "provider_message_id": None,
        "last_error": None,
        "available_at": None,
    }
    params = {"c_environment": ENV.name, "c_ids": array_literal(["outbox_x"]), **built.rows.params([row])}
    custom, generic = await _driver_plans(conn, built.statement, params)
    _assert_reaches_rows_by_id(custom)
    _assert_reaches_rows_by_id(generic)


_REMOVED = re.compile(r"Rows Removed by (?:Join )?Filter: (\d+)")


async def test_single_run_updates_executed_on_a_fresh_table_touch_only_their_run(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    """The plans the server actually runs, as psycopg prepares them, not only ``EXPLAIN``'s.

    One connection, so psycopg's prepared statement and the plan cache's choice (custom plans
    first, then a generic plan made while the table was still small) are the ones measured.
    ``auto_explain`` sends each executed update's plan back as a notice.
    """
    environment = Environment("fresh_exec")
    plans: list[str] = []
    async with started_storage(
        pg_cluster.dsn, pg_migrated_schema, pool_size=1, max_overflow=0, pool_pre_ping=False
    ) as storage:
        async with storage.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            driver: psycopg.AsyncConnection[Any] = raw.driver_connection  # type: ignore[assignment]
            driver.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
            for setting in (
                "LOAD 'auto_explain'",
                "SET auto_explain.log_min_duration = 0",
                "SET auto_explain.log_analyze = on",
                "SET auto_explain.log_nested_statements = on",
                "SET auto_explain.log_level = notice",
            ):
                await conn.exec_driver_sql(setting)
            await conn.commit()
        clock = ControlledClock()
        runs = [
            create_queued_run_data(f"run_{uuid.uuid4().hex}", now=clock.now(), environment=environment)
            for _ in range(RUNS)
        ]
        for start in range(0, RUNS, 500):  # the table grows while the statements get prepared
            commands = tuple(data.append_command(clock.now()) for data in runs[start : start + 500])
            await storage.append_many_run_events(
                AppendManyRunEvents(environment=environment, commands=commands)
            )
            for data in runs[start : start + 5]:
                run = data.run
                await storage.append_run_events(
                    next_run_data(run, delivery_requested_event(run, now=clock.now())).append_command(
                        clock.now()
                    )
                )
    updates = [plan for plan in plans if "Update on runs" in plan]
    assert len(updates) >= 20, f"auto_explain reported {len(updates)} updates"
    removed = [int(count) for plan in updates[-10:] for count in _REMOVED.findall(plan)]
    assert max(removed, default=0) < 50, "\n\n".join(updates[-1:])
