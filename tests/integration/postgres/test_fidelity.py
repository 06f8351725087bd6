"""What goes in comes out: awkward ids, huge incompressible keys, exact JSON documents."""

from __future__ import annotations

import secrets

import psycopg
import pytest
from psycopg import sql

from runlane.domain.pages import PaginationParams
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import RunStatus
from runlane.infrastructure.postgres import PostgresStorage
from runlane.ports.storage_commands import (
    AppendPlan,
    ClaimDueRuns,
    GetRun,
    GetRunByIdempotencyKey,
    ListRuns,
    ReserveDispatch,
    ResetIdempotencyKey,
    RunFilter,
)
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment
from runlane.testing.run_builders import TEST_TASK_ID, delivery_requested_event, next_run_data
from tests.support.pg_cluster import PostgresCluster

AWKWARD = 'it\'s "quoted"; drop table runs; -- $$ $tag$ \\ %s %(x)s'


@pytest.fixture
def kit(pg_storage: PostgresStorage) -> StorageKit:
    return StorageKit(storage=pg_storage, environment=unique_environment("fid"), clock=ControlledClock())


def _huge_key() -> str:
    """About 10 kB of random text: pglz cannot shrink it under the ~2.7 kB btree entry limit."""
    return secrets.token_urlsafe(7_700)


async def test_ids_and_names_with_quotes_semicolons_and_dollars_round_trip(kit: StorageKit) -> None:
    env = Environment(f"env {AWKWARD}")
    awkward = StorageKit(storage=kit.storage, environment=env, clock=kit.clock)
    run_id = f"run {AWKWARD}"
    created = await awkward.create(run_id, task_id=f"task {AWKWARD}", queue=f"queue {AWKWARD}")
    assert await awkward.require(run_id) == created.run
    claimed = await awkward.claim(created.run, worker_id=f"worker {AWKWARD}")
    assert claimed.lease is not None
    assert (await awkward.require(run_id)).lease == claimed.lease
    assert [e.sequence for e in await awkward.events(run_id)] == [1, 2, 3]
    (row,) = await awkward.outbox(run_id)
    assert row.message.queue == f"queue {AWKWARD}"
    assert row.environment == env


async def test_ten_kilobyte_incompressible_keys_work_everywhere_keys_are_used(kit: StorageKit) -> None:
    idempotency_key, singleton_key, concurrency_key = _huge_key(), _huge_key(), _huge_key()
    first = await kit.create(
        queue="bounded",
        with_delivery=False,
        idempotency_key=idempotency_key,
        singleton_key=singleton_key,
        concurrency_key=concurrency_key,
    )
    again = await kit.create(idempotency_key=idempotency_key)
    assert again.returned_existing
    assert again.run.id == first.run.id
    stored = await kit.require(first.run.id)
    assert stored.idempotency_key == idempotency_key
    assert stored.concurrency_key == concurrency_key
    found = await kit.storage.get_run_by_idempotency_key(
        GetRunByIdempotencyKey(
            environment=kit.environment, task_id=TEST_TASK_ID, key=idempotency_key, now=kit.now
        )
    )
    assert found == stored
    page = await kit.storage.list_runs(
        ListRuns(filter=RunFilter(environment=kit.environment, singleton_key=singleton_key))
    )
    assert [run.id for run in page.data] == [first.run.id]

    # Bounded capacity keyed by the huge concurrency key: reservation, then lease, then full.
    kit.clock.advance("1s")
    second = (await kit.create(queue="bounded", with_delivery=False, concurrency_key=concurrency_key)).run

    def plan(run: RunRecord) -> AppendPlan:
        return next_run_data(run, delivery_requested_event(run, now=kit.now)).plan()

    reserved = await kit.storage.reserve_dispatch(
        ReserveDispatch(
            environment=kit.environment,
            queue="bounded",
            concurrency_limit=1,
            dispatch_timeout_ms=None,
            now=kit.now,
            limit=10,
            plan=plan,
        )
    )
    assert [item.run.id for item in reserved] == [first.run.id]
    claim = ClaimDueRuns(
        environment=kit.environment,
        now=kit.now,
        limit=10,
        plan=kit.lease_plan(),
        concurrency_limits={"bounded": 1},
    )
    (claimed,) = await kit.storage.claim_due_runs(claim)
    assert claimed.run.id == first.run.id
    assert claimed.run.status is RunStatus.RUNNING
    assert await kit.storage.claim_due_runs(claim) == ()
    assert (await kit.require(second.id)).status is RunStatus.QUEUED

    done = await kit.finish(claimed.run, RunStatus.SUCCEEDED)
    reset = ResetIdempotencyKey(
        environment=kit.environment, task_id=TEST_TASK_ID, key=idempotency_key, now=kit.now
    )
    assert await kit.storage.reset_idempotency_key(reset) is True
    assert await kit.require(done.id) == done


async def test_documents_are_stored_as_exact_json_text(
    kit: StorageKit, pg_cluster: PostgresCluster, pg_migrated_schema: str
) -> None:
    payload = {"zeta": 1, "alpha": {"b": 2, "a": 1}, "nul": "a\u0000b", "float": 1.0, "big": 2**80}
    run = (await kit.create(payload=payload)).run
    assert (await kit.require(run.id)).payload == payload
    with psycopg.connect(pg_cluster.libpq_dsn) as conn:
        table = sql.Identifier(pg_migrated_schema, "runs")
        query = sql.SQL("select record::text from {} where environment = %s and id = %s").format(table)
        row = conn.execute(query, (kit.environment.name, run.id)).fetchone()
        assert row is not None
        text = row[0]
        # Key order, the NUL escape, 1.0 and the big integer are kept as written; jsonb would
        # reorder keys, normalise 1.0 and refuse \u0000 outright.
        assert '"payload":{"zeta":1,"alpha":{"b":2,"a":1},"nul":"a\\u0000b","float":1.0,"big":' in text
        with pytest.raises(psycopg.errors.UntranslatableCharacter):
            conn.execute(sql.SQL("select record::jsonb from {} where id = %s").format(table), (run.id,))


async def test_pages_cover_many_runs_with_ten_kilobyte_payloads(kit: StorageKit) -> None:
    payloads = {}
    for index in range(30):
        payload = {"index": index, "blob": secrets.token_hex(5_000)}
        payloads[(await kit.create(payload=payload)).run.id] = payload
    seen = {}
    cursor = None
    for _ in range(10):
        page = await kit.storage.list_runs(
            ListRuns(
                filter=RunFilter(environment=kit.environment),
                pagination=PaginationParams(limit=7, cursor=cursor),
            )
        )
        seen.update({run.id: run.payload for run in page.data})
        cursor = page.next_cursor
        if cursor is None:
            break
    assert seen == payloads
    one = next(iter(payloads))
    stored = await kit.storage.get_run(GetRun(environment=kit.environment, run_id=one))
    assert stored is not None
    assert stored.payload == payloads[one]
