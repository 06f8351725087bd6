"""Hot queries use their indexes on a realistic table: 50k terminal runs, 3k due ones.

The plans are read with ``EXPLAIN`` after ``ANALYZE``, using the exact statements the adapter
builds, so a change that silently turns a claim into a sequential scan fails here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import RunStatus
from runlane.infrastructure.postgres import PostgresStorage
from runlane.infrastructure.postgres.array_literals import array_literal
from runlane.infrastructure.postgres.claims import ClaimShape, candidates_statement, claim_statement
from runlane.infrastructure.postgres.reads import expired_leases_statement
from runlane.ports.storage_commands import AppendPlan, ClaimDueRuns
from runlane.testing.clocks import ControlledClock
from runlane.testing.run_builders import (
    TEST_TASK_ID,
    create_queued_run_data,
    lease_claimed_event,
    next_run_data,
    succeeded_event,
)
from tests.integration.postgres.helpers import copy_run_records, driver_plans, many
from tests.support.pg_cluster import PostgresCluster

ENV = Environment("plans")
TERMINAL_RUNS = 50_000
DUE_RUNS = 3_000


@pytest.fixture(scope="module")
def loaded_schema(pg_cluster: PostgresCluster, pg_migrated_schema: str) -> str:
    clock = ControlledClock()
    now = clock.now()
    queued = create_queued_run_data("run_template", now=now - timedelta(days=2), environment=ENV).run
    leased = next_run_data(queued, lease_claimed_event(queued, now=now - timedelta(days=2))).run
    done = next_run_data(leased, succeeded_event(leased, now=now - timedelta(days=1))).run
    assert done.status is RunStatus.SUCCEEDED
    copy_run_records(pg_cluster.libpq_dsn, pg_migrated_schema, many(done, TERMINAL_RUNS, "run_done"))
    due = create_queued_run_data("run_template", now=now - timedelta(minutes=5), environment=ENV).run
    copy_run_records(pg_cluster.libpq_dsn, pg_migrated_schema, many(due, DUE_RUNS, "run_due"))
    return pg_migrated_schema


@pytest.fixture
async def conn(pg_storage: PostgresStorage, loaded_schema: str) -> AsyncIterator[AsyncConnection]:
    async with pg_storage.engine.connect() as connection:
        yield connection


async def _plan(conn: AsyncConnection, statement: Any) -> str:
    compiled = statement.compile(dialect=conn.dialect, compile_kwargs={"render_postcompile": True})
    result = await conn.exec_driver_sql(f"EXPLAIN {compiled}", compiled.params)
    return "\n".join(row[0] for row in result)


async def test_the_due_run_claim_uses_the_due_index(
    conn: AsyncConnection, pg_storage: PostgresStorage
) -> None:
    t = pg_storage.tables
    now = ControlledClock().now()
    # reserve_dispatch's candidates (SQLAlchemy's execution path).
    plain = candidates_statement(t, environment=ENV.name, now=now, limit=50)
    plan = await _plan(conn, plain)
    assert "ix_runs_due" in plan, plan
    assert "Seq Scan on runs" not in plan, plan
    assert "LockRows" in plan, plan
    assert "Sort" not in plan, f"the claim must read the index in order, not sort the backlog:\n{plan}"


async def test_the_driver_claim_statement_uses_the_due_index_in_every_shape(
    conn: AsyncConnection, pg_storage: PostgresStorage
) -> None:
    now = ControlledClock().now()
    base = {"c_environment": ENV.name, "c_now": now, "c_limit": 50}
    any_queue = ClaimShape(queues=False, task_ids=True, bounded=False, closed=False, after=False)
    custom, generic = await driver_plans(
        conn,
        claim_statement(pg_storage.tables.schema, any_queue),
        {**base, "c_task_ids": array_literal([TEST_TASK_ID])},
    )
    for plan in (custom, generic):
        assert "ix_runs_due_any_queue" in plan, plan
        assert "Seq Scan on runs" not in plan, plan
        assert "LockRows" in plan, plan
        assert "Sort" not in plan, f"the claim must read the index in order, not sort the backlog:\n{plan}"

    everything = ClaimShape(queues=True, task_ids=True, bounded=True, closed=True, after=True)
    custom, generic = await driver_plans(
        conn,
        claim_statement(pg_storage.tables.schema, everything),
        {
            **base,
            "c_queues": array_literal(["default"]),
            "c_task_ids": array_literal([TEST_TASK_ID]),
            "c_bounded_queues": array_literal(["default"]),
            "c_bounded_limits": array_literal([5]),
            "c_closed_queues": array_literal(["default"]),
            "c_closed_keys": array_literal(["k", None]),
            "c_after_at": now - timedelta(days=3),
            "c_after_id": "run_",
        },
    )
    for plan in (custom, generic):
        assert "ix_runs_due" in plan, plan
        assert "Seq Scan on runs" not in plan, plan
        assert "LockRows" in plan, plan


async def test_expired_lease_and_operator_list_queries_use_indexes(
    conn: AsyncConnection, pg_storage: PostgresStorage
) -> None:
    r = pg_storage.tables.runs
    now = ControlledClock().now()
    expired = expired_leases_statement(pg_storage.tables, ENV.name, now, 100)
    assert "ix_runs_lease_expiry" in await _plan(conn, expired)
    page = (
        sa.select(r.c.record)
        .where(r.c.environment == ENV.name)
        .order_by(r.c.created_at.desc(), r.c.id.desc())
    )
    plan = await _plan(conn, page.limit(51))
    assert "ix_runs_created" in plan, plan
    prune = (
        sa.select(r.c.id)
        .where(
            r.c.environment == ENV.name,
            r.c.status.in_(["succeeded"]),
            r.c.updated_at < now - timedelta(hours=1),
        )
        .order_by(r.c.updated_at, r.c.id)
        .limit(501)
    )
    plan = await _plan(conn, prune)
    assert "Seq Scan on runs" not in plan, plan


async def test_claiming_from_the_loaded_table_takes_due_runs_only(
    pg_storage: PostgresStorage, loaded_schema: str
) -> None:
    clock = ControlledClock()

    def plan(run: RunRecord) -> AppendPlan:
        return next_run_data(run, lease_claimed_event(run, now=clock.now())).plan()

    claimed = await pg_storage.claim_due_runs(
        ClaimDueRuns(environment=ENV, now=clock.now(), limit=100, plan=plan)
    )
    assert len(claimed) == 100
    assert all(item.run.id.startswith("run_due_") for item in claimed)
    assert [item.run.id for item in claimed] == sorted(item.run.id for item in claimed)
    assert all(item.run.status is RunStatus.RUNNING for item in claimed)
