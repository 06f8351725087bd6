"""The test app the process scripts run: queues, tasks per scenario, and handlers that leave proof.

Handlers write to plain tables next to runlane's (``ledger``, ``intervals``) through their own
psycopg connections, so what a handler did is recorded independently of the runtime under test.
``ledger`` has ``UNIQUE (run_id, attempt)``: an attempt executed twice is a unique violation, which
the handler counts (the worker reports it) and re-raises.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from runlane import RetryBackoff, RetryPolicy, Schedule, TaskContext, TaskDefinition, queue, task
from tests.integration.postgres.procs.jsonlines import emit

SCHEDULE_EVERY = "1m"
BOUNDED_LIMIT = 3

default_queue = queue("races", default=True)
bounded_queue = queue("bounded", concurrency_limit=BOUNDED_LIMIT)
QUEUES = (default_queue, bounded_queue)


def proof_tables_sql(schema: str) -> sql.Composed:
    """DDL of the handlers' proof tables in ``schema`` (the test creates them)."""
    return sql.SQL(
        """
        create table {ledger} (
            run_id text not null,
            attempt integer not null,
            pid integer not null,
            recorded_at double precision not null,
            unique (run_id, attempt)
        );
        create table {intervals} (
            run_id text not null,
            attempt integer not null,
            pid integer not null,
            started double precision not null,
            ended double precision not null
        );
        """
    ).format(ledger=sql.Identifier(schema, "ledger"), intervals=sql.Identifier(schema, "intervals"))


@dataclass
class HandlerState:
    """Per process: the handlers' own connections and what they observed."""

    schema: str = ""
    connections: asyncio.Queue[psycopg.AsyncConnection[Any]] | None = None
    opened: list[psycopg.AsyncConnection[Any]] = field(default_factory=list)
    duplicates: list[dict[str, Any]] = field(default_factory=list)
    hold_seconds: float = 0.02
    gate: asyncio.Event | None = None

    async def open(self, dsn: str, schema: str, size: int) -> None:
        self.schema = schema
        self.connections = asyncio.Queue()
        self.gate = asyncio.Event()
        for _ in range(size):
            conn = await psycopg.AsyncConnection.connect(
                dsn, autocommit=True, connect_timeout=10, application_name="runlane-race-handler"
            )
            self.opened.append(conn)
            self.connections.put_nowait(conn)

    async def close(self) -> None:
        for conn in self.opened:
            await conn.close()
        self.opened.clear()

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        assert self.connections is not None, "HandlerState.open() was not called"
        conn = await asyncio.wait_for(self.connections.get(), timeout=30)
        try:
            yield conn
        finally:
            self.connections.put_nowait(conn)

    async def record_attempt(self, context: TaskContext) -> None:
        """Insert (run_id, attempt, pid); a unique violation means this attempt ran twice."""
        statement = sql.SQL(
            "insert into {} (run_id, attempt, pid, recorded_at) values (%s, %s, %s, %s)"
        ).format(sql.Identifier(self.schema, "ledger"))
        async with self.connection() as conn:
            try:
                await conn.execute(statement, (context.run.id, context.attempt, os.getpid(), time.time()))
            except psycopg.errors.UniqueViolation:
                self.duplicates.append({"run_id": context.run.id, "attempt": context.attempt})
                raise


STATE = HandlerState()


async def record_attempt(payload: Any, context: TaskContext) -> None:
    await STATE.record_attempt(context)


async def noop(payload: Any, context: TaskContext) -> None:
    return None


async def hold_interval(payload: Any, context: TaskContext) -> None:
    """Hold a bounded-queue slot for a moment and record when this handler was inside it."""
    started = time.time()
    await asyncio.sleep(STATE.hold_seconds)
    ended = time.time()
    statement = sql.SQL(
        "insert into {} (run_id, attempt, pid, started, ended) values (%s, %s, %s, %s, %s)"
    ).format(sql.Identifier(STATE.schema, "intervals"))
    async with STATE.connection() as conn:
        await conn.execute(statement, (context.run.id, context.attempt, os.getpid(), started, ended))


async def hold_first_attempt(payload: Any, context: TaskContext) -> None:
    """Attempt 1 announces itself and blocks until its signal aborts (or the test opens the gate)."""
    await STATE.record_attempt(context)
    if context.attempt > 1:
        emit("handler_finished", run_id=context.run.id, attempt=context.attempt)
        return
    emit("handler_started", run_id=context.run.id, attempt=context.attempt)
    assert STATE.gate is not None
    aborted = asyncio.ensure_future(context.signal.wait())
    gate = asyncio.ensure_future(STATE.gate.wait())
    try:
        await asyncio.wait({aborted, gate}, return_when=asyncio.FIRST_COMPLETED, timeout=60)
    finally:
        aborted.cancel()
        gate.cancel()
    emit(
        "handler_returning",
        run_id=context.run.id,
        attempt=context.attempt,
        signal_aborted=context.signal.aborted,
        signal_reason=context.signal.reason,
    )


ledger_task = task("races.ledger", run=record_attempt)
idempotent_task = task("races.idempotent", run=noop)
bounded_task = task("races.bounded", run=hold_interval, queue=bounded_queue)
scheduled_task = task(
    "races.scheduled", run=noop, schedule=Schedule(id="races-every-minute", every=SCHEDULE_EVERY)
)
fenced_task = task(
    "races.fenced",
    run=hold_first_attempt,
    retry=RetryPolicy(max_attempts=3, backoff=RetryBackoff(type="fixed", delay="10ms")),
)

# Each scenario registers only its own tasks, so a tick never materialises another test's schedule.
SCENARIOS: Mapping[str, Sequence[TaskDefinition]] = {
    "ledger": (ledger_task,),
    "idempotent": (idempotent_task,),
    "bounded": (bounded_task,),
    "schedule": (scheduled_task,),
    "fencing": (fenced_task,),
}
