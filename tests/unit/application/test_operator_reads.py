"""Operator reads: environment-scoped get/list/events/attempts with stable cursor pagination."""

import pytest

from runlane import (
    ErrorCode,
    RetryPolicy,
    RunEventType,
    RunSortField,
    RunStatus,
    SortDirection,
    TaskContext,
    queue,
    task,
)
from runlane.application.runtime import Runlane
from runlane.testing import ControlledClock
from tests.unit.application.support import (
    DEFAULT_QUEUE,
    Harness,
    all_run_ids,
    expect_error,
    noop,
)


async def _page_through_while_inserting(
    runtime: Runlane, *, sort_direction: SortDirection, sort_by: RunSortField, inserts_per_page: int
) -> list[str]:
    job = runtime.tasks["job"]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(200):
        page = await runtime.runs.list(limit=4, cursor=cursor, sort_direction=sort_direction, sort_by=sort_by)
        seen.extend(run.id for run in page.data)
        for _ in range(inserts_per_page):
            await runtime.trigger(job, {"late": True})
        cursor = page.next_cursor
        if cursor is None:
            return seen
    raise AssertionError("pagination did not terminate")


@pytest.mark.parametrize("direction", [SortDirection.DESC, SortDirection.ASC])
@pytest.mark.parametrize("distinct_times", [True, False])
async def test_cursor_pagination_is_stable_under_inserts(
    harness: Harness, clock: ControlledClock, direction: SortDirection, distinct_times: bool
) -> None:
    runtime = harness.runtime({"job": task("jobs.listed", run=noop)})
    existing = []
    for n in range(23):
        existing.append((await runtime.trigger(runtime.tasks["job"], {"n": n})).run.id)
        if distinct_times:
            clock.advance("1ms")

    seen = await _page_through_while_inserting(
        runtime, sort_direction=direction, sort_by=RunSortField.CREATED_AT, inserts_per_page=3
    )

    assert len(seen) == len(set(seen)), "a run appeared on two pages"
    assert set(existing) <= set(seen), "a run that existed before paging was skipped"


async def test_list_orders_by_creation_time(harness: Harness, clock: ControlledClock) -> None:
    runtime = harness.runtime({"job": task("jobs.listed", run=noop)})
    ids = []
    for _ in range(5):
        ids.append((await runtime.trigger(runtime.tasks["job"])).run.id)
        clock.advance("1s")

    newest_first = [r.id for r in (await runtime.runs.list()).data]
    oldest_first = [r.id for r in (await runtime.runs.list(sort_direction=SortDirection.ASC)).data]

    assert newest_first == list(reversed(ids))
    assert oldest_first == ids


async def test_list_filters(harness: Harness) -> None:
    emails = queue("emails")
    send = task("emails.send", run=noop, queue=emails)

    async def fail(payload: object, context: object) -> None:
        raise RuntimeError("x")

    report = task("reports.build", run=fail)
    runtime = harness.runtime({"send": send, "report": report}, queues=[DEFAULT_QUEUE, emails])
    sent = await runtime.trigger(send, idempotency_key="welcome.1")
    other_sent = await runtime.trigger(send, singleton_key="single")
    built = await runtime.trigger(report)
    await runtime.execute_next(queues=[DEFAULT_QUEUE])

    by_status = await runtime.runs.list(statuses=[RunStatus.FAILED])
    by_task = await runtime.runs.list(tasks=[send])
    by_task_id = await runtime.runs.list(task_ids=["reports.build"])
    by_queue = await runtime.runs.list(queues=[emails])
    by_key = await runtime.runs.list(idempotency_key="welcome.1")
    by_singleton = await runtime.runs.list(singleton_key="single")
    active = await runtime.runs.list(statuses=["queued"])

    assert [r.id for r in by_status.data] == [built.run.id]
    assert {r.id for r in by_task.data} == {sent.run.id, other_sent.run.id}
    assert [r.id for r in by_task_id.data] == [built.run.id]
    assert {r.id for r in by_queue.data} == {sent.run.id, other_sent.run.id}
    assert [r.id for r in by_key.data] == [sent.run.id]
    assert [r.id for r in by_singleton.data] == [other_sent.run.id]
    assert {r.id for r in active.data} == {sent.run.id, other_sent.run.id}
    # summaries carry no payload
    assert not hasattr(by_status.data[0], "payload")


async def test_reads_are_environment_scoped(harness: Harness) -> None:
    job = task("jobs.scoped", run=noop)
    production = harness.runtime({"job": job}, environment="production")
    staging = harness.runtime({"job": job}, lane=production.lane, environment="staging")
    prod_run = await production.trigger(job)
    staging_run = await staging.trigger(job)

    assert await production.runs.get(staging_run.run.id) is None
    assert await all_run_ids(production) == [prod_run.run.id]
    assert await all_run_ids(staging) == [staging_run.run.id]
    assert (await production.runs.events(staging_run.run.id)).data == ()
    assert await production.runs.find_active(task=job, idempotency_key="none") is None


async def test_get_events_and_attempts(harness: Harness, clock: ControlledClock) -> None:
    calls = 0

    async def handler(payload: object, context: TaskContext) -> None:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("first attempt fails")

    job = task("jobs.read", run=handler, retry=RetryPolicy(2, "5s"))
    runtime = harness.runtime({"job": job}, worker_id="worker_r")
    created = await runtime.trigger(job, {"x": 1})
    first_at = clock.now()
    await runtime.execute_next()
    clock.advance("5s")
    await runtime.execute_next()

    run = await runtime.runs.get(created.run.id)
    assert run is not None
    assert run.status is RunStatus.SUCCEEDED
    assert run.payload == {"x": 1}
    assert await runtime.runs.get("run_missing") is None

    events = (await runtime.runs.events(created.run.id)).data
    assert [e.type for e in events] == [
        RunEventType.CREATED,
        RunEventType.DELIVERY_REQUESTED,
        RunEventType.LEASE_CLAIMED,
        RunEventType.RETRY_SCHEDULED,
        RunEventType.LEASE_CLAIMED,
        RunEventType.SUCCEEDED,
    ]
    assert [e.sequence for e in events] == [1, 2, 3, 4, 5, 6]
    assert len({e.id for e in events}) == 6
    descending = (await runtime.runs.events(created.run.id, sort_direction="desc")).data
    assert [e.sequence for e in descending] == [6, 5, 4, 3, 2, 1]

    paged: list[int] = []
    cursor = None
    for _ in range(10):
        page = await runtime.runs.events(created.run.id, limit=4, cursor=cursor)
        paged.extend(e.sequence for e in page.data)
        cursor = page.next_cursor
        if cursor is None:
            break
    assert paged == [1, 2, 3, 4, 5, 6]

    attempts = await runtime.runs.attempts(created.run.id)
    assert [(a.attempt, a.status.value) for a in attempts] == [(1, "retry_scheduled"), (2, "succeeded")]
    assert attempts[0].started_at == first_at
    assert attempts[0].finished_at == first_at
    assert attempts[1].started_at == clock.now()


async def test_invalid_read_arguments_are_rejected(harness: Harness) -> None:
    runtime = harness.runtime({"job": task("jobs.read", run=noop)})
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.get("run:1")
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.list(statuses=["paused"])
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.list(queues=["default"])
    with expect_error(ErrorCode.VALIDATION_FAILED):
        await runtime.runs.events("run_1", sort_by="occurred_at")
