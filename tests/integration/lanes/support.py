"""Building blocks for the Postgres/SQS lane end-to-end tests.

Everything runs against the real Postgres cluster and the moto SQS server over HTTP. The wrappers
here forward to the real objects and only observe (a ledger of handler calls, ``get_run`` counts,
delivery results) or inject provider faults at the boto3 client, the one thing moto cannot do on
demand.
"""

from __future__ import annotations

import asyncio
import threading
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runlane import (
    DeliveryMessage,
    DeliveryResult,
    Environment,
    OutboxMessageStatus,
    Runlane,
    RunStatus,
    TaskContext,
    TaskDefinition,
    create_runlane,
    queue,
    task,
)
from runlane.infrastructure.lanes import create_postgres_sqs_lane
from runlane.infrastructure.sqs import SqsDeliveryConsumer, SqsDeliveryFailure, sqs_queue
from runlane.ports.lane import Lane, create_lane
from runlane.ports.storage_commands import GetRun, ListOutboxMessages, OutboxMessage
from runlane.testing import ControlledClock
from tests.unit.sqs.fakes import client_error, queue_counts

ENVIRONMENT = Environment("production")
EMAILS = queue("emails", default=True)
REPORTS = queue("reports")
VISIBILITY_SECONDS = 30


class Ledger:
    """The task handler: counts how often each run's handler ran (the exactly-once evidence).

    ``gate`` (when set) holds every handler until the test opens it, so a run stays leased.
    """

    def __init__(self, *, gate: asyncio.Event | None = None) -> None:
        self.calls: Counter[str] = Counter()
        self.started = asyncio.Event()
        self._gate = gate

    async def __call__(self, payload: object, context: TaskContext) -> dict[str, Any]:
        self.calls[context.run.id] += 1
        self.started.set()
        if self._gate is not None:
            await self._gate.wait()
        return {"handled": context.run.id}

    def total(self) -> int:
        return sum(self.calls.values())


def ledger_task(ledger: Ledger, *, task_queue: Any = EMAILS) -> TaskDefinition:
    return task("emails.send", run=ledger, queue=task_queue)


class GetRunCounter:
    """The real storage, counting ``get_run`` per run id (to prove a message never reached storage)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.get_run_calls: Counter[str] = Counter()

    async def get_run(self, query: GetRun) -> Any:
        self.get_run_calls[query.run_id] += 1
        return await self._inner.get_run(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def with_storage(lane: Lane, storage: Any) -> Lane:
    """The same lane composition with ``storage`` (a wrapper of the lane's own storage)."""
    return create_lane(
        name=lane.name,
        storage=storage,
        transport=lane.transport,
        production_durable=lane.capabilities.production_durable,
    )


@dataclass
class DeliveryRecorder:
    """Forwards to ``runtime.execute_delivery`` and keeps every result, by run id."""

    runtime: Runlane
    results: dict[str, list[DeliveryResult]] = field(default_factory=dict)

    async def __call__(self, message: DeliveryMessage, **options: Any) -> DeliveryResult:
        result = await self.runtime.execute_delivery(message, **options)
        self.results.setdefault(message.run_id, []).append(result)
        return result


@dataclass
class FailureLog:
    """``on_delivery_failure`` callback: keeps every reported failure."""

    failures: list[SqsDeliveryFailure] = field(default_factory=list)

    def __call__(self, failure: SqsDeliveryFailure) -> None:
        self.failures.append(failure)


class RecordingClient:
    """A real boto3 SQS client that records what was sent, received and deleted.

    ``send_fault(call_number, entries)`` may inject a provider fault into a ``SendMessageBatch``
    call: raise, or return a response; ``None`` lets the real call happen. Calls arrive from worker
    threads (the transport uses ``asyncio.to_thread``), hence the lock.
    """

    def __init__(
        self,
        client: Any,
        send_fault: Callable[[int, list[dict[str, Any]]], dict[str, Any] | None] | None = None,
    ) -> None:
        self._client = client
        self._send_fault = send_fault
        self._lock = threading.Lock()
        self.send_calls = 0
        self.accepted: list[dict[str, Any]] = []  # {"Id", "MessageId", "Body"} per accepted entry
        self.received: list[dict[str, Any]] = []
        self.deleted_handles: list[str] = []

    def send_message_batch(self, **kwargs: Any) -> Any:
        with self._lock:
            self.send_calls += 1
            number = self.send_calls
        entries: list[dict[str, Any]] = kwargs["Entries"]
        if self._send_fault is not None:
            injected = self._send_fault(number, entries)
            if injected is not None:
                return injected
        response = self._client.send_message_batch(**kwargs)
        bodies = {entry["Id"]: entry["MessageBody"] for entry in entries}
        with self._lock:
            self.accepted.extend(
                {"Id": item["Id"], "MessageId": item["MessageId"], "Body": bodies[item["Id"]]}
                for item in response.get("Successful", [])
            )
        return response

    def receive_message(self, **kwargs: Any) -> Any:
        response = self._client.receive_message(**kwargs)
        with self._lock:
            self.received.extend(response.get("Messages", []))
        return response

    def delete_message_batch(self, **kwargs: Any) -> Any:
        response = self._client.delete_message_batch(**kwargs)
        handles = {entry["Id"]: entry["ReceiptHandle"] for entry in kwargs["Entries"]}
        with self._lock:
            self.deleted_handles.extend(handles[item["Id"]] for item in response.get("Successful", []))
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)


def thirty_percent_failing(number: int, entries: list[dict[str, Any]]) -> dict[str, Any] | None:
    """Calls 2, 5, 8 of every ten fail (exactly 30%): throttled in even decades, rejected in odd ones."""
    if number % 10 not in (2, 5, 8):
        return None
    if (number // 10) % 2 == 0:
        raise client_error("ThrottlingException", status=400)
    return {
        "Successful": [],
        "Failed": [
            {"Id": entry["Id"], "SenderFault": False, "Code": "InternalError", "Message": "injected"}
            for entry in entries
        ],
        "ResponseMetadata": {"RequestId": f"req-injected-{number}", "HTTPStatusCode": 200},
    }


def build_lane(
    *,
    dsn: str,
    schema: str,
    client: Any,
    bindings: Sequence[Any],
    sqs_options: Mapping[str, Any] | None = None,
) -> Lane:
    return create_postgres_sqs_lane(
        postgres={"connection_string": dsn, "schema": schema, "pool_size": 10, "max_overflow": 10},
        sqs={"client": client, "queues": list(bindings), **(sqs_options or {})},
    )


def build_runtime(lane: Lane, tasks: Sequence[TaskDefinition], clock: ControlledClock) -> Runlane:
    return create_runlane(
        lane=lane, queues=[EMAILS, REPORTS], tasks=list(tasks), environment=ENVIRONMENT, clock=clock
    )


def bindings_for(emails_url: str, reports_url: str) -> list[Any]:
    return [sqs_queue(EMAILS, queue_url=emails_url), sqs_queue(REPORTS, queue_url=reports_url)]


async def run_status(runtime: Runlane, run_id: str) -> RunStatus:
    run = await runtime.lane.storage.get_run(GetRun(environment=runtime.environment, run_id=run_id))
    assert run is not None, run_id
    return run.status


async def outbox(runtime: Runlane) -> tuple[OutboxMessage, ...]:
    return await runtime.lane.storage.list_outbox_messages(
        ListOutboxMessages(environment=runtime.environment, limit=10_000)
    )


async def unpublished(runtime: Runlane) -> list[OutboxMessage]:
    return [row for row in await outbox(runtime) if row.status is not OutboxMessageStatus.PUBLISHED]


async def wait_for_queue(
    client: Any, queue_url: str, expected: tuple[int, int], *, within: float = 30.0
) -> None:
    """Poll ``(visible, in flight)`` until it matches; the counts are exact on moto."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        counts = await asyncio.to_thread(queue_counts, client, queue_url)
        if counts == expected:
            return
        if loop.time() > deadline:
            raise AssertionError(f"queue counts stayed {counts}, expected {expected} within {within}s")
        await asyncio.sleep(0.05)


async def stop(consumer: SqsDeliveryConsumer) -> None:
    """Stop the consumer; its loop must have ended cleanly (no receive error)."""
    await asyncio.wait_for(consumer.stop(), timeout=30)
    assert consumer.closed.done() and consumer.closed.exception() is None
