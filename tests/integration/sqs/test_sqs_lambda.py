"""The Lambda handler fed with events built from messages the transport really put on SQS."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from runlane.domain.queues import queue
from runlane.domain.vocabulary import SqsDeliveryFailurePhase, SqsFifoMessageGroup
from runlane.infrastructure.sqs import (
    SqsDeliveryFailure,
    SqsFifoOptions,
    create_sqs_lambda_handler,
    sqs_queue,
    sqs_transport,
)
from runlane.ports.transport import PublishWakeupAttempt, PublishWakeups
from tests.integration.sqs.conftest import QueueFactory
from tests.unit.sqs.fakes import RecordingDelivery, lambda_event_from_messages, make_message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


def wakeups(count: int) -> PublishWakeups:
    return PublishWakeups(
        attempts=tuple(
            PublishWakeupAttempt(outbox_message_id=f"outbox_{i}", message=make_message(f"run_{i}"))
            for i in range(count)
        )
    )


def receive_all(client: SQSClient, url: str, count: int) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    for _ in range(10):
        response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
        messages += [dict(m) for m in response.get("Messages", [])]
        if len(messages) >= count:
            break
    assert len(messages) == count
    return messages


async def test_a_batch_of_10_with_3_failures_reports_exactly_those_3(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("wakeups")
    transport = sqs_transport(client=sqs_client, queues=[sqs_queue(queue("emails"), queue_url=url)])
    await transport.publish_wakeups(wakeups(10))
    messages = receive_all(sqs_client, url, 10)
    event = lambda_event_from_messages(messages)
    failing = {"run_1", "run_5", "run_8"}
    delivery = RecordingDelivery(fail_run_ids=failing)
    failures: list[SqsDeliveryFailure] = []
    handler = create_sqs_lambda_handler(execute_delivery=delivery, on_delivery_failure=failures.append)
    response = await handler(event)
    expected = {m["MessageId"] for m in messages if json.loads(m["Body"])["message"]["runId"] in failing}
    assert len(response["batchItemFailures"]) == 3
    assert {item["itemIdentifier"] for item in response["batchItemFailures"]} == expected
    assert len(delivery.calls) == 10
    assert {f.phase for f in failures} == {SqsDeliveryFailurePhase.EXECUTE}
    assert {f.delivery_message.run_id for f in failures if f.delivery_message} == failing


async def test_fifo_lambda_fails_the_rest_of_the_batch_after_the_first_failure(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("ordered", fifo=True)
    fifo = SqsFifoOptions(message_group=SqsFifoMessageGroup.QUEUE)
    transport = sqs_transport(
        client=sqs_client, queues=[sqs_queue(queue("emails"), queue_url=url, fifo=fifo)]
    )
    await transport.publish_wakeups(wakeups(5))
    messages = receive_all(sqs_client, url, 5)
    assert [json.loads(m["Body"])["message"]["runId"] for m in messages] == [f"run_{i}" for i in range(5)]
    delivery = RecordingDelivery(fail_run_ids={"run_2"})
    handler = create_sqs_lambda_handler(execute_delivery=delivery, fifo=True)
    response = await handler(lambda_event_from_messages(messages, queue_name="ordered.fifo"))
    assert [item["itemIdentifier"] for item in response["batchItemFailures"]] == [
        m["MessageId"] for m in messages[2:]
    ]
    assert delivery.run_ids == ["run_0", "run_1", "run_2"]


async def test_sync_handler_acknowledges_a_whole_batch(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("wakeups")
    transport = sqs_transport(client=sqs_client, queues=[sqs_queue(queue("emails"), queue_url=url)])
    await transport.publish_wakeups(wakeups(3))
    event = lambda_event_from_messages(receive_all(sqs_client, url, 3))
    delivery = RecordingDelivery()
    handler = create_sqs_lambda_handler(execute_delivery=delivery)
    # Lambda calls a plain function; run it off this test's event loop like the runtime would.
    response = await asyncio.to_thread(handler.sync, event, None)
    await asyncio.to_thread(handler.close)
    assert response == {"batchItemFailures": []}
    assert sorted(delivery.run_ids) == ["run_0", "run_1", "run_2"]
