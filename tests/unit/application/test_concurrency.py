"""Concurrency: duplicate triggers converge on one owner; many workers execute each attempt exactly once."""

import asyncio
from collections import Counter

from runlane import (
    ErrorCode,
    RunlaneError,
    RunStatus,
    TaskContext,
    TriggerDispatchMode,
    TriggerOutcomeType,
    WorkerMode,
    queue,
    task,
)
from runlane.infrastructure.memory import create_local_storage
from runlane.testing import wait_for_condition
from tests.unit.application.support import (
    Harness,
    YieldingStorage,
    all_run_ids,
    lane_with_storage,
    noop,
    published,
)


async def test_fifty_concurrent_triggers_with_one_key_make_one_run(harness: Harness) -> None:
    job = task("emails.welcome", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(YieldingStorage(create_local_storage())))

    results = await asyncio.gather(
        *(runtime.trigger(job, {"user": 1}, idempotency_key="welcome.1") for _ in range(50))
    )

    assert len({r.run.id for r in results}) == 1
    outcomes = Counter(r.outcome for r in results)
    assert outcomes == {TriggerOutcomeType.CREATED: 1, TriggerOutcomeType.RETURNED_EXISTING: 49}
    assert len(await all_run_ids(runtime)) == 1
    assert len(published(runtime)) == 1


async def test_concurrent_triggers_on_the_plain_local_lane_also_converge(harness: Harness) -> None:
    job = task("emails.welcome", run=noop)
    runtime = harness.runtime([job])

    results = await asyncio.gather(*(runtime.trigger(job, idempotency_key="k") for _ in range(50)))

    assert len({r.run.id for r in results}) == 1
    assert len(await all_run_ids(runtime)) == 1


async def test_eight_workers_execute_two_thousand_runs_exactly_once(harness: Harness) -> None:
    ledger: dict[tuple[str, int], int] = {}
    duplicates: list[tuple[str, int]] = []

    async def handler(payload: dict[str, int], context: TaskContext) -> None:
        key = (context.run.id, context.attempt)
        if key in ledger:
            duplicates.append(key)
        ledger[key] = ledger.get(key, 0) + 1
        await asyncio.sleep(0)  # let the other workers interleave mid-attempt

    job = task("jobs.bulk", run=handler)
    runtime = harness.runtime(
        [job],
        lane=lane_with_storage(YieldingStorage(create_local_storage())),
        dispatch=TriggerDispatchMode.DEFERRED,
    )
    run_ids = [(await runtime.trigger(job, {"n": n})).run.id for n in range(2_000)]

    workers = [runtime.worker(mode=WorkerMode.DRAIN, worker_id=f"worker_{i}") for i in range(8)]
    await asyncio.wait_for(asyncio.gather(*(w.closed for w in workers)), timeout=120)

    assert duplicates == []
    assert len(ledger) == 2_000
    assert {run_id for run_id, _ in ledger} == set(run_ids)
    assert {attempt for _, attempt in ledger} == {1}
    assert sum(w.executed for w in workers) == 2_000
    assert all(w.executed > 0 for w in workers), [w.executed for w in workers]
    succeeded: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = await runtime.runs.list(statuses=[RunStatus.SUCCEEDED], limit=500, cursor=cursor)
        succeeded.extend(run.id for run in page.data)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(succeeded) == sorted(run_ids)


async def test_cancel_racing_a_claim_is_never_lost(harness: Harness) -> None:
    """Whoever wins, a cancel that returned normally always ends in a cancelled run."""
    executed: list[str] = []

    async def handler(payload: object, context: TaskContext) -> None:
        executed.append(context.run.id)
        await asyncio.sleep(0)

    job = task("jobs.raced", run=handler)
    runtime = harness.runtime([job], lane=lane_with_storage(YieldingStorage(create_local_storage())))
    run_ids = [(await runtime.trigger(job)).run.id for _ in range(30)]

    refusals: list[ErrorCode] = []

    async def cancel(run_id: str, yields: int) -> bool:
        for _ in range(yields):
            await asyncio.sleep(0)
        try:
            await runtime.runs.cancel(run_id)
        except RunlaneError as exc:
            refusals.append(exc.code)
            return False
        return True

    # claims and cancels start interleaved with staggered delays, so each side wins some races
    calls = [
        call
        for n, run_id in enumerate(run_ids)
        for call in (runtime.execute_next(), cancel(run_id, yields=(n * 7) % 19))
    ]
    cancels = (await asyncio.gather(*calls))[1::2]

    assert set(refusals) <= {ErrorCode.VALIDATION_FAILED}  # refused only because it had finished
    for run_id, cancelled in zip(run_ids, cancels, strict=True):
        run = await runtime.runs.get(run_id)
        assert run is not None
        if cancelled:
            assert run.status is RunStatus.CANCELLED
        else:
            assert run.status is RunStatus.SUCCEEDED
            assert run_id in executed
    assert len(executed) == len(set(executed))


async def test_many_workers_never_exceed_a_bounded_queue_limit(harness: Harness) -> None:
    in_flight = 0
    max_in_flight = 0
    done: list[int] = []

    async def handler(payload: dict[str, int], context: TaskContext) -> None:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        for _ in range(3):
            await asyncio.sleep(0)
        in_flight -= 1
        done.append(payload["n"])

    limited = queue("limited", concurrency_limit=2)
    job = task("jobs.limited", run=handler, queue=limited)
    runtime = harness.runtime(
        [job], queues=[limited], lane=lane_with_storage(YieldingStorage(create_local_storage()))
    )
    for n in range(60):
        await runtime.trigger(job, {"n": n})

    workers = [runtime.worker(poll_interval="5ms", worker_id=f"worker_{i}") for i in range(8)]
    await wait_for_condition(lambda: len(done) == 60, timeout=20)
    await asyncio.gather(*(w.stop() for w in workers))

    assert max_in_flight == 2
    assert sorted(done) == list(range(60))
