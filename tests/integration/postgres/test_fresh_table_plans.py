"""Hot writes look runs up by primary key even before Postgres has statistics for the tables.

A fresh database has no column statistics until autovacuum analyzes it (up to a minute after the
first writes), so the planner takes ``environment = $1`` as very selective. A set-based update
whose only path to its runs was a join with the unnest'ed rows was then planned as a scan of the
whole environment per statement (with psycopg's prepared generic plan, for every claim and
outcome): on a fresh benchmark database, trigger-to-start latency reached seconds. The lock CTE
join makes every update reach its runs through ``pk_runs`` with the run id in the index
condition, whatever the statistics say, and the lock itself looks each id up in a lateral
subquery (``id = ANY(...)`` was planned as a filter over the whole environment, and a plain join
of the unnest'ed ids as a hash join over all of it).

Every test gets a schema of its own, migrated and never analyzed (autovacuum off for its
tables): rows another test left behind change the planner's guesses, and with them in the
shared module schema the executed-plans test passed on the old lock.

The plan tests load 500 or more runs before the statements are prepared. On a database that
starts empty, psycopg's generic plan is made while the tables are a page or two; the last test
starts empty and counts the index scans the server ran (docs/performance.md, "What bounds each
runlane figure").

These are plan checks; the fresh-database replay in the session notes (a steady 200 runs/s on an
empty database) is the end-to-end check, and a plan that passes here can still be chosen badly
there, so change these statements only with that replay.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import psycopg
import pytest
from psycopg import sql

from runlane.domain.values import Environment
from runlane.domain.vocabulary import OutboxMessageStatus
from runlane.infrastructure.postgres import PostgresStorage, bulk, outbox
from runlane.infrastructure.postgres.writes import stage_command
from runlane.ports.storage_commands import AppendManyRunEvents, CompleteOutboxMessages, OutboxCompletion
from runlane.testing.clocks import ControlledClock
from runlane.testing.run_builders import create_queued_run_data, delivery_requested_event, next_run_data
from tests.integration.postgres.helpers import driver_plans, migrate, started_storage
from tests.support.pg_cluster import PostgresCluster

ENV = Environment("fresh")
RUNS = 2_000
UPDATES = 100
_PK_SCAN = re.compile(r"Index (?:Only )?Scan using pk_(runs|outbox_messages) on \w+")
_SEQ_SCAN = re.compile(r"Seq Scan on (?:runs|outbox_messages)\b")
_REMOVED = re.compile(r"Rows Removed by (?:Join )?Filter: (\d+)")


@pytest.fixture
def fresh_schema(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A migrated schema no statistics were ever gathered for, with autovacuum off for its tables."""
    name = f"t_fresh_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(name)))
    migrate(pg_cluster.libpq_dsn, name)
    with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True) as admin:
        for table in ("runs", "outbox_messages", "run_events"):
            admin.execute(
                sql.SQL("ALTER TABLE {} SET (autovacuum_enabled = false)").format(sql.Identifier(name, table))
            )
    try:
        yield name
    finally:
        with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))


@pytest.fixture
async def loaded(pg_cluster: PostgresCluster, fresh_schema: str) -> AsyncIterator[PostgresStorage]:
    """``RUNS`` queued runs in ``fresh_schema``, which still has no statistics."""
    async with started_storage(pg_cluster.dsn, fresh_schema, pool_size=2) as storage:
        clock = ControlledClock()
        commands = tuple(
            create_queued_run_data(
                f"run_{uuid.uuid4().hex}", now=clock.now(), environment=ENV
            ).append_command(clock.now())
            for _ in range(RUNS)
        )
        await storage.append_many_run_events(AppendManyRunEvents(environment=ENV, commands=commands))
        async with storage.engine.connect() as conn:
            stats = await conn.exec_driver_sql(
                "SELECT count(*) FROM pg_stats WHERE schemaname = %(schema)s AND tablename = 'runs'",
                {"schema": fresh_schema},
            )
            assert stats.scalar_one() == 0, "the table must have no statistics for this test"
        yield storage


def _assert_reaches_rows_by_id(plan: str) -> None:
    """Every primary-key scan of ``plan`` has the id in its index condition; no sequential scan."""
    lines = plan.splitlines()
    scans = 0
    for index, line in enumerate(lines):
        if _PK_SCAN.search(line):
            scans += 1
            condition = next((later for later in lines[index + 1 :] if "Index Cond" in later), "")
            assert re.search(r"\bid = ", condition), (
                f"a primary-key scan without the id in its condition:\n{plan}"
            )
    assert scans, plan
    assert _SEQ_SCAN.search(plan) is None, plan


async def _plans(storage: PostgresStorage, statement: Any, params: dict[str, Any]) -> tuple[str, str]:
    async with storage.engine.connect() as conn:
        return await driver_plans(conn, statement, params)


async def test_a_run_update_reaches_its_run_by_id_without_statistics(loaded: PostgresStorage) -> None:
    clock = ControlledClock()
    run = create_queued_run_data("run_x", now=clock.now(), environment=ENV).run
    staged = stage_command(
        next_run_data(run, delivery_requested_event(run, now=clock.now())).append_command(clock.now())
    )
    statement, params = bulk.staged_statement(loaded.tables.schema, [staged], bulk.RunWrite.UPDATE)
    for plan in await _plans(loaded, statement, params):
        _assert_reaches_rows_by_id(plan)


async def test_an_outbox_completion_reaches_its_rows_by_id_without_statistics(
    loaded: PostgresStorage,
) -> None:
    now = ControlledClock().now()
    command = CompleteOutboxMessages(
        environment=ENV,
        completions=(
            OutboxCompletion(
                id="outbox_x", claim_token="token", status=OutboxMessageStatus.PUBLISHED, at=now
            ),
        ),
    )
    built = outbox.completion_statement(loaded.tables.schema, command)
    assert built is not None
    for plan in await _plans(loaded, *built):
        _assert_reaches_rows_by_id(plan)


async def test_single_run_updates_executed_on_a_fresh_table_touch_only_their_run(
    pg_cluster: PostgresCluster, fresh_schema: str
) -> None:
    """The plans the server actually runs, as psycopg prepares them, not only ``EXPLAIN``'s.

    One connection (single-run appends are one statement, on the storage's psycopg pool), so
    psycopg's prepared statement and the plan cache's choice (custom plans first, then a generic
    plan made while the table was still small) are the ones measured. ``auto_explain`` sends each
    executed update's plan back as a notice.
    """
    environment = Environment("fresh_exec")
    plans: list[str] = []
    async with started_storage(
        pg_cluster.dsn, fresh_schema, pool_size=1, max_overflow=0, pool_pre_ping=False
    ) as storage:
        async with storage.driver_pool.connection() as driver:
            assert storage.driver_pool.max_size == 1
            driver.add_notice_handler(lambda notice: plans.append(notice.message_primary or ""))
            for setting in (
                "LOAD 'auto_explain'",
                "SET auto_explain.log_min_duration = 0",
                "SET auto_explain.log_analyze = on",
                "SET auto_explain.log_nested_statements = on",
                "SET auto_explain.log_level = notice",
            ):
                await driver.execute(setting)
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


def _index_scans(libpq_dsn: str, schema: str) -> dict[str, int]:
    with psycopg.connect(libpq_dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT indexrelname, idx_scan FROM pg_stat_user_indexes"
            " WHERE schemaname = %s AND relname = 'runs'",
            (schema,),
        ).fetchall()
    return {name: int(scans) for name, scans in rows}


async def test_creates_and_updates_on_a_fresh_table_look_runs_up_by_primary_key_only(
    pg_cluster: PostgresCluster, fresh_schema: str
) -> None:
    """Creating and updating runs reaches ``runs`` through its primary key only.

    Counted through the index scans the server records for ``runs`` (flushed when the storage's
    connections close), so every plan the server ran is seen, generic or custom.

    - Creates: events and outbox rows used to have a foreign key to ``runs``. Postgres plans the
      key check once per connection; on a table without statistics it chose ``ix_runs_updated``
      (environment first, id last), and every later check walked the whole environment: on a
      fresh database the server's time per trigger grew with every run (0.7 ms at first, 2.8 ms
      by 10,000 runs).
    - Updates: the lock of a set-based update joined the unnest'ed ids to ``runs``; psycopg's
      generic plan made that a hash join over a bitmap scan of ``ix_runs_updated`` for the whole
      environment, so a one-run claim grew from 2.1 to 6.3 ms over a 10 s replay on an empty
      database. Each id is now locked by a lateral primary-key lookup (``bulk.locked_in_id_order``).
    - A one-run update takes no separate lock: its values are scalar parameters and its row is
      reached by the whole primary key (``bulk.RunWrite.ONE``), one scan.
    """
    environment = Environment("fresh_lookups")
    clock = ControlledClock()
    creates = [
        create_queued_run_data(f"run_{uuid.uuid4().hex}", now=clock.now(), environment=environment)
        for _ in range(400)
    ]
    async with started_storage(pg_cluster.dsn, fresh_schema, pool_size=2) as storage:
        for data in creates[:200]:
            await storage.append_run_events(data.append_command(clock.now()))
        batch = tuple(data.append_command(clock.now()) for data in creates[200:])
        await storage.append_many_run_events(AppendManyRunEvents(environment=environment, commands=batch))
        # One at a time, as a worker's one-run claims and outcomes are: well past the five custom
        # plans after which psycopg's prepared statement may switch to a generic one.
        for data in creates[:UPDATES]:
            run = data.run
            await storage.append_run_events(
                next_run_data(run, delivery_requested_event(run, now=clock.now())).append_command(clock.now())
            )
    # Each create's ON CONFLICT check is one primary-key scan, and each one-run update one (its
    # row): once all are counted, every backend that wrote has flushed its counters (they do so
    # when they exit). Bounded wait.
    expected = len(creates) + UPDATES
    for _ in range(100):
        scans = _index_scans(pg_cluster.libpq_dsn, fresh_schema)
        if scans.get("pk_runs", 0) >= expected:
            break
        await asyncio.sleep(0.05)
    walked = {name: count for name, count in scans.items() if name != "pk_runs" and count}
    assert walked == {}, f"runs looked up through other indexes: {walked}"
    assert scans["pk_runs"] == expected, scans


async def test_a_claims_write_reaches_its_held_runs_by_row_version_without_statistics(
    loaded: PostgresStorage,
) -> None:
    """A large claim's write fetches each run by the version its locking query returned: one TID
    scan per run, no lock taken again and no index or sequential scan of ``runs``.

    Only the custom plan: the held write is never prepared (``bulk.write_staged``), because the
    generic plan made while ``runs`` was a page or two scans the table instead."""
    clock = ControlledClock()
    run = create_queued_run_data("run_x", now=clock.now(), environment=ENV).run
    staged = stage_command(
        next_run_data(run, delivery_requested_event(run, now=clock.now())).append_command(clock.now())
    )
    statement, params = bulk.staged_statement(
        loaded.tables.schema, [staged], bulk.RunWrite.HELD, {run.id: "(3,7)"}
    )
    custom, _ = await _plans(loaded, statement, params)
    assert re.search(r"Tid Scan on runs\b", custom), custom
    assert re.search(r"(?:Index|Index Only|Bitmap Heap|Seq) Scan (?:using \w+ )?on runs\b", custom) is None, (
        custom
    )
    assert "LockRows" not in custom, custom
