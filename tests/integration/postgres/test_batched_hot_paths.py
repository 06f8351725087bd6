"""Batched hot paths cost a constant number of statements, with SQL text that does not vary with N.

Statements are counted at the driver (``statement_recorder``: SQLAlchemy's ``before_cursor_execute``
and the direct psycopg path of ``driver_statements``), so a per-run
statement anywhere on the path would show up as a count that grows with the batch.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager

import pytest

from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import RunStatus
from runlane.infrastructure.postgres import PostgresStorage, claims
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    AppendPlan,
    AppendRunEventsResult,
    ClaimDueRuns,
)
from runlane.testing.clocks import ControlledClock
from runlane.testing.run_builders import (
    create_queued_run_data,
    lease_claimed_event,
    next_run_data,
    succeeded_event,
)
from tests.integration.postgres.helpers import started_storage
from tests.integration.postgres.statement_recorder import recorded_statements as record_statements
from tests.support.pg_cluster import PostgresCluster


@pytest.fixture
async def one_connection_storage(
    pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> AsyncIterator[PostgresStorage]:
    """Pools of exactly one connection, so server-side prepared statements can be inspected."""
    async with started_storage(
        pg_cluster.dsn, pg_migrated_schema, pool_size=1, max_overflow=0, pool_pre_ping=False
    ) as storage:
        yield storage


@contextmanager
def recorded_statements(storage: PostgresStorage) -> Iterator[list[str]]:
    with record_statements(storage.engine) as statements:
        yield statements


def _hot_environment() -> Environment:
    """An environment of its own per test (and per batch size), so counts and plans are its own."""
    return Environment(f"hot_{uuid.uuid4().hex[:10]}")


async def _create(storage: PostgresStorage, env: Environment, clock: ControlledClock, count: int) -> None:
    commands = tuple(
        create_queued_run_data(f"run_{uuid.uuid4().hex}", now=clock.now(), environment=env).append_command(
            clock.now()
        )
        for _ in range(count)
    )
    result = await storage.append_many_run_events(AppendManyRunEvents(environment=env, commands=commands))
    assert all(isinstance(item, AppendRunEventsResult) for item in result.results)


def _lease_plan(clock: ControlledClock) -> object:
    def plan(run: RunRecord) -> AppendPlan:
        return next_run_data(run, lease_claimed_event(run, now=clock.now(), worker_id="w")).plan()

    return plan


async def _claim_and_finish(
    storage: PostgresStorage, env: Environment, clock: ControlledClock, count: int
) -> tuple[list[str], list[str]]:
    with recorded_statements(storage) as claim_sql:
        claimed = await storage.claim_due_runs(
            ClaimDueRuns(environment=env, now=clock.now(), limit=count, plan=_lease_plan(clock))  # type: ignore[arg-type]
        )
    assert len(claimed) == count
    commands = tuple(
        next_run_data(c.run, succeeded_event(c.run, now=clock.now())).append_command(clock.now())
        for c in claimed
    )
    with recorded_statements(storage) as finish_sql:
        result = await storage.append_many_run_events(AppendManyRunEvents(environment=env, commands=commands))
    finished = [item for item in result.results if isinstance(item, AppendRunEventsResult)]
    assert len(finished) == count
    assert {item.run.status for item in finished} == {RunStatus.SUCCEEDED}
    return claim_sql, finish_sql


async def test_claims_and_batched_completions_cost_the_same_statements_for_32_and_100_runs(
    pg_storage: PostgresStorage,
) -> None:
    """From ``claims.HELD_WRITE_MIN_RUNS`` runs a claim writes by row version, below it by id
    (test_held_run_writes): two texts in all, neither depending on the batch size."""
    clock = ControlledClock()
    shapes = []
    for count in (claims.HELD_WRITE_MIN_RUNS, 100):
        env = _hot_environment()
        await _create(pg_storage, env, clock, count)
        claim_sql, finish_sql = await _claim_and_finish(pg_storage, env, clock, count)
        # One locking SELECT, one statement writing runs + events; completions: one statement.
        assert len(claim_sql) == 2, claim_sql
        assert "FOR UPDATE OF runs SKIP LOCKED" in claim_sql[0]
        assert len(finish_sql) == 1, finish_sql
        shapes.append((claim_sql, finish_sql))
    assert shapes[0] == shapes[1], "the SQL text must not depend on the batch size"


async def test_batched_creates_are_one_statement(pg_storage: PostgresStorage) -> None:
    """Below two pipeline chunks (test_pipelined_creates: larger batches, one statement per chunk)."""
    clock = ControlledClock()
    env = _hot_environment()
    with recorded_statements(pg_storage) as statements:
        await _create(pg_storage, env, clock, 50)
    assert len(statements) == 1


async def test_repeated_hot_statements_are_prepared_on_the_server(
    one_connection_storage: PostgresStorage,
) -> None:
    storage, clock, env = one_connection_storage, ControlledClock(), _hot_environment()
    for _ in range(7):  # psycopg prepares a statement on its 5th execution (prepare_threshold)
        await _create(storage, env, clock, 3)
        await _claim_and_finish(storage, env, clock, 3)
    # The hot statements run on the psycopg pool (one connection here): its session holds them.
    texts = [text for text, _, _ in await _prepared(storage)]
    assert any("unnest" in text and "INSERT INTO" in text for text in texts), texts
    assert any("SKIP LOCKED" in text for text in texts), texts
    assert any("UPDATE" in text and "unnest" in text and "w_runs" in text for text in texts), texts


async def test_one_run_updates_reuse_the_servers_generic_plan_instead_of_planning_each_time(
    one_connection_storage: PostgresStorage,
) -> None:
    """A one-run claim's write and a one-run outcome bind their run's values as scalars
    (``bulk.RunWrite.ONE``). With one-element arrays instead, Postgres judged the generic plan
    (which assumes ten rows per array) dearer than a custom one and planned every execution
    again: 0.6 ms of the statement's 0.9 ms of server time."""
    storage, clock, env = one_connection_storage, ControlledClock(), _hot_environment()
    await _create(storage, env, clock, 30)
    for _ in range(30):  # past psycopg's threshold (5) and the server's first 5 custom plans
        await _claim_and_finish(storage, env, clock, 1)
    # psycopg prepares one statement per parameter types: a claim binds a lease expiry, an
    # outcome a NULL, so the same text may be prepared twice. Each must have kept its generic plan.
    await _assert_generic_plans_kept(storage, "AS w_expected) AS r WHERE")


async def test_one_run_creates_bind_scalars_and_keep_the_servers_generic_plan(
    one_connection_storage: PostgresStorage,
) -> None:
    """A trigger's create of one run with one outbox row (``bulk.RunWrite.CREATE_ONE``)."""
    storage, clock, env = one_connection_storage, ControlledClock(), _hot_environment()
    for _ in range(30):
        data = create_queued_run_data(f"run_{uuid.uuid4().hex}", now=clock.now(), environment=env)
        await storage.append_run_events(data.append_command(clock.now()))
    await _assert_generic_plans_kept(storage, "AS published_at) AS o")


async def _prepared(storage: PostgresStorage, marker: str = "") -> list[tuple[str, int, int]]:
    """(text, generic plans, custom plans) of the psycopg pool's prepared statements holding ``marker``."""
    async with storage.driver_pool.connection() as conn:
        cursor = await conn.execute(
            "select statement, generic_plans, custom_plans from pg_prepared_statements"
            " where statement like %s",
            (f"%{marker}%",),
        )
        return await cursor.fetchall()


async def _assert_generic_plans_kept(storage: PostgresStorage, marker: str) -> None:
    """The prepared statements whose text holds ``marker`` planned at most 5 executions (the
    server's first custom plans) and reused their generic plan for the other 25 or so."""
    rows = [(generic, custom) for _, generic, custom in await _prepared(storage, marker)]
    assert rows, f"no prepared statement holds {marker!r}"
    for generic, custom in rows:
        assert custom <= 5, rows
        assert generic >= 15, rows
