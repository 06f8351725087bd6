"""Test doubles for the SQS adapter: a recording ``execute_delivery``, client proxies, event builders.

The client proxies wrap a *real* boto3 client (moto in-process or moto server) and only record
calls or inject the provider failures moto cannot produce on demand.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from runlane.domain.values import DeliveryMessage, Environment
from runlane.infrastructure.sqs import create_sqs_wakeup_body

ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


def make_message(
    run_id: str = "run_1",
    *,
    queue: str = "emails",
    environment: str = "production",
    requested_at: datetime | None = None,
    trace_carrier: dict[str, str] | None = None,
) -> DeliveryMessage:
    return DeliveryMessage(
        environment=Environment(environment),
        run_id=run_id,
        queue=queue,
        requested_at=requested_at,
        trace_carrier=trace_carrier,
    )


class ManualClock:
    def __init__(self, now: datetime | None = None) -> None:
        self.current = now or datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@dataclass
class RecordingDelivery:
    """A fake ``execute_delivery``: records every call and fails for chosen run ids."""

    fail_run_ids: set[str] = field(default_factory=set)
    delay_seconds: float = 0.0
    result: object = "ignored"
    calls: list[DeliveryMessage] = field(default_factory=list)
    options: list[dict[str, Any]] = field(default_factory=list)
    in_flight: int = 0
    max_in_flight: int = 0

    async def __call__(self, message: DeliveryMessage, **options: Any) -> object:
        self.calls.append(message)
        self.options.append(options)
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay_seconds:
                await asyncio.sleep(self.delay_seconds)
            if message.run_id in self.fail_run_ids:
                raise RuntimeError(f"storage unavailable for {message.run_id}")
            return self.result
        finally:
            self.in_flight -= 1

    @property
    def run_ids(self) -> list[str]:
        return [message.run_id for message in self.calls]


def client_error(code: str, *, status: int = 400, operation: str = "SendMessageBatch") -> ClientError:
    response: Any = {
        "Error": {"Code": code, "Message": f"{code} (injected)"},
        "ResponseMetadata": {"RequestId": "req-injected", "HTTPStatusCode": status},
    }
    return ClientError(response, operation)


class ClientProxy:
    """Forwards to a real boto3 SQS client, recording ``(operation, kwargs)`` of every call.

    ``hooks[operation](call, kwargs)`` may replace a call: ``call(**kwargs)`` performs the real one.
    """

    def __init__(self, client: Any, hooks: Mapping[str, Callable[..., Any]] | None = None) -> None:
        self._client = client
        self.hooks = dict(hooks or {})
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def __getattr__(self, name: str) -> Any:
        target = getattr(self._client, name)
        if not callable(target):
            return target

        def call(**kwargs: Any) -> Any:
            self.calls.append((name, kwargs))
            hook = self.hooks.get(name)
            return hook(target, kwargs) if hook is not None else target(**kwargs)

        return call

    def calls_to(self, operation: str) -> list[dict[str, Any]]:
        return [kwargs for name, kwargs in self.calls if name == operation]


Hook = Callable[[Callable[..., Any], dict[str, Any]], Any]


def reject_entries(should_reject: Callable[[dict[str, Any]], bool], *, sender_fault: bool, code: str) -> Hook:
    """A ``send_message_batch`` hook: chosen entries never reach SQS and come back as ``Failed``."""

    def hook(call: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        entries = kwargs["Entries"]
        kept = [entry for entry in entries if not should_reject(entry)]
        rejected = [entry for entry in entries if should_reject(entry)]
        if kept:
            response = call(**{**kwargs, "Entries": kept})
        else:
            response = {"Successful": [], "ResponseMetadata": {"RequestId": "req-local"}}
        response.setdefault("Failed", [])
        response["Failed"] = [
            *response["Failed"],
            *({"Id": entry["Id"], "SenderFault": sender_fault, "Code": code} for entry in rejected),
        ]
        return response

    return hook


def chaos_send(rng: random.Random, *, throttle_rate: float, reject_rate: float) -> Hook:
    """A ``send_message_batch`` hook: some calls are throttled whole, some entries rejected (not sent)."""

    def hook(call: Callable[..., Any], kwargs: dict[str, Any]) -> Any:
        if rng.random() < throttle_rate:
            raise client_error("ThrottlingException")
        chosen = {entry["Id"] for entry in kwargs["Entries"] if rng.random() < reject_rate}
        return reject_entries(lambda entry: entry["Id"] in chosen, sender_fault=False, code="InternalError")(
            call, kwargs
        )

    return hook


def lambda_record(
    *,
    message_id: str,
    body: Any,
    attributes: Mapping[str, str] | None = None,
    queue_name: str = "wakeups",
) -> dict[str, Any]:
    """One record as the Lambda SQS event source delivers it (camelCase, ``stringValue``)."""
    return {
        "messageId": message_id,
        "receiptHandle": f"rh-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1735787045678"},
        "messageAttributes": {
            name: {"stringValue": value, "stringListValues": [], "binaryListValues": [], "dataType": "String"}
            for name, value in (attributes or {}).items()
        },
        "md5OfBody": "",
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:{ACCOUNT_ID}:{queue_name}",
        "awsRegion": REGION,
    }


def lambda_event_from_messages(
    messages: Iterable[Mapping[str, Any]], *, queue_name: str = "wakeups"
) -> dict[str, Any]:
    """Turn ``ReceiveMessage`` messages into the Lambda event Lambda would build from them."""
    return {
        "Records": [
            lambda_record(
                message_id=message["MessageId"],
                body=message["Body"],
                attributes={
                    name: value["StringValue"] for name, value in message.get("MessageAttributes", {}).items()
                },
                queue_name=queue_name,
            )
            for message in messages
        ]
    }


def drain(client: Any, queue_url: str, *, rounds: int = 20, delete: bool = True) -> list[dict[str, Any]]:
    """Receive (and by default delete) everything visible in a queue, bounded by ``rounds`` polls."""
    seen: list[dict[str, Any]] = []
    for _ in range(rounds):
        response = client.receive_message(
            QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0, MessageAttributeNames=["All"]
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        seen.extend(messages)
        if delete:
            client.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(messages)],
            )
    return seen


async def wait_until(condition: Callable[[], bool], *, within: float = 10.0, interval: float = 0.02) -> None:
    """Poll ``condition`` until it holds; fail the test after ``within`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not condition():
        if loop.time() > deadline:
            raise AssertionError(f"condition not met within {within}s")
        await asyncio.sleep(interval)


def queue_counts(client: Any, queue_url: str) -> tuple[int, int]:
    """``(visible, in flight)`` message counts of a queue."""
    attributes = client.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def send_wakeups(client: Any, queue_url: str, run_ids: Iterable[str], **entry_fields: Any) -> None:
    """Put plain (unsigned) wakeup bodies on a queue, like the transport would."""
    for run_id in run_ids:
        client.send_message(
            QueueUrl=queue_url, MessageBody=create_sqs_wakeup_body(make_message(run_id)), **entry_fields
        )
