"""Bad input: invalid payloads and options persist nothing; bad configuration fails at definition time."""

import asyncio
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel

from runlane import (
    Environment,
    ErrorCode,
    RetryBackoff,
    RetryPolicy,
    RunStatus,
    Schedule,
    TaskContext,
    create_runlane,
    queue,
    task,
)
from runlane.application.runtime import Runlane
from runlane.infrastructure.memory import create_local_lane
from runlane.testing import ControlledClock
from tests.unit.application.support import (
    DEFAULT_QUEUE,
    Harness,
    all_run_ids,
    expect_error,
    noop,
    outbox_rows,
    published,
)

CONFIG = ErrorCode.CONFIGURATION_INVALID
VALIDATION = ErrorCode.VALIDATION_FAILED


class Signup(BaseModel):
    user_id: int
    email: str


async def _assert_nothing_persisted(runtime: Runlane) -> None:
    assert await all_run_ids(runtime) == []
    assert await outbox_rows(runtime) == ()
    assert published(runtime) == ()


# -- payloads -------------------------------------------------------------------------------------


async def test_pydantic_schema_rejects_invalid_payloads_and_persists_nothing(harness: Harness) -> None:
    received: list[object] = []

    async def handler(payload: Signup, context: TaskContext) -> None:
        received.append(payload)

    job = task("users.signup", run=handler, schema=Signup)
    runtime = harness.runtime([job])

    for bad in ({"user_id": "not a number", "email": "a@b"}, {"email": "a@b"}, None, "text"):
        with expect_error(VALIDATION):
            await runtime.trigger(job, bad)
    await _assert_nothing_persisted(runtime)

    # a valid payload: the run stores JSON, the handler gets the model again
    created = await runtime.trigger(job, Signup(user_id=7, email="a@b"))
    assert created.run.payload == {"user_id": 7, "email": "a@b"}
    await runtime.execute_next()
    assert received == [Signup(user_id=7, email="a@b")]


async def test_callable_and_object_validators_reject_invalid_payloads(harness: Harness) -> None:
    def positive(value: Any) -> Any:
        if not isinstance(value, dict) or value.get("n", 0) <= 0:
            raise ValueError("n must be positive")
        return value

    class Validator:
        def validate(self, value: Any) -> Any:
            if not isinstance(value, dict) or "id" not in value:
                raise TypeError("id is required")
            return value

    by_callable = task("jobs.callable", run=noop, schema=positive)
    by_object = task("jobs.object", run=noop, schema=Validator())
    runtime = harness.runtime([by_callable, by_object])

    with expect_error(VALIDATION) as info:
        await runtime.trigger(by_callable, {"n": -1})
    assert "n must be positive" in info.value.message
    with expect_error(VALIDATION):
        await runtime.trigger(by_object, {"name": "x"})
    with expect_error(VALIDATION):
        await runtime.run_now(by_callable, {"n": 0})
    await _assert_nothing_persisted(runtime)


async def test_non_json_and_oversized_payloads_are_rejected(harness: Harness) -> None:
    job = task("jobs.json", run=noop)
    runtime = harness.runtime([job], max_payload_bytes=64)

    with expect_error(VALIDATION):
        await runtime.trigger(job, {"when": datetime(2025, 1, 1, tzinfo=UTC)})
    with expect_error(VALIDATION):
        await runtime.trigger(job, {"tags": {"a", "b"}})
    with expect_error(VALIDATION):
        await runtime.trigger(job, {"blob": "x" * 100})
    await _assert_nothing_persisted(runtime)


# -- call options ---------------------------------------------------------------------------------

BAD_TRIGGER_OPTIONS: dict[str, dict[str, Any]] = {
    "unknown kwarg": {"priority": 5},
    "naive run_at": {"run_at": datetime(2025, 1, 2, 9, 0)},
    "run_at and delay": {"run_at": datetime(2025, 1, 2, tzinfo=UTC), "delay": "5m"},
    "prose delay": {"delay": "5 minutes"},
    "zero delay": {"delay": "0s"},
    "negative delay": {"delay": "-5m"},
    "bad ttl": {"idempotency_key": "k", "idempotency_key_ttl": "5 minutes"},
    "run_id with colon": {"run_id": "run:1"},
    "empty run_id": {"run_id": ""},
    "idempotency_key with colon": {"idempotency_key": "a:b"},
    "singleton_key with colon": {"singleton_key": "a:b"},
    "concurrency_key with colon": {"concurrency_key": "a:b"},
    "non-string key": {"idempotency_key": 42},
    "queue as string": {"queue": "default"},
    "unregistered queue": {"queue": queue("elsewhere")},
    "queue differing from the registered one": {"queue": queue("default", default=True, concurrency_limit=3)},
    "actor as string": {"actor": "ops"},
    "non-json meta": {"meta": {"at": datetime(2025, 1, 1, tzinfo=UTC)}},
    "non-string trace carrier": {"trace_carrier": {"traceparent": 1}},
    "unknown dispatch": {"dispatch": "later"},
}


@pytest.mark.parametrize("case", sorted(BAD_TRIGGER_OPTIONS))
async def test_invalid_trigger_options_are_rejected_and_persist_nothing(harness: Harness, case: str) -> None:
    job = task("jobs.options", run=noop)
    runtime = harness.runtime([job])

    with expect_error(VALIDATION):
        await runtime.trigger(job, {"n": 1}, **BAD_TRIGGER_OPTIONS[case])

    await _assert_nothing_persisted(runtime)


async def test_unregistered_task_is_task_not_found(harness: Harness) -> None:
    registered = task("jobs.registered", run=noop)
    stranger = task("jobs.stranger", run=noop)
    impostor = task("jobs.registered", run=noop)  # same id, different handle
    runtime = harness.runtime([registered])

    with expect_error(ErrorCode.TASK_NOT_FOUND):
        await runtime.trigger(stranger)
    with expect_error(ErrorCode.TASK_NOT_FOUND):
        await runtime.trigger("jobs.unknown")
    with expect_error(ErrorCode.TASK_NOT_FOUND):
        await runtime.trigger(impostor)
    with expect_error(ErrorCode.TASK_NOT_FOUND):
        await runtime.run_now(stranger)
    await _assert_nothing_persisted(runtime)


EXECUTION_CALLS: dict[str, Callable[[Runlane], Awaitable[Any]]] = {
    "execute_next unknown": lambda rt: rt.execute_next(batch=10),
    "execute_next lease": lambda rt: rt.execute_next(lease_duration="30 seconds"),
    "execute_next heartbeat >= lease": lambda rt: rt.execute_next(
        lease_duration="10s", heartbeat_interval="10s"
    ),
    "execute_next worker id": lambda rt: rt.execute_next(worker_id="w:1"),
    "execute_next queue name": lambda rt: rt.execute_next(queues=["default"]),  # type: ignore[list-item]
    "execute_next unregistered queue": lambda rt: rt.execute_next(queues=[queue("elsewhere")]),
    "run_now unknown": lambda rt: rt.run_now(rt.tasks["job"], priority=1),
    "tick limit": lambda rt: rt.tick(limit=-1),
}


@pytest.mark.parametrize("case", sorted(EXECUTION_CALLS))
async def test_invalid_execution_options_are_rejected(harness: Harness, case: str) -> None:
    runtime = harness.runtime({"job": task("jobs.exec", run=noop)})
    queued = await runtime.trigger(runtime.tasks["job"])

    with expect_error(VALIDATION):
        await EXECUTION_CALLS[case](runtime)

    run = await runtime.runs.get(queued.run.id)
    assert run is not None
    assert run.status is RunStatus.QUEUED
    assert len(await all_run_ids(runtime)) == 1


async def test_invalid_worker_options_are_configuration_errors(harness: Harness) -> None:
    runtime = harness.runtime([task("jobs.w", run=noop)])
    with expect_error(CONFIG):
        runtime.worker(concurrency=0)
    with expect_error(CONFIG):
        runtime.worker(mode="sometimes")
    with expect_error(CONFIG):
        runtime.worker(poll_interval="1 second")
    with expect_error(CONFIG):
        runtime.worker(prefetch=10)
    await asyncio.sleep(0)


# -- configuration --------------------------------------------------------------------------------


def _build(clock: ControlledClock, /, **options: Any) -> Runlane:
    defaults: dict[str, Any] = {
        "lane": create_local_lane(),
        "queues": [DEFAULT_QUEUE],
        "tasks": [task("jobs.a", run=noop)],
        "clock": clock,
    }
    defaults.update(options)
    return create_runlane(**defaults)


BAD_RUNTIME_CONFIG: dict[str, dict[str, Any]] = {
    "unknown option": {"workers": 3},
    "two default queues": {"queues": [DEFAULT_QUEUE, queue("other", default=True)]},
    "task without queue and no default": {
        "queues": [queue("plain")],
        "tasks": [task("jobs.no_queue", run=noop)],
    },
    "task queue not registered": {"tasks": [task("jobs.elsewhere", run=noop, queue=queue("elsewhere"))]},
    "queue registered twice": {"queues": [DEFAULT_QUEUE, queue("default")]},
    "queue as name": {"queues": ["default"]},
    "queues as a single definition": {"queues": DEFAULT_QUEUE},
    "task id registered twice": {"tasks": [task("jobs.same", run=noop), task("jobs.same", run=noop)]},
    "task id registered twice by name": {
        "tasks": {"a": task("jobs.same", run=noop), "b": task("jobs.same", run=noop)}
    },
    "tasks as string": {"tasks": "jobs.a"},
    "not a task": {"tasks": {"a": noop}},
    "lane not a lane": {"lane": object()},
    "unknown dispatch mode": {"dispatch": "whenever"},
    "clock without now": {"clock": object()},
    "worker id with colon": {"worker_id": "w:1"},
    "bad max payload": {"max_payload_bytes": 0},
}


@pytest.mark.parametrize("case", sorted(BAD_RUNTIME_CONFIG))
def test_create_runlane_rejects_bad_configuration(clock: ControlledClock, case: str) -> None:
    with expect_error(CONFIG):
        _build(clock, **BAD_RUNTIME_CONFIG[case])


async def test_schedule_configuration_is_validated(clock: ControlledClock) -> None:
    reports = queue("reports")
    with expect_error(CONFIG):
        task("jobs.dupe", run=noop, schedule=[Schedule(id="s", every="1m"), Schedule(id="s", every="2m")])
    across = [
        task("jobs.one", run=noop, schedule=[Schedule(id="shared", every="1m")]),
        task("jobs.two", run=noop, schedule=[Schedule(id="shared", cron="0 * * * *")]),
    ]
    with expect_error(CONFIG):
        _build(clock, tasks=across)
    with expect_error(CONFIG):
        _build(
            clock, tasks=[task("jobs.q", run=noop, schedule=[Schedule(id="s", every="1m", queue=reports)])]
        )
    # the same schedule is fine once its queue is registered
    _build(
        clock,
        queues=[DEFAULT_QUEUE, reports],
        tasks=[task("jobs.q", run=noop, schedule=[Schedule(id="s", every="1m", queue=reports)])],
    )


@pytest.mark.parametrize(
    "options",
    [
        {"cron": "61 * * * *"},
        {"cron": "every day"},
        {"cron": "* * * *"},
        {"cron": "0 9 * * *", "time_zone": "Mars/Olympus"},
        {"every": "1m", "time_zone": "UTC"},
        {"every": "0s"},
        {"every": "5 minutes"},
        {},
        {"every": "1m", "cron": "* * * * *"},
        {"run_at": datetime(2025, 1, 1, 9, 0)},
        {"every": "1m", "queue": "default"},
    ],
    ids=repr,
)
def test_bad_schedules_are_configuration_invalid(options: dict[str, Any]) -> None:
    with expect_error(CONFIG):
        Schedule(id="s", **options)


def test_schedule_ids_must_not_contain_a_colon() -> None:
    with expect_error(CONFIG):
        Schedule(id="a:b", every="1m")


def test_schedule_payload_is_validated_against_the_task_schema() -> None:
    with expect_error(CONFIG):
        task("users.signup", run=noop, schema=Signup, schedule=[Schedule(id="s", every="1h", payload={})])


@pytest.mark.parametrize(
    "build",
    [
        lambda: queue("a:b"),
        lambda: queue(""),
        lambda: queue("q", concurrency_limit=0),
        lambda: queue("q", concurrency_limit=True),
        lambda: queue("q", dispatch_timeout="10s"),
        lambda: queue("q", concurrency_limit=1, dispatch_timeout="10 seconds"),
        lambda: queue("q", priority=1),
    ],
    ids=[
        "colon",
        "empty",
        "zero limit",
        "bool limit",
        "timeout without limit",
        "bad timeout",
        "unknown option",
    ],
)
def test_bad_queues_are_configuration_invalid(build: Callable[[], object]) -> None:
    with expect_error(CONFIG):
        build()


@pytest.mark.parametrize(
    "build",
    [
        lambda: task("a:b", run=noop),
        lambda: task("", run=noop),
        lambda: task("t", run="not callable"),  # type: ignore[arg-type]
        lambda: task("t", run=noop, queue="default"),  # type: ignore[arg-type]
        lambda: task("t", run=noop, retry=3),  # type: ignore[arg-type]
        lambda: task("t", run=noop, retry=RetryPolicy(max_attempts=0)),
        lambda: task("t", run=noop, retry=RetryPolicy(max_attempts=2, backoff="2 seconds")),
        lambda: task("t", run=noop, retry=RetryPolicy(2, RetryBackoff("linear", "1s"))),
        lambda: task("t", run=noop, retry=RetryPolicy(2, RetryBackoff("exponential", "1m", "1s"))),
        lambda: task("t", run=noop, schema=42),
        lambda: task("t", run=noop, idempotency_key="a:b"),
        lambda: task("t", run=noop, idempotency_key="k", idempotency_key_ttl="sometimes"),
        lambda: task("t", run=noop, schedule=["every minute"]),  # type: ignore[list-item]
        lambda: task("t", run=noop, timeout="5m"),
    ],
    ids=[
        "colon id",
        "empty id",
        "handler not callable",
        "queue as name",
        "retry not a policy",
        "zero attempts",
        "prose backoff",
        "unknown backoff type",
        "max delay below delay",
        "bad schema",
        "key with colon",
        "bad ttl",
        "schedule not a Schedule",
        "unknown option",
    ],
)
def test_bad_tasks_are_configuration_invalid(build: Callable[[], object]) -> None:
    with expect_error(CONFIG):
        build()


def test_environment_names_are_validated(clock: ControlledClock) -> None:
    with expect_error(CONFIG):
        _build(clock, environment="prod:eu")
    with expect_error(CONFIG):
        _build(clock, environment=42)
    with expect_error(VALIDATION):  # the value object itself is validated where it is built
        Environment("prod:eu")
    assert _build(clock).environment == Environment("default")
    assert _build(clock, environment="staging").environment == Environment("staging")


# -- handler return values ------------------------------------------------------------------------


async def test_sync_handler_returning_an_unawaited_coroutine_fails_validation(harness: Harness) -> None:
    async def real_work() -> None:
        return None

    def handler(payload: object, context: TaskContext) -> object:
        return real_work()  # forgot 'async def' on the handler

    job = task("jobs.forgot_async", run=handler, retry=RetryPolicy(5, "1s"))
    runtime = harness.runtime([job])
    await runtime.trigger(job)

    run = await runtime.execute_next()

    assert run is not None
    assert run.status is RunStatus.FAILED  # not retried: it can never succeed
    assert run.failure is not None
    assert run.failure.code is ErrorCode.VALIDATION_FAILED
    assert run.failure.retryable is False


async def test_malformed_release_inside_a_handler_fails_validation(harness: Harness) -> None:
    async def handler(payload: object, context: TaskContext) -> object:
        return context.release("5 minutes")

    job = task("jobs.bad_release", run=handler, retry=RetryPolicy(5, "1s"))
    runtime = harness.runtime([job])
    await runtime.trigger(job)

    run = await runtime.execute_next()

    assert run is not None
    assert run.status is RunStatus.FAILED
    assert run.failure is not None
    assert run.failure.code is ErrorCode.VALIDATION_FAILED
    assert run.releases == 0
