"""Scenario 5: every wakeup delivered three times, plus stale ones, through moto's SQS server.

Due runs come in waves. In even waves they are triggered with eager dispatch through the real SQS
transport (one wakeup each) and the harness sends two more copies of every body; in odd waves the
harness sends all three copies side by side, so one receive batch runs them concurrently. Extra
wakeups name runs that are terminal (cancelled), not due (an hour ahead), leased by another holder,
on another queue, or do not exist. Two consumer processes (``create_sqs_delivery_consumer`` ->
``execute_delivery``) drain the queue. Exactly one execution per due run; every other wakeup is
acknowledged with its ``DeliveryIgnoredReason``; the queue ends empty.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from runlane import DeliveryIgnoredReason, DeliveryMessage, Environment
from runlane.application.execute_next import claim_runs
from runlane.application.execution_options import execution_options
from runlane.infrastructure.sqs import create_sqs_wakeup_body
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures, wait_until
from tests.faults.history import count_rows, load_history
from tests.faults.kit import ENVIRONMENT, base_config, trigger_all
from tests.faults.processes import ProcessGroup, write_config
from tests.faults.procs.app import ASYNC_TASK, SYNC_TASK, build_runtime
from tests.support.moto_server import make_sqs_client

NAME = "wakeups"
COPIES = 3
WAVE = 25  # due runs per wave; the queue is kept under 2 * WAVE messages
DUE_REASONS = {
    DeliveryIgnoredReason.ALREADY_LEASED.value,
    DeliveryIgnoredReason.TERMINAL.value,
    DeliveryIgnoredReason.CLAIM_LOST.value,
}


@dataclass(frozen=True)
class Params:
    runs: int
    extras: int  # runs of each stale kind
    consumers: int
    timeout: float


CI = Params(runs=200, extras=10, consumers=2, timeout=180)
FULL = Params(runs=1000, extras=50, consumers=2, timeout=600)


async def _stale_runs(runtime: Any, params: Params) -> dict[str, list[str]]:
    """Runs that stale wakeups will name; none of them gets a wakeup of its own."""
    held, other = runtime.queues["held"], runtime.queues["other"]
    few = [(ASYNC_TASK, {"work_ms": 0})] * params.extras
    terminal = await trigger_all(runtime, few, dispatch="deferred")
    for run_id in terminal:
        await runtime.runs.cancel(run_id)
    not_due = await trigger_all(runtime, few, dispatch="deferred", delay="1h")
    leased = await trigger_all(runtime, few, dispatch="deferred", queue=held)
    options = execution_options(default_worker_id="holder", lease_duration="10m")
    claimed = await claim_runs(runtime.context, options, queues=("held",), limit=params.extras)
    assert len(claimed) == params.extras, "could not lease the held runs"
    wrong = await trigger_all(runtime, few, dispatch="deferred", queue=other)
    missing = [f"run_missing_{uuid.uuid4().hex}" for _ in range(params.extras)]
    return {
        "terminal": terminal,
        "not_due": not_due,
        "leased": leased,
        "wrong_queue": wrong,
        "missing": missing,
    }


def _send(client: Any, url: str, bodies: list[str]) -> None:
    for start in range(0, len(bodies), 10):
        chunk = bodies[start : start + 10]
        response = client.send_message_batch(
            QueueUrl=url, Entries=[{"Id": f"m{i}", "MessageBody": body} for i, body in enumerate(chunk)]
        )
        assert not response.get("Failed"), response.get("Failed")


def _queue_depth(client: Any, url: str) -> int:
    attributes = client.get_queue_attributes(
        QueueUrl=url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]) + int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("wakeups")
    logs = world.scratch_dir("wakeups")
    endpoint = world.moto_endpoint()
    client = make_sqs_client(endpoint)
    url = client.create_queue(
        QueueName=f"faults-{uuid.uuid4().hex[:8]}", Attributes={"VisibilityTimeout": "60"}
    )["QueueUrl"]
    config = base_config(
        world,
        schema,
        logs,
        queues=["main", "held", "other"],
        transport={"kind": "sqs", "endpoint": endpoint, "queue_urls": {"main": url}},
        lease="30s",
        heartbeat="5s",
        concurrency=10,
        pool_size=10,
    )
    path = str(write_config(logs, "config", config))
    environment = Environment(ENVIRONMENT)

    def body(run_id: str, queue: str = "main") -> str:
        message = DeliveryMessage(environment=environment, run_id=run_id, queue=queue, requested_at=now)
        return create_sqs_wakeup_body(message)

    now = datetime.now(UTC)
    groups: dict[str, list[str]] = {}
    sent = 0
    with ProcessGroup(logs) as group:

        async def produce() -> None:
            """Feed the queue in waves so it stays shallow (moto slows down with queue depth)."""
            nonlocal sent
            async with build_runtime(config, "producer") as runtime:
                groups.update(await _stale_runs(runtime, params))
                stale = [
                    body(run_id, "held" if kind == "leased" else "main")
                    for kind in ("terminal", "not_due", "leased", "wrong_queue", "missing")
                    for run_id in groups[kind]
                    for _ in range(COPIES)
                ]
                for index in range(params.consumers):
                    group.spawn(f"c{index}", "sqs_consumer.py", path, f"c{index}", url, ready=False)
                await asyncio.to_thread(group.wait_ready)
                groups["due"] = []
                waves = max(1, params.runs // WAVE)
                for wave in range(waves):
                    size = params.runs // waves + (1 if wave < params.runs % waves else 0)
                    items = [(SYNC_TASK if i % 2 else ASYNC_TASK, {"work_ms": 400}) for i in range(size)]
                    if wave % 2 == 0:
                        # The transport publishes one wakeup per run; two copies follow a moment later.
                        due = await trigger_all(runtime, items, dispatch="eager")
                        copies = [body(run_id) for run_id in due for _ in range(COPIES - 1)]
                    else:
                        # All three copies side by side: one receive batch runs them concurrently.
                        due = await trigger_all(runtime, items, dispatch="deferred")
                        copies = [body(run_id) for run_id in due for _ in range(COPIES)]
                    groups["due"] += due
                    share = stale[wave * len(stale) // waves : (wave + 1) * len(stale) // waves]
                    await asyncio.to_thread(_send, client, url, copies + share)
                    sent += len(copies) + len(share) + (len(due) if wave % 2 == 0 else 0)
                    for _ in range(200):  # at most 20 s per wave
                        if await asyncio.to_thread(_queue_depth, client, url) <= 2 * WAVE:
                            break
                        group.reap_unexpected()
                        await asyncio.sleep(0.1)

        asyncio.run(produce())
        expected_messages = len(groups["due"]) * COPIES + len(groups["terminal"]) * 5 * COPIES

        def drained() -> bool:
            delivered = count_rows(world.libpq_dsn, schema, "fault_deliveries")
            return delivered >= expected_messages and _queue_depth(client, url) == 0

        finished = wait_until(drained, timeout=params.timeout, interval=0.5, on_tick=group.reap_unexpected)
        fig.check(finished, f"queue not drained within {params.timeout}s")
        for process in group.processes.values():
            process.terminate()
        for process in group.processes.values():
            process.wait(timeout=30)
        crashes = group.reap_unexpected() + group.exits
    history = load_history(world.libpq_dsn, schema)
    depth = _queue_depth(client, url)
    client.delete_queue(QueueUrl=url)
    by_run: dict[str, list[dict[str, Any]]] = {}
    for delivery in history.deliveries:
        by_run.setdefault(delivery["run_id"], []).append(delivery)
    due = history.select(groups["due"])
    executed = Counter(d["run_id"] for d in history.deliveries if d["result"] == "executed")
    reasons = Counter(d["reason"] or d["result"] for d in history.deliveries if d["result"] != "executed")
    fig.runs = len(due.runs)
    fig.lost = len(due.lost())
    fig.duplicated = len(due.duplicated()) + sum(1 for n in executed.values() if n > 1)
    fig.add(
        messages=expected_messages,
        sent=sent,
        redelivered=len(history.deliveries) - expected_messages,
        executed=sum(executed.values()),
        ignored=dict(sorted(reasons.items())),
        errors=reasons.get("error", 0),
        left_in_queue=depth,
        crashes=len(crashes),
    )
    fig.check(sent == expected_messages, f"{sent} messages sent, expected {expected_messages}")
    # SQS standard queues deliver at least once (moto too, now and then): more deliveries than
    # messages are allowed, fewer are not; what must hold exactly is one execution per due run.
    fig.check(len(history.deliveries) >= expected_messages, f"{len(history.deliveries)} deliveries recorded")
    fig.check(set(executed) == set(groups["due"]), "not exactly the due runs were executed")
    fig.check(all(n == 1 for n in executed.values()), "a due run was executed more than once")
    fig.check(len(due.ledger) == params.runs, f"{len(due.ledger)} ledger rows for {params.runs} due runs")
    for run_id in groups["due"]:
        extra = [d["reason"] for d in by_run.get(run_id, []) if d["result"] != "executed"]
        fig.check(
            len(extra) >= COPIES - 1 and set(extra) <= DUE_REASONS,
            f"{run_id}: duplicate wakeups gave {extra}",
        )
    expected_reason = {
        "terminal": DeliveryIgnoredReason.TERMINAL,
        "not_due": DeliveryIgnoredReason.NOT_DUE,
        "leased": DeliveryIgnoredReason.ALREADY_LEASED,
        "wrong_queue": DeliveryIgnoredReason.WRONG_QUEUE,
        "missing": DeliveryIgnoredReason.RUN_NOT_FOUND,
    }
    for kind, reason in expected_reason.items():
        got = Counter(d["reason"] for run_id in groups[kind] for d in by_run.get(run_id, []))
        fig.check(
            set(got) == {reason.value} and got[reason.value] >= COPIES * params.extras,
            f"{kind} wakeups: expected {COPIES * params.extras} x {reason.value}, got {dict(got)}",
        )
    untouched = history.select(groups["not_due"] + groups["wrong_queue"] + groups["leased"])
    fig.check(
        all(
            run.attempts == 0 or (run.lease is not None and run.lease.worker_id == "holder")
            for run in untouched.runs.values()
        ),
        "a stale wakeup started a run that was not due",
    )
    fig.check(reasons.get("error", 0) == 0, "execute_delivery raised for some wakeups")
    fig.check(depth == 0, f"{depth} messages left in the queue (not acknowledged)")
    fig.check(not crashes, f"unexpected consumer exits: {crashes}")
    return fig.finish()
