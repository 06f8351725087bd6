"""Large batches of plain creates go as chunked statements pipelined in one transaction.

``batch_appends.write_pipelined_creates``: the server writes one chunk while the next is staged,
so nothing of the batch may commit unless all of it does, results keep the input order, and a
run id that already existed loses alone, as on the one-statement path.
"""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from runlane.domain.errors import RunlaneError
from runlane.domain.values import Environment
from runlane.domain.vocabulary import ErrorCode, StorageConflictKind
from runlane.infrastructure.postgres import PostgresStorage
from runlane.infrastructure.postgres.batch_appends import PIPELINE_CHUNK
from runlane.ports.storage_commands import AppendManyRunEvents, AppendRunEvents, AppendRunEventsResult
from runlane.testing.clocks import ControlledClock
from runlane.testing.run_builders import RunData, create_queued_run_data, delivery_requested_event
from tests.integration.postgres.statement_recorder import recorded_statements

COUNT = 5 * PIPELINE_CHUNK


def _creates(env: Environment, clock: ControlledClock, run_ids: list[str]) -> list[AppendRunEvents]:
    return [
        create_queued_run_data(run_id, now=clock.now(), environment=env).append_command(clock.now())
        for run_id in run_ids
    ]


async def _count(storage: PostgresStorage, table: sa.Table, env: Environment) -> int:
    query = sa.select(sa.func.count()).select_from(table).where(table.c.environment == env.name)
    async with storage.engine.connect() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_a_large_batch_of_creates_is_one_transaction_of_chunked_statements_in_input_order(
    pg_storage: PostgresStorage,
) -> None:
    clock = ControlledClock()
    env = Environment(f"pipe_{uuid.uuid4().hex[:10]}")
    # Input order unlike id order: chunks go in id order, results must come back in input order.
    run_ids = [f"run_{uuid.uuid4().hex}" for _ in range(COUNT)]
    commands = _creates(env, clock, run_ids)
    with recorded_statements(pg_storage.engine) as sent:
        result = await pg_storage.append_many_run_events(
            AppendManyRunEvents(environment=env, commands=tuple(commands))
        )
    assert len(sent) == 5 and all("INSERT INTO" in text and "unnest" in text for text in sent), sent
    assert all(isinstance(item, AppendRunEventsResult) for item in result.results)
    assert [item.run.id for item in result.results if isinstance(item, AppendRunEventsResult)] == run_ids
    assert await _count(pg_storage, pg_storage.tables.runs, env) == COUNT
    assert await _count(pg_storage, pg_storage.tables.run_events, env) == sum(len(c.events) for c in commands)


async def test_an_invalid_item_after_chunks_were_sent_leaves_nothing_written(
    pg_storage: PostgresStorage,
) -> None:
    clock = ControlledClock()
    env = Environment(f"pipe_{uuid.uuid4().hex[:10]}")
    commands = _creates(env, clock, [f"run_a{n:05d}" for n in range(COUNT - 1)])
    # Last in id order, so four chunks are already on the server when it fails to stage: a
    # create whose first event is not run.created.
    created = create_queued_run_data("run_zzz", now=clock.now(), environment=env)
    delivery = delivery_requested_event(created.run, now=clock.now())
    bad = RunData(events=(delivery,), run=created.run).append_command(clock.now())
    with recorded_statements(pg_storage.engine) as sent, pytest.raises(RunlaneError) as failed:
        await pg_storage.append_many_run_events(
            AppendManyRunEvents(environment=env, commands=(*commands, bad))
        )
    assert failed.value.code is ErrorCode.INVARIANT_VIOLATION
    assert len([text for text in sent if "INSERT INTO" in text]) == 4, sent
    assert await _count(pg_storage, pg_storage.tables.runs, env) == 0
    assert await _count(pg_storage, pg_storage.tables.run_events, env) == 0


async def test_an_existing_run_id_in_a_large_batch_loses_alone(pg_storage: PostgresStorage) -> None:
    clock = ControlledClock()
    env = Environment(f"pipe_{uuid.uuid4().hex[:10]}")
    (existing,) = _creates(env, clock, ["run_existing"])
    await pg_storage.append_run_events(existing)
    run_ids = [f"run_{n:05d}" for n in range(COUNT - 1)]
    run_ids.insert(COUNT // 2, "run_existing")
    result = await pg_storage.append_many_run_events(
        AppendManyRunEvents(environment=env, commands=tuple(_creates(env, clock, run_ids)))
    )
    lost = result.results[COUNT // 2]
    assert isinstance(lost, RunlaneError) and lost.code is ErrorCode.STORAGE_CONFLICT
    assert (lost.meta or {})["kind"] == StorageConflictKind.SEQUENCE.value
    assert (lost.meta or {}).get("actual_sequence") == len(existing.events), lost.meta
    others = [item for n, item in enumerate(result.results) if n != COUNT // 2]
    assert all(isinstance(item, AppendRunEventsResult) for item in others)
    assert await _count(pg_storage, pg_storage.tables.runs, env) == COUNT
    # The existing run kept its own events only: nothing of the losing create was written.
    assert await _count(pg_storage, pg_storage.tables.run_events, env) == len(existing.events) * COUNT
