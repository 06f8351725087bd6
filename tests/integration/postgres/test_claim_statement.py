"""The due-run claim statement sent straight to psycopg (``claims.claim_statement``).

It is built once per filter shape with array parameters instead of SQLAlchemy's per-call
statement, so these pin what it must still do: read the record back exactly, apply every
filter shape (queues, task ids, per-queue limits, partitions closed in earlier scan rounds),
and never turn a statement into one with an expanding parameter. Query plans: test_query_plans.
"""

from __future__ import annotations

import itertools
import json
from datetime import timedelta

import pytest
from sqlalchemy.dialects.postgresql.psycopg import PGDialect_psycopg

from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import RunStatus
from runlane.infrastructure.postgres import PostgresStorage
from runlane.infrastructure.postgres.claims import ClaimShape, claim_statement
from runlane.infrastructure.postgres.schema import RUNNABLE_STATUS_VALUES
from runlane.ports.storage_commands import ReserveDispatch
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment


@pytest.fixture
def kit(pg_storage: PostgresStorage) -> StorageKit:
    return StorageKit(storage=pg_storage, environment=unique_environment("claim"), clock=ControlledClock())


async def _queued(kit: StorageKit, **options: object) -> RunRecord:
    """A due run created one second after the previous one, so claim order is creation order."""
    kit.clock.advance("1s")
    return (await kit.create(with_delivery=False, **options)).run


def test_every_shape_is_built_once_and_compiles_without_expanding_parameters() -> None:
    dialect = PGDialect_psycopg()
    for flags in itertools.product((False, True), repeat=5):
        shape = ClaimShape(*flags)
        statement = claim_statement("public", shape)
        assert claim_statement("public", shape) is statement
        sql = statement.compile(dialect=dialect).string
        assert "POSTCOMPILE" not in sql
        # The runnable statuses are constants in the SQL, as the partial due indexes need.
        assert "status IN (" + ", ".join(f"'{value}'" for value in RUNNABLE_STATUS_VALUES) + ")" in sql
        assert "FOR UPDATE OF runs SKIP LOCKED" in sql


async def test_the_claimed_record_reads_back_exactly(kit: StorageKit) -> None:
    payload = {"zeta": 1, "alpha": {"b": 2, "a": 1}, "nul": "a\u0000b", "float": 1.0, "big": 2**80}
    created = await _queued(kit, payload=payload)
    (claimed,) = await kit.storage.claim_due_runs(kit.claim_due())
    assert claimed.run.id == created.id
    assert claimed.run.payload == payload
    # Key order, 1.0 as a float and the big integer survive (no JSON loader normalised them).
    assert json.dumps(claimed.run.payload) == json.dumps(payload)
    assert type(claimed.run.payload["float"]) is float
    assert claimed.run.status is RunStatus.RUNNING
    assert await kit.require(created.id) == claimed.run


async def test_queue_and_task_filters_select_only_matching_runs(kit: StorageKit) -> None:
    # Names that need quoting inside an array literal travel as array parameters intact.
    x, a = 'x "q", {1} \\ NULL', "task.a 'quoted'"
    wanted = await _queued(kit, queue=x, task_id=a)
    await _queued(kit, queue=x, task_id="task.b")
    await _queued(kit, queue="y", task_id=a)
    also_wanted = await _queued(kit, queue=x, task_id=a)
    claimed = await kit.storage.claim_due_runs(kit.claim_due(queues=(x,), task_ids=(a, "task.c")))
    assert [item.run.id for item in claimed] == [wanted.id, also_wanted.id]
    any_queue = await kit.storage.claim_due_runs(kit.claim_due(task_ids=("task.b",)))
    assert [(item.run.queue, item.run.task_id) for item in any_queue] == [(x, "task.b")]
    assert await kit.storage.claim_due_runs(kit.claim_due(task_ids=("NULL",))) == ()
    bounded = await kit.storage.claim_due_runs(kit.claim_due(concurrency_limits={x: 5, "y": 1}))
    assert [(item.run.queue, item.run.task_id) for item in bounded] == [("y", a)]


async def test_each_bounded_queue_gets_its_own_limit(kit: StorageKit) -> None:
    busy = await _queued(kit, queue="one")
    (leased,) = await kit.storage.claim_due_runs(kit.claim_due(queues=("one",)))
    assert leased.run.id == busy.id
    for queue in ("one", "two", "free"):
        for _ in range(3):
            await _queued(kit, queue=queue)
    claimed = await kit.storage.claim_due_runs(
        kit.claim_due(limit=20, concurrency_limits={"one": 1, "two": 2})
    )
    by_queue = sorted(item.run.queue for item in claimed)
    # "one" is full already, "two" takes two of three, an unbounded queue takes everything.
    assert by_queue == ["free", "free", "free", "two", "two"]


async def test_a_full_keyed_partition_does_not_hide_unkeyed_runs_of_its_queue(kit: StorageKit) -> None:
    # Round one locks both keyed runs; the first fills partition (bounded, k), the second is
    # skipped, so round two leaves that partition out. The unkeyed run is another partition.
    first = await _queued(kit, queue="bounded", concurrency_key="k")
    await _queued(kit, queue="bounded", concurrency_key="k")
    unkeyed = await _queued(kit, queue="bounded")
    claimed = await kit.storage.claim_due_runs(kit.claim_due(limit=2, concurrency_limits={"bounded": 1}))
    assert [item.run.id for item in claimed] == [first.id, unkeyed.id]


async def test_dispatch_reservations_do_not_hide_unkeyed_runs_either(kit: StorageKit) -> None:
    first = await _queued(kit, queue="bounded", concurrency_key="k")
    await _queued(kit, queue="bounded", concurrency_key="k")
    unkeyed = await _queued(kit, queue="bounded")
    reserved = await kit.storage.reserve_dispatch(
        ReserveDispatch(
            environment=kit.environment,
            queue="bounded",
            concurrency_limit=1,
            dispatch_timeout_ms=None,
            now=kit.now,
            limit=2,
            plan=kit.delivery_plan(),
        )
    )
    assert [item.run.id for item in reserved] == [first.id, unkeyed.id]


async def test_a_run_holding_a_reservation_stays_claimable_in_a_closed_partition(kit: StorageKit) -> None:
    kit.clock.advance("10s")
    reserved_run = (await kit.create(queue="bounded", concurrency_key="k", with_delivery=False)).run
    (reserved,) = await kit.storage.reserve_dispatch(
        ReserveDispatch(
            environment=kit.environment,
            queue="bounded",
            concurrency_limit=2,
            dispatch_timeout_ms=None,
            now=kit.now,
            limit=1,
            plan=kit.delivery_plan(),
        )
    )
    assert reserved.run.id == reserved_run.id
    # Two older keyed runs: round one leases the first (filling the partition: one lease plus
    # the reservation) and skips the second, so round two runs with the partition closed; the
    # reserved run still comes back, as it needs no free slot.
    first = (
        await kit.create(
            queue="bounded", concurrency_key="k", with_delivery=False, now=kit.now - timedelta(seconds=2)
        )
    ).run
    await kit.create(
        queue="bounded", concurrency_key="k", with_delivery=False, now=kit.now - timedelta(seconds=1)
    )
    claimed = await kit.storage.claim_due_runs(kit.claim_due(limit=2, concurrency_limits={"bounded": 2}))
    assert [item.run.id for item in claimed] == [first.id, reserved_run.id]
