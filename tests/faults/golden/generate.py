"""Write the golden histories: drive a real runtime (local lane, controlled clock) through every
event type and dump each run's events and record as wire JSON."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runlane import (
    Actor,
    ActorType,
    ErrorCode,
    RetryPolicy,
    Runlane,
    RunlaneError,
    TaskContext,
    create_runlane,
    queue,
    task,
)
from runlane.application.execute_next import claim_runs
from runlane.application.execution_options import execution_options
from runlane.domain.schedules import Schedule
from runlane.infrastructure.memory import create_local_lane
from runlane.testing import ControlledClock
from tests.faults.golden import GOLDEN_DIR, load_golden, replay

START = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
TRACE = {"traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}


class _Flaky:
    """Fails the first ``failures`` attempts of each run, then succeeds."""

    def __init__(self, failures: int) -> None:
        self.failures = failures

    def __call__(self, payload: Any, context: TaskContext) -> None:
        if context.attempt <= self.failures:
            raise RuntimeError("flaky")


def _release_once(payload: Any, context: TaskContext) -> Any:
    if context.run.releases == 0:
        return context.release("1m", reason="rate_limited", meta={"retryAfterMs": 60000})
    return None


async def _until_cancelled(payload: Any, context: TaskContext) -> None:
    await context.signal.wait()


def _runtime(clock: ControlledClock) -> Runlane:
    default = queue("default", default=True)
    return create_runlane(
        lane=create_local_lane(),
        queues=[default, queue("reports")],
        tasks=[
            task("golden.ok", run=lambda payload, context: None),
            task("golden.flaky", run=_Flaky(1), retry=RetryPolicy(max_attempts=3, backoff="30s")),
            task("golden.broken", run=_Flaky(99), retry=RetryPolicy(max_attempts=2, backoff="10s")),
            task("golden.release", run=_release_once),
            task("golden.slow", run=_until_cancelled),
            task(
                "golden.scheduled",
                run=lambda payload, context: None,
                schedule=Schedule(id="golden-every-5m", every="5m", payload={"from": "schedule"}),
            ),
        ],
        environment="golden",
        clock=clock,
        dispatch="deferred",
    )


async def _histories(runtime: Runlane, clock: ControlledClock) -> dict[str, tuple[str, str]]:
    """name -> (description, run id) for every golden run, after driving them to an end."""
    runs: dict[str, tuple[str, str]] = {}

    async def step(advance: str = "1s") -> None:
        clock.advance(advance)
        await runtime.tick()

    async def drain() -> None:
        while await runtime.execute_next() is not None:
            clock.advance("1s")

    def add(name: str, description: str, run_id: str) -> None:
        runs[name] = (description, run_id)

    rich = await runtime.trigger(
        "golden.ok",
        {"text": "h\u00e9llo \u0000 \U0001f642", "n": [1, 2.5, -0.0, 2**63], "nested": {"a": None}},
        run_id="run_golden_succeeded",
        idempotency_key="golden-key",
        idempotency_key_ttl="7d",
        singleton_key="golden-singleton",
        concurrency_key="tenant-1",
        trace_carrier=TRACE,
        meta={"source": "golden"},
        actor=Actor(type=ActorType.USER, id="user_1"),
    )
    add("succeeded", "trigger with every option, one successful attempt", rich.run.id)
    await step()
    await drain()

    flaky = await runtime.trigger("golden.flaky", {"n": 1}, run_id="run_golden_retried")
    add("retried_then_succeeded", "a retryable failure, retry_scheduled, then success", flaky.run.id)
    broken = await runtime.trigger("golden.broken", None, run_id="run_golden_failed")
    add("failed_after_retries", "retry budget of 2 used up: ends failed", broken.run.id)
    released = await runtime.trigger("golden.release", {"n": 2}, run_id="run_golden_released")
    add("released_then_succeeded", "the handler returns a release once, then succeeds", released.run.id)
    delayed = await runtime.trigger("golden.ok", {"n": 3}, run_id="run_golden_delayed", delay="90s")
    add("delayed", "run_at in the future, executed once due", delayed.run.id)
    for _ in range(8):
        await drain()
        await step("45s")

    pending = await runtime.trigger(
        "golden.ok", None, run_id="run_golden_cancelled", queue=runtime.queues["reports"]
    )
    await runtime.runs.cancel(
        pending.run.id, reason="not needed", actor=Actor(type=ActorType.OPERATOR, id="op")
    )
    add("cancelled_while_pending", "cancelled before any attempt", pending.run.id)

    slow = await runtime.trigger("golden.slow", None, run_id="run_golden_cancel_requested")
    attempt = asyncio.ensure_future(runtime.execute_next())
    for _ in range(100):
        current = await runtime.runs.get(slow.run.id)
        if current is not None and current.status.value == "running":
            break
        await asyncio.sleep(0.01)
    await runtime.runs.cancel(slow.run.id, reason="operator stop")
    await asyncio.wait_for(attempt, timeout=10)
    add("cancellation_requested", "cancelled while running: request, then the attempt ends", slow.run.id)

    options = execution_options(default_worker_id="worker_crashed", lease_duration="30s")
    for run_id, name, description in (
        (
            "run_golden_lease_expired",
            "lease_expired_then_succeeded",
            "a holder vanished; recovered and retried",
        ),
        (
            "run_golden_lease_expired_failed",
            "lease_expired_failed",
            "a holder vanished with no retry budget left",
        ),
        (
            "run_golden_cancel_expired",
            "cancel_then_lease_expired",
            "cancellation requested, the holder vanished",
        ),
    ):
        task_id = "golden.flaky" if name == "lease_expired_then_succeeded" else "golden.ok"
        await runtime.trigger(task_id, {"run": name}, run_id=run_id)
        claimed = await claim_runs(runtime.context, options, queues=None, limit=1)
        assert [c.run.id for c in claimed] == [run_id], claimed
        if name == "cancel_then_lease_expired":
            await runtime.runs.cancel(run_id)
        clock.advance("31s")
        await runtime.tick()
        add(name, description, run_id)
    for _ in range(4):
        await step("31s")
        await drain()

    source = await runtime.runs.rerun("run_golden_succeeded")
    add("rerun", "an operator rerun of a succeeded run", source.run.id)
    retried = await runtime.runs.retry("run_golden_failed")
    add("manual_retry", "an operator retry of a failed run", retried.run.id)
    await step()
    await drain()
    await step("5m")
    scheduled = await runtime.runs.list(task_ids=["golden.scheduled"])
    await drain()
    add("scheduled", "materialised by tick from an interval schedule", scheduled.data[0].id)
    return runs


async def collect() -> dict[str, dict[str, Any]]:
    """Every golden document: description, the run's events (wire) and its record (wire)."""
    clock = ControlledClock(START)
    runtime = _runtime(clock)
    documents: dict[str, dict[str, Any]] = {}
    async with runtime:
        for name, (description, run_id) in (await _histories(runtime, clock)).items():
            page = await runtime.runs.events(run_id, limit=500)
            record = await runtime.runs.get(run_id)
            assert record is not None and page.next_cursor is None
            documents[name] = {
                "description": description,
                "events": [event.to_wire() for event in page.data],
                "run": record.to_wire(),
            }
    return documents


def write(directory: Path = GOLDEN_DIR) -> list[Path]:
    """Regenerate the fixtures (old files are replaced) and check them before returning."""
    documents = asyncio.run(collect())
    for old in directory.glob("*.json"):
        old.unlink()
    paths = []
    for name, document in sorted(documents.items()):
        path = directory / f"{name}.json"
        path.write_text(json.dumps(document, indent=1, ensure_ascii=True) + "\n", encoding="utf-8")
        paths.append(path)
    golden = load_golden(directory)
    problems = [problem for run in golden for problem in replay(run)]
    if problems:
        raise RunlaneError(ErrorCode.INTERNAL_ERROR, "; ".join(problems))
    return paths
