"""A small app for CLI, worker and Lambda tests: handlers leave marker files the test can read.

Payloads name a ``marker_dir``; handlers write ``<run_id>.started`` / ``<run_id>.done`` there, so a
test in another process can see when an attempt began and whether it finished.
"""

import asyncio
import json
from pathlib import Path
from typing import Any

from runlane import RunlaneApp, RunlaneError, Schedule, TaskContext, queue, task
from runlane.domain.vocabulary import ErrorCode

default = queue("default", default=True)
emails = queue("emails")


def _marker(payload: Any, context: TaskContext, suffix: str, content: str = "") -> None:
    if isinstance(payload, dict) and "marker_dir" in payload:
        Path(payload["marker_dir"], f"{context.run.id}.{suffix}").write_text(content, encoding="utf-8")


async def echo(payload: Any, context: TaskContext) -> None:
    _marker(payload, context, "done", json.dumps(payload))


async def sleepy(payload: Any, context: TaskContext) -> None:
    """Sleeps ``seconds`` (default 2) and ignores abort signals, as a slow external call would."""
    _marker(payload, context, "started")
    await asyncio.sleep(float(payload.get("seconds", 2)) if isinstance(payload, dict) else 2.0)
    _marker(payload, context, "done")


async def patient(payload: Any, context: TaskContext) -> None:
    """Like ``sleepy`` but cooperative: stops when its abort signal fires (a worker shutdown)."""
    _marker(payload, context, "started")
    deadline = asyncio.get_running_loop().time() + float(payload.get("seconds", 30))
    while asyncio.get_running_loop().time() < deadline:
        context.signal.throw_if_aborted()
        await asyncio.sleep(0.02)
    _marker(payload, context, "done")


async def trace_probe(payload: Any, context: TaskContext) -> None:
    """Records what the handler saw of the producer's trace context."""
    _marker(payload, context, "done", json.dumps(context.run.trace_carrier or {}))


async def broken(payload: Any, context: TaskContext) -> None:
    raise RunlaneError(ErrorCode.TASK_FAILED, "broken on purpose", retryable=False)


def _tasks() -> dict[str, Any]:
    return {
        "echo": task("test.echo", run=echo),
        "sleepy": task("test.sleepy", run=sleepy),
        "patient": task("test.patient", run=patient),
        "trace_probe": task("test.trace_probe", run=trace_probe),
        "broken": task("test.broken", run=broken),
        "email": task("test.email", run=echo, queue=emails, idempotency_key=lambda p: f"email.{p['to']}"),
    }


app = RunlaneApp(queues=[default, emails], tasks=_tasks(), profiles={"mail": ["emails"]})


def scheduled_app() -> RunlaneApp:
    """A zero-argument factory whose app seeds its own runs: a schedule due on every tick.

    On the process-local lane this is how one ``runlane worker --mode drain --with-tick`` has work.
    """
    ping_queue = queue("default", default=True)
    return RunlaneApp(
        queues=[ping_queue],
        tasks={
            "ping": task("test.ping", run=echo, schedule=[Schedule(id="test.ping.every_second", every="1s")])
        },
    )


not_an_app = 42


def exploding_app() -> RunlaneApp:
    """A factory with a bug: the CLI must report it in one line (exit 70), or in full with --debug."""
    raise ValueError("the app factory has a bug")
