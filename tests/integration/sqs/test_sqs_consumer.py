"""The long-running consumer against the moto server: deletes, redelivery, visibility, stop."""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING

from runlane.domain.queues import queue
from runlane.infrastructure.sqs import (
    SqsDeliveryFailure,
    create_sqs_delivery_consumer,
    sqs_queue,
    sqs_transport,
)
from runlane.ports.transport import PublishWakeupAttempt, PublishWakeups
from tests.integration.sqs.conftest import QueueFactory
from tests.unit.sqs.fakes import RecordingDelivery, make_message, queue_counts, send_wakeups, wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


async def test_successes_are_deleted_and_a_failure_comes_back_after_the_visibility_timeout(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("wakeups")
    transport = sqs_transport(client=sqs_client, queues=[sqs_queue(queue("emails"), queue_url=url)])
    await transport.publish_wakeups(
        PublishWakeups(
            attempts=tuple(
                PublishWakeupAttempt(outbox_message_id=f"outbox_{i}", message=make_message(f"run_{i}"))
                for i in range(4)
            )
        )
    )
    delivery = RecordingDelivery(fail_run_ids={"run_3"})
    failures: list[SqsDeliveryFailure] = []
    consumer = create_sqs_delivery_consumer(
        client=sqs_client,
        queue_url=url,
        execute_delivery=delivery,
        wait_time_seconds=1,
        visibility_timeout_seconds=1,
        on_delivery_failure=failures.append,
    )
    await consumer.start()
    try:
        # The failed wakeup is not deleted, so SQS hands it out again once its visibility expires.
        await wait_until(lambda: delivery.run_ids.count("run_3") >= 2, within=20)
    finally:
        await consumer.stop()
    assert sorted(r for r in delivery.run_ids if r != "run_3") == ["run_0", "run_1", "run_2"]
    assert {f.provider_message_id for f in failures}
    assert all(f.delivery_message == make_message("run_3") for f in failures)
    visible, in_flight = queue_counts(sqs_client, url)
    assert visible + in_flight == 1  # only the failing wakeup is left


def competing_receive(client: SQSClient, url: str, seconds: float) -> list[str]:
    """Poll like a second consumer would, for ``seconds``; return the message ids it got."""
    got: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        response = client.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
        got += [m["MessageId"] for m in response.get("Messages", [])]
    return got


async def run_slow_delivery(
    client: SQSClient, url: str, *, extend: bool
) -> tuple[list[str], RecordingDelivery]:
    send_wakeups(client, url, ["run_slow"])
    delivery = RecordingDelivery(delay_seconds=4)
    consumer = create_sqs_delivery_consumer(
        client=client,
        queue_url=url,
        execute_delivery=delivery,
        wait_time_seconds=1,
        visibility_timeout_seconds=2,
        extend_visibility=extend,
    )
    await consumer.start()
    try:
        await wait_until(lambda: len(delivery.calls) == 1)
        stolen = await asyncio.to_thread(competing_receive, client, url, 3.5)
        await wait_until(lambda: delivery.in_flight == 0, within=10)
    finally:
        await consumer.stop()
    return stolen, delivery


async def test_visibility_extension_keeps_a_slow_delivery_hidden(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("wakeups")
    stolen, delivery = await run_slow_delivery(sqs_client, url, extend=True)
    assert stolen == []
    assert delivery.run_ids == ["run_slow"]
    assert queue_counts(sqs_client, url) == (0, 0)  # deleted after it finished


async def test_without_extension_a_slow_delivery_is_handed_out_again(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("wakeups")
    stolen, _ = await run_slow_delivery(sqs_client, url, extend=False)
    assert len(stolen) >= 1


async def test_stop_returns_promptly_during_a_long_poll(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("wakeups")
    consumer = create_sqs_delivery_consumer(
        client=sqs_client, queue_url=url, execute_delivery=RecordingDelivery(), wait_time_seconds=20
    )
    await consumer.start()
    await asyncio.sleep(0.5)  # inside the 20 s ReceiveMessage
    started = time.monotonic()
    await asyncio.wait_for(consumer.stop(), timeout=5)
    assert time.monotonic() - started < 2
    assert consumer.closed.done()
    assert consumer.closed.exception() is None


async def test_fifo_consumer_stops_a_batch_at_the_first_failure(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    """run_2 must not overtake the failed run_1: it is neither run nor deleted.

    (Redelivery order after the visibility timeout is SQS's job; moto's FIFO redelivery does not
    model it faithfully, so this test keeps the timeout long.)
    """
    url = make_queue("wakeups", fifo=True, content_based=True)
    send_wakeups(sqs_client, url, ["run_0", "run_1", "run_2"], MessageGroupId="g")
    delivery = RecordingDelivery(fail_run_ids={"run_1"})
    failures: list[SqsDeliveryFailure] = []
    consumer = create_sqs_delivery_consumer(
        client=sqs_client,
        queue_url=url,
        execute_delivery=delivery,
        fifo=True,
        wait_time_seconds=1,
        visibility_timeout_seconds=30,
        on_delivery_failure=failures.append,
    )
    await consumer.start()
    try:
        await wait_until(lambda: len(failures) == 1)
        await asyncio.sleep(1.5)  # at least one more (empty) receive
    finally:
        await consumer.stop()
    assert delivery.run_ids == ["run_0", "run_1"]
    assert queue_counts(sqs_client, url) == (0, 2)  # run_0 deleted; run_1 and run_2 wait in flight
