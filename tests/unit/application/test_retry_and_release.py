"""Retry (failure pressure with backoff) versus release (business waiting that never uses the budget)."""

from datetime import UTC, datetime, timedelta

from runlane import (
    ErrorCode,
    RetryBackoff,
    RetryBackoffType,
    RetryPolicy,
    RunEventType,
    RunlaneError,
    RunStatus,
    TaskContext,
    task,
)
from runlane.application.runtime import Runlane
from runlane.domain.run_record import RunRecord
from runlane.testing import ControlledClock, list_run_event_types
from tests.unit.application.support import Harness, published


async def _always_fails(payload: object, context: object) -> None:
    raise ValueError("secret upstream detail")


async def _drive_until_terminal(
    runtime: Runlane, clock: ControlledClock, limit: int = 20
) -> tuple[list[timedelta], RunRecord]:
    """Execute, jump to the next run_at, repeat; return retry delays measured from each failure."""
    deltas: list[timedelta] = []
    for _ in range(limit):
        run = await runtime.execute_next()
        assert run is not None
        if run.is_terminal:
            return deltas, run
        assert run.status is RunStatus.RETRYING
        assert run.run_at is not None
        assert run.failure is not None
        assert run.failure.occurred_at == clock.now()
        deltas.append(run.run_at - clock.now())
        clock.set(run.run_at - timedelta(milliseconds=1))
        assert await runtime.execute_next() is None  # not due a millisecond early
        clock.set(run.run_at)
    raise AssertionError("run never became terminal")


async def test_exponential_backoff_sequence_is_capped_then_fails(
    harness: Harness, clock: ControlledClock
) -> None:
    policy = RetryPolicy(
        max_attempts=7, backoff=RetryBackoff(RetryBackoffType.EXPONENTIAL, "30s", max_delay="5m")
    )
    job = task("jobs.flaky", run=_always_fails, retry=policy)
    runtime = harness.runtime([job])
    await runtime.trigger(job)

    deltas, final = await _drive_until_terminal(runtime, clock)

    assert deltas == [timedelta(seconds=s) for s in (30, 60, 120, 240, 300, 300)]
    assert final.status is RunStatus.FAILED
    assert (final.attempts, final.failures, final.retries) == (7, 7, 6)


async def test_documented_three_attempt_example(harness: Harness, clock: ControlledClock) -> None:
    policy = RetryPolicy(3, RetryBackoff(RetryBackoffType.EXPONENTIAL, "30s", "5m"))
    job = task("jobs.flaky", run=_always_fails, retry=policy)
    runtime = harness.runtime([job])
    await runtime.trigger(job)

    deltas, final = await _drive_until_terminal(runtime, clock)

    assert deltas == [timedelta(seconds=30), timedelta(seconds=60)]
    assert final.status is RunStatus.FAILED


async def test_fixed_backoff(harness: Harness, clock: ControlledClock) -> None:
    as_string = task("jobs.fixed_string", run=_always_fails, retry=RetryPolicy(4, "10s"))
    as_object = task(
        "jobs.fixed_object",
        run=_always_fails,
        retry=RetryPolicy(3, RetryBackoff(RetryBackoffType.FIXED, "2m")),
    )
    runtime = harness.runtime([as_string])
    await runtime.trigger(as_string)
    deltas, final = await _drive_until_terminal(runtime, clock)
    assert deltas == [timedelta(seconds=10)] * 3
    assert final.attempts == 4

    other = harness.runtime([as_object])
    await other.trigger(as_object)
    deltas, final = await _drive_until_terminal(other, clock)
    assert deltas == [timedelta(minutes=2)] * 2
    assert final.status is RunStatus.FAILED


async def test_omitted_backoff_uses_the_contract_default(harness: Harness, clock: ControlledClock) -> None:
    job = task("jobs.default_backoff", run=_always_fails, retry=RetryPolicy(max_attempts=8))
    runtime = harness.runtime([job])
    await runtime.trigger(job)
    deltas, _ = await _drive_until_terminal(runtime, clock)
    assert deltas == [timedelta(seconds=s) for s in (30, 60, 120, 240, 300, 300, 300)]


async def test_no_retry_policy_means_one_attempt(harness: Harness, clock: ControlledClock) -> None:
    job = task("jobs.once", run=_always_fails)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)

    final = await runtime.execute_next()

    assert final is not None
    assert final.status is RunStatus.FAILED
    assert (final.attempts, final.failures, final.retries) == (1, 1, 0)
    clock.advance("1d")
    await runtime.tick()
    assert await runtime.execute_next() is None
    assert list(await list_run_event_types(runtime, created.run.id)) == [
        RunEventType.CREATED,
        RunEventType.DELIVERY_REQUESTED,
        RunEventType.LEASE_CLAIMED,
        RunEventType.FAILED,
    ]


async def test_non_retryable_runlane_error_fails_at_once(harness: Harness) -> None:
    async def handler(payload: object, context: object) -> None:
        raise RunlaneError(ErrorCode.VALIDATION_FAILED, "bad account", meta={"account": "a1"})

    job = task("jobs.strict", run=handler, retry=RetryPolicy(5, "1s"))
    runtime = harness.runtime([job])
    await runtime.trigger(job)

    final = await runtime.execute_next()

    assert final is not None
    assert final.status is RunStatus.FAILED
    assert final.attempts == 1
    assert final.failure is not None
    assert final.failure.code is ErrorCode.VALIDATION_FAILED
    assert final.failure.retryable is False
    assert final.failure.meta == {"account": "a1"}


async def test_retryable_runlane_error_keeps_its_code(harness: Harness) -> None:
    async def handler(payload: object, context: object) -> None:
        raise RunlaneError(ErrorCode.TRANSPORT_UNAVAILABLE, "provider down", retryable=True)

    job = task("jobs.provider", run=handler, retry=RetryPolicy(2, "1s"))
    runtime = harness.runtime([job])
    await runtime.trigger(job)

    run = await runtime.execute_next()

    assert run is not None
    assert run.status is RunStatus.RETRYING
    assert run.failure is not None
    assert run.failure.code is ErrorCode.TRANSPORT_UNAVAILABLE
    assert run.failure.retryable is True


async def test_unknown_exception_becomes_task_failed_without_leaking_detail(harness: Harness) -> None:
    job = task("jobs.unknown", run=_always_fails, retry=RetryPolicy(2, "1s"))
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)

    run = await runtime.execute_next()

    assert run is not None
    assert run.status is RunStatus.RETRYING
    assert run.failure is not None
    assert run.failure.code is ErrorCode.TASK_FAILED
    assert run.failure.message == "Task failed"
    assert run.failure.retryable is True
    history = (await runtime.runs.events(created.run.id)).data
    assert "secret upstream detail" not in repr([e.to_wire() for e in history])


async def test_sync_handler_failures_follow_the_same_rules(harness: Harness) -> None:
    def handler(payload: object, context: object) -> None:
        raise KeyError("missing")

    job = task("jobs.sync_fail", run=handler, retry=RetryPolicy(2, "1s"))
    runtime = harness.runtime([job])
    await runtime.trigger(job)
    run = await runtime.execute_next()
    assert run is not None
    assert run.status is RunStatus.RETRYING
    assert run.failure is not None
    assert run.failure.code is ErrorCode.TASK_FAILED


async def test_retrying_run_is_requested_for_delivery_by_tick_when_due(
    harness: Harness, clock: ControlledClock
) -> None:
    job = task("jobs.flaky", run=_always_fails, retry=RetryPolicy(2, "30s"))
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)
    await runtime.execute_next()
    before = len(published(runtime))

    clock.advance("29999ms")
    assert (await runtime.tick()).requested_deliveries == 0
    clock.advance("1ms")
    ticked = await runtime.tick()

    assert ticked.requested_deliveries == 1
    assert ticked.published_wakeups == 1
    assert [m.run_id for m in published(runtime)[before:]] == [created.run.id]
    run = await runtime.runs.get(created.run.id)
    assert run is not None
    assert run.status is RunStatus.QUEUED
    assert (await runtime.execute_delivery(published(runtime)[-1])).run.status is RunStatus.FAILED  # type: ignore[union-attr]


async def test_release_continues_the_same_run_later(harness: Harness, clock: ControlledClock) -> None:
    checks: list[int] = []

    async def poll(payload: object, context: TaskContext) -> object:
        checks.append(context.attempt)
        if len(checks) < 3:
            return context.release("5m", reason="export_not_ready", meta={"check": len(checks)})
        return None

    job = task("exports.poll", run=poll)
    runtime = harness.runtime([job])
    created = await runtime.trigger(job)

    released = await runtime.execute_next()
    assert released is not None
    assert released.id == created.run.id
    assert released.status is RunStatus.RELEASED
    assert released.run_at == clock.now() + timedelta(minutes=5)
    assert (released.releases, released.failures, released.retries) == (1, 0, 0)
    assert released.failure is None
    assert released.lease is None

    clock.advance("4m")
    assert (await runtime.tick()).requested_deliveries == 0
    assert await runtime.execute_next() is None
    clock.advance("1m")
    assert (await runtime.tick()).requested_deliveries == 1
    second = await runtime.execute_delivery(published(runtime)[-1])
    assert second.run is not None
    assert second.run.status is RunStatus.RELEASED
    clock.advance("5m")
    final = await runtime.execute_next()  # storage-polling workers may also pick a due release
    assert final is not None
    assert final.status is RunStatus.SUCCEEDED
    assert (final.attempts, final.releases, final.failures) == (3, 2, 0)
    assert checks == [1, 2, 3]
    events = (await runtime.runs.events(created.run.id)).data
    released_events = [e for e in events if e.type is RunEventType.RELEASED]
    assert [e.reason for e in released_events] == ["export_not_ready", "export_not_ready"]
    assert [e.meta for e in released_events] == [{"check": 1}, {"check": 2}]


async def test_release_until_a_datetime(harness: Harness, clock: ControlledClock) -> None:
    until = datetime(2025, 1, 2, 9, 30, tzinfo=UTC)

    async def wait_until(payload: object, context: TaskContext) -> object:
        return context.release(until)

    job = task("jobs.until", run=wait_until)
    runtime = harness.runtime([job])
    await runtime.trigger(job)
    run = await runtime.execute_next()
    assert run is not None
    assert run.status is RunStatus.RELEASED
    assert run.run_at == until


async def test_releases_do_not_consume_the_retry_budget(harness: Harness, clock: ControlledClock) -> None:
    calls: list[int] = []

    async def handler(payload: object, context: TaskContext) -> object:
        calls.append(context.attempt)
        if len(calls) <= 5:
            return context.release("1s")
        raise RuntimeError("now it fails")

    job = task("jobs.poll_then_fail", run=handler, retry=RetryPolicy(2, "10s"))
    runtime = harness.runtime([job])
    await runtime.trigger(job)

    for _ in range(5):
        run = await runtime.execute_next()
        assert run is not None
        assert run.status is RunStatus.RELEASED
        clock.advance("1s")
    run = await runtime.execute_next()

    assert run is not None
    assert run.status is RunStatus.RETRYING  # the first failure still has budget for one retry
    assert (run.releases, run.failures, run.retries, run.attempts) == (5, 1, 1, 6)
    clock.advance("10s")
    final = await runtime.execute_next()
    assert final is not None
    assert final.status is RunStatus.FAILED
    assert (final.releases, final.failures, final.retries, final.attempts) == (5, 2, 1, 7)


async def test_attempts_read_model_shows_each_outcome(harness: Harness, clock: ControlledClock) -> None:
    outcomes = iter(["release", "fail", "ok"])

    async def handler(payload: object, context: TaskContext) -> object:
        step = next(outcomes)
        if step == "release":
            return context.release("1s")
        if step == "fail":
            raise RuntimeError("x")
        return None

    job = task("jobs.mixed", run=handler, retry=RetryPolicy(3, "1s"))
    runtime = harness.runtime([job], worker_id="worker_a")
    created = await runtime.trigger(job)
    for _ in range(3):
        await runtime.execute_next()
        clock.advance("1s")

    attempts = await runtime.runs.attempts(created.run.id)

    assert [a.attempt for a in attempts] == [1, 2, 3]
    assert [a.status.value for a in attempts] == ["released", "retry_scheduled", "succeeded"]
    assert {a.worker_id for a in attempts} == {"worker_a"}
    assert attempts[1].failure is not None
    assert attempts[1].failure.code is ErrorCode.TASK_FAILED
