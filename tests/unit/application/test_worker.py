"""worker(): poll/drain modes, graceful stop, threads for sync handlers, N concurrent slots."""

import asyncio
import threading

from runlane import RunStatus, TaskContext, WorkerMode, queue, task
from runlane.testing import ControlledClock, wait_for_condition, wait_for_run_status
from tests.unit.application.support import Harness, noop


async def test_drain_mode_exits_when_no_due_work_remains(harness: Harness, clock: ControlledClock) -> None:
    done: list[int] = []

    async def handler(payload: dict[str, int], context: TaskContext) -> None:
        done.append(payload["n"])

    job = task("jobs.drain", run=handler)
    runtime = harness.runtime([job])
    for n in range(5):
        await runtime.trigger(job, {"n": n})
    future = await runtime.trigger(job, {"n": 99}, delay="1h")

    handle = runtime.worker(mode=WorkerMode.DRAIN, concurrency=2)
    await asyncio.wait_for(handle.closed, timeout=5)

    assert sorted(done) == [0, 1, 2, 3, 4]
    assert handle.closed is handle.closed  # one terminal future, the same on every read
    assert handle.closed.done()
    still = await runtime.runs.get(future.run.id)
    assert still is not None
    assert still.status is RunStatus.SCHEDULED


async def test_drain_worker_with_nothing_to_do_exits_immediately(harness: Harness) -> None:
    runtime = harness.runtime([task("jobs.none", run=lambda p, c: None)])
    handle = runtime.worker(mode="drain")
    await asyncio.wait_for(handle.stop(), timeout=5)
    assert handle.closed.done()


async def test_poll_worker_picks_up_new_work_until_stopped(harness: Harness) -> None:
    done: list[int] = []

    async def handler(payload: dict[str, int], context: TaskContext) -> None:
        done.append(payload["n"])

    job = task("jobs.poll", run=handler)
    runtime = harness.runtime([job])
    handle = runtime.worker(poll_interval="10ms")
    await asyncio.sleep(0.03)
    assert not handle.closed.done()  # poll mode keeps going while idle

    created = await runtime.trigger(job, {"n": 1})
    await wait_for_run_status(runtime, created.run.id, RunStatus.SUCCEEDED, timeout=5)
    await asyncio.wait_for(handle.stop(), timeout=5)
    assert done == [1]


async def test_poll_stop_is_graceful(harness: Harness) -> None:
    started = asyncio.Event()
    release = asyncio.Event()
    observed: list[bool] = []
    executed: list[int] = []

    async def handler(payload: dict[str, int], context: TaskContext) -> None:
        executed.append(payload["n"])
        started.set()
        await asyncio.wait_for(release.wait(), timeout=5)
        observed.append(context.signal.aborted)

    job = task("jobs.graceful", run=handler)
    runtime = harness.runtime([job])
    first = await runtime.trigger(job, {"n": 1})
    handle = runtime.worker(poll_interval="10ms")
    await asyncio.wait_for(started.wait(), timeout=5)
    later = [await runtime.trigger(job, {"n": n}) for n in (2, 3)]

    stopping = asyncio.create_task(handle.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # waits for the in-flight attempt
    release.set()
    await asyncio.wait_for(stopping, timeout=5)

    assert executed == [1]  # nothing new was claimed after stop()
    assert observed == [False]  # a plain stop lets the attempt finish without aborting it
    finished = await runtime.runs.get(first.run.id)
    assert finished is not None
    assert finished.status is RunStatus.SUCCEEDED
    for created in later:
        waiting = await runtime.runs.get(created.run.id)
        assert waiting is not None
        assert waiting.status is RunStatus.QUEUED
        assert waiting.attempts == 0


async def test_sync_handlers_run_in_threads_and_async_ones_on_the_loop(harness: Harness) -> None:
    loop_thread = threading.get_ident()
    loop = asyncio.get_running_loop()
    where: dict[str, object] = {}

    def sync_handler(payload: object, context: TaskContext) -> None:
        where["sync_thread"] = threading.get_ident()
        try:
            asyncio.get_running_loop()
            where["sync_has_loop"] = True
        except RuntimeError:
            where["sync_has_loop"] = False

    async def async_handler(payload: object, context: TaskContext) -> None:
        where["async_thread"] = threading.get_ident()
        where["async_loop"] = asyncio.get_running_loop()

    sync_job = task("jobs.sync", run=sync_handler)
    async_job = task("jobs.async", run=async_handler)
    runtime = harness.runtime([sync_job, async_job])
    await runtime.trigger(sync_job)
    await runtime.trigger(async_job)

    handle = runtime.worker(mode=WorkerMode.DRAIN)
    await asyncio.wait_for(handle.closed, timeout=5)

    assert where["sync_thread"] != loop_thread
    assert where["sync_has_loop"] is False
    assert where["async_thread"] == loop_thread
    assert where["async_loop"] is loop


async def test_concurrency_runs_n_attempts_at_once(harness: Harness) -> None:
    slots = 4
    in_flight = 0
    max_in_flight = 0
    all_busy = asyncio.Event()
    finished: list[int] = []

    async def handler(payload: dict[str, int], context: TaskContext) -> None:
        nonlocal in_flight, max_in_flight
        in_flight += 1
        max_in_flight = max(max_in_flight, in_flight)
        if in_flight == slots:
            all_busy.set()
        try:
            # the first wave waits until every slot is busy; later runs see the event already set
            await asyncio.wait_for(all_busy.wait(), timeout=5)
            await asyncio.sleep(0)
        finally:
            in_flight -= 1
        finished.append(payload["n"])

    job = task("jobs.parallel", run=handler)
    runtime = harness.runtime([job])
    for n in range(10):
        await runtime.trigger(job, {"n": n})

    handle = runtime.worker(mode=WorkerMode.DRAIN, concurrency=slots)
    await asyncio.wait_for(handle.closed, timeout=10)

    assert all_busy.is_set()
    assert max_in_flight == slots
    assert sorted(finished) == list(range(10))


async def test_sync_handlers_also_run_concurrently(harness: Harness) -> None:
    barrier = threading.Barrier(3, timeout=5)

    def handler(payload: object, context: TaskContext) -> None:
        barrier.wait()  # only passes if three handlers are in flight at the same time

    job = task("jobs.threads", run=handler)
    runtime = harness.runtime([job])
    for _ in range(3):
        await runtime.trigger(job)

    handle = runtime.worker(mode=WorkerMode.DRAIN, concurrency=3)
    await asyncio.wait_for(handle.closed, timeout=10)

    pages = await runtime.runs.list(statuses=[RunStatus.SUCCEEDED])
    assert len(pages.data) == 3


async def test_worker_only_takes_its_queues(harness: Harness) -> None:
    emails = queue("emails")
    other = queue("default", default=True)
    email_job = task("emails.send", run=lambda p, c: None, queue=emails)
    default_job = task("jobs.default", run=lambda p, c: None)
    runtime = harness.runtime([email_job, default_job], queues=[other, emails])
    e = await runtime.trigger(email_job)
    d = await runtime.trigger(default_job)

    handle = runtime.worker(mode=WorkerMode.DRAIN, queues=[emails])
    await asyncio.wait_for(handle.closed, timeout=5)

    assert (await runtime.runs.get(e.run.id)).status is RunStatus.SUCCEEDED  # type: ignore[union-attr]
    assert (await runtime.runs.get(d.run.id)).status is RunStatus.QUEUED  # type: ignore[union-attr]


async def test_closing_the_runtime_stops_its_workers(harness: Harness) -> None:
    job = task("jobs.idle", run=lambda p, c: None)
    runtime = harness.runtime([job])
    handle = runtime.worker(poll_interval="10ms")
    await wait_for_condition(lambda: not handle.closed.done(), timeout=1)

    await asyncio.wait_for(runtime.close(), timeout=5)

    assert handle.closed.done()


async def test_worker_never_claims_runs_of_tasks_it_does_not_register(harness: Harness) -> None:
    from runlane.infrastructure.memory import create_local_lane

    lane = create_local_lane()
    ran: list[str] = []

    async def mine(payload: object, context: object) -> None:
        ran.append("mine")

    producer = harness.runtime([task("reports.other", run=noop), task("reports.mine", run=mine)], lane=lane)
    other = await producer.trigger(producer.tasks["reports.other"], {})
    await producer.trigger(producer.tasks["reports.mine"], {})
    # A mixed deployment: this worker only knows reports.mine.
    worker_runtime = harness.runtime([task("reports.mine", run=mine)], lane=lane)
    await worker_runtime.worker(mode="drain")
    assert ran == ["mine"]
    left = await producer.runs.get(other.run.id)
    assert left is not None
    assert left.status is RunStatus.QUEUED  # untouched, waiting for a worker that knows the task
    assert left.attempts == 0
