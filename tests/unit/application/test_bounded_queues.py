"""Bounded queues: capacity per (queue, concurrency key), reservations by tick, dispatch timeouts."""

import asyncio
from collections.abc import Callable

from runlane import RunEventType, RunStatus, TaskContext, queue, task
from runlane.application.runtime import Runlane
from runlane.testing import ControlledClock, list_run_event_types, wait_for_condition
from tests.unit.application.support import Harness, noop, outbox_rows, published


class Gates:
    """Handlers block until the test opens their gate; ``started`` records who is running."""

    def __init__(self) -> None:
        self.started: list[int] = []
        self.running: set[int] = set()
        self.max_running = 0
        self._gates: dict[int, asyncio.Event] = {}

    def gate(self, n: int) -> asyncio.Event:
        return self._gates.setdefault(n, asyncio.Event())

    async def handler(self, payload: dict[str, int], context: TaskContext) -> None:
        n = payload["n"]
        self.started.append(n)
        self.running.add(n)
        self.max_running = max(self.max_running, len(self.running))
        try:
            await asyncio.wait_for(self.gate(n).wait(), timeout=10)
        finally:
            self.running.discard(n)

    def open_all(self) -> None:
        for n in range(1000):
            self.gate(n).set()


async def _until(condition: Callable[[], bool]) -> None:
    await wait_for_condition(condition, timeout=5)


async def _delivery_requested(runtime: Runlane, run_ids: list[str]) -> list[str]:
    result = []
    for run_id in run_ids:
        if RunEventType.DELIVERY_REQUESTED in await list_run_event_types(runtime, run_id):
            result.append(run_id)
    return result


async def test_runs_beyond_the_limit_wait_for_a_free_slot(harness: Harness) -> None:
    limited = queue("limited", concurrency_limit=2)
    gates = Gates()
    job = task("jobs.bounded", run=gates.handler, queue=limited)
    runtime = harness.runtime([job], queues=[limited])
    for n in range(4):
        await runtime.trigger(job, {"n": n})
    # bounded queues get no outbox row at trigger time
    assert published(runtime) == ()
    assert await outbox_rows(runtime) == ()

    first = [asyncio.create_task(runtime.execute_next()) for _ in range(2)]
    await _until(lambda: len(gates.started) == 2)
    assert await runtime.execute_next() is None  # both slots occupied
    assert len(gates.started) == 2

    freed_run = gates.started[0]
    gates.gate(freed_run).set()
    await asyncio.wait({first[0], first[1]}, return_when=asyncio.FIRST_COMPLETED)
    await _until(lambda: len(gates.running) == 1)
    third = asyncio.create_task(runtime.execute_next())
    await _until(lambda: len(gates.started) == 3)
    assert await runtime.execute_next() is None
    assert gates.max_running == 2

    gates.open_all()
    results = await asyncio.gather(*first, third)
    assert all(r is not None and r.status is RunStatus.SUCCEEDED for r in results)
    last = await runtime.execute_next()
    assert last is not None
    assert last.status is RunStatus.SUCCEEDED
    assert sorted(gates.started) == [0, 1, 2, 3]
    assert gates.max_running == 2


async def test_tick_reserves_dispatch_capacity_and_requests_delivery_only_within_it(
    harness: Harness,
) -> None:
    limited = queue("limited", concurrency_limit=2)
    job = task("jobs.bounded", run=noop, queue=limited)
    runtime = harness.runtime([job], queues=[limited])
    run_ids = [(await runtime.trigger(job, {"n": n})).run.id for n in range(5)]

    ticked = await runtime.tick()

    assert ticked.reserved_dispatches == 2
    assert ticked.published_wakeups == 2
    reserved = await _delivery_requested(runtime, run_ids)
    assert len(reserved) == 2
    assert sorted(m.run_id for m in published(runtime)) == sorted(reserved)
    assert len(await outbox_rows(runtime)) == 2

    # the capacity is held by the reservations: nothing more is reserved
    again = await runtime.tick()
    assert again.reserved_dispatches == 0
    assert again.published_wakeups == 0

    # an unreserved run cannot jump the queue: storage-polling claims only reserved runs
    executed = await runtime.execute_next()
    assert executed is not None
    assert executed.id in reserved
    delivered = await runtime.execute_delivery(next(m for m in published(runtime) if m.run_id != executed.id))
    assert delivered.run is not None
    assert delivered.run.status is RunStatus.SUCCEEDED

    # both slots free again: the next tick reserves the next two
    third = await runtime.tick()
    assert third.reserved_dispatches == 2
    assert len(await _delivery_requested(runtime, run_ids)) == 4


async def test_dispatch_timeout_frees_unclaimed_reservations(
    harness: Harness, clock: ControlledClock
) -> None:
    limited = queue("limited", concurrency_limit=1, dispatch_timeout="10s")
    job = task("jobs.bounded", run=noop, queue=limited)
    runtime = harness.runtime([job], queues=[limited])
    run_ids = [(await runtime.trigger(job, {"n": n})).run.id for n in range(2)]

    assert (await runtime.tick()).reserved_dispatches == 1
    (reserved,) = await _delivery_requested(runtime, run_ids)

    clock.advance("9999ms")
    early = await runtime.tick()
    assert (early.released_reservations, early.reserved_dispatches) == (0, 0)
    # the reservation still holds the only slot: only the reserved run can be claimed
    executed = await runtime.execute_next()
    assert executed is not None
    assert executed.id == reserved


async def test_expired_reservation_capacity_is_reserved_again(
    harness: Harness, clock: ControlledClock
) -> None:
    limited = queue("limited", concurrency_limit=1, dispatch_timeout="10s")
    job = task("jobs.bounded", run=noop, queue=limited)
    runtime = harness.runtime([job], queues=[limited])
    for n in range(2):
        await runtime.trigger(job, {"n": n})
    assert (await runtime.tick()).reserved_dispatches == 1

    clock.advance("10s")
    late = await runtime.tick()

    assert late.released_reservations == 1
    assert late.reserved_dispatches == 1
    assert len(published(runtime)) == 2


async def test_without_dispatch_timeout_reservations_are_kept(
    harness: Harness, clock: ControlledClock
) -> None:
    limited = queue("limited", concurrency_limit=1)
    job = task("jobs.bounded", run=noop, queue=limited)
    runtime = harness.runtime([job], queues=[limited])
    for n in range(2):
        await runtime.trigger(job, {"n": n})
    assert (await runtime.tick()).reserved_dispatches == 1
    clock.advance("30d")
    late = await runtime.tick()
    assert (late.released_reservations, late.reserved_dispatches) == (0, 0)


async def test_concurrency_keys_partition_capacity(harness: Harness) -> None:
    limited = queue("limited", concurrency_limit=1)
    gates = Gates()
    job = task("jobs.per_account", run=gates.handler, queue=limited)
    runtime = harness.runtime([job], queues=[limited])
    await runtime.trigger(job, {"n": 0}, concurrency_key="acct.a")
    await runtime.trigger(job, {"n": 1}, concurrency_key="acct.a")
    await runtime.trigger(job, {"n": 2}, concurrency_key="acct.b")

    running = [asyncio.create_task(runtime.execute_next()) for _ in range(2)]
    await _until(lambda: len(gates.started) == 2)
    # one per partition: one of the two acct.a runs (same availability time) and the acct.b run
    assert len(gates.started) == 2
    assert 2 in gates.started
    assert await runtime.execute_next() is None  # acct.a is full, acct.b has nothing left

    gates.open_all()
    await asyncio.gather(*running)
    last = await runtime.execute_next()
    assert last is not None
    assert last.concurrency_key == "acct.a"


async def test_tick_reserves_per_partition(harness: Harness) -> None:
    limited = queue("limited", concurrency_limit=1)
    job = task("jobs.per_account", run=noop, queue=limited, concurrency_key=lambda p: f"acct.{p['acct']}")
    runtime = harness.runtime([job], queues=[limited])
    runs = [(await runtime.trigger(job, {"acct": acct})).run for acct in ("a", "a", "b", "c")]
    assert [r.concurrency_key for r in runs] == ["acct.a", "acct.a", "acct.b", "acct.c"]

    ticked = await runtime.tick()

    assert ticked.reserved_dispatches == 3
    reserved = set(await _delivery_requested(runtime, [r.id for r in runs]))
    assert {r.concurrency_key for r in runs if r.id in reserved} == {"acct.a", "acct.b", "acct.c"}


async def test_unbounded_queue_next_to_a_bounded_one_is_unaffected(harness: Harness) -> None:
    limited = queue("limited", concurrency_limit=1)
    free = queue("free", default=True)
    gates = Gates()
    bounded_job = task("jobs.bounded", run=gates.handler, queue=limited)
    free_job = task("jobs.free", run=noop)
    runtime = harness.runtime([bounded_job, free_job], queues=[limited, free])
    await runtime.trigger(bounded_job, {"n": 0})
    await runtime.trigger(bounded_job, {"n": 1})
    free_run = await runtime.trigger(free_job)
    assert [m.run_id for m in published(runtime)] == [free_run.run.id]

    blocked = asyncio.create_task(runtime.execute_next(queues=[limited]))
    await _until(lambda: len(gates.started) == 1)
    assert await runtime.execute_next(queues=[limited]) is None
    done = await runtime.execute_next()
    assert done is not None
    assert done.id == free_run.run.id
    gates.open_all()
    await blocked
