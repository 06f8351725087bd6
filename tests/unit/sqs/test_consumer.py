"""``create_sqs_delivery_consumer()`` against moto in process."""

import asyncio
from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode, SqsDeliveryFailurePhase
from runlane.infrastructure.sqs import (
    HmacSha256Key,
    SqsDeliveryFailure,
    WakeupSigner,
    WakeupVerifier,
    create_sqs_delivery_consumer,
    create_sqs_wakeup_body,
)
from tests.unit.sqs.fakes import (
    ClientProxy,
    ManualClock,
    RecordingDelivery,
    client_error,
    make_message,
    queue_counts,
    send_wakeups,
    wait_until,
)

URL = "https://sqs.us-east-1.amazonaws.com/123456789012/wakeups"


def consumer_for(client: Any, url: str, delivery: Any, **kwargs: Any) -> Any:
    options: dict[str, Any] = {"wait_time_seconds": 0, "visibility_timeout_seconds": 30, **kwargs}
    return create_sqs_delivery_consumer(client=client, queue_url=url, execute_delivery=delivery, **options)


class BareClient:
    def receive_message(self, **kwargs: Any) -> Any: ...
    def delete_message_batch(self, **kwargs: Any) -> Any: ...
    def change_message_visibility(self, **kwargs: Any) -> Any: ...


@pytest.mark.parametrize(
    "kwargs",
    [
        {"queue_url": "wakeups"},
        {"queue_url": "ftp://sqs/wakeups"},
        {"client": object()},
        {"execute_delivery": None},
        {"max_number_of_messages": 0},
        {"max_number_of_messages": 11},
        {"wait_time_seconds": 21},
        {"wait_time_seconds": -1},
        {"visibility_timeout_seconds": 43_201},
        {"visibility_timeout_seconds": 1.5},
        {"concurrency": 0},
        {"concurrency": 11},
        {"fifo": True},
        {"queue_url": URL + ".fifo"},
        {"delivery_options": {"retries": 3}},
        {"extend_visibility": "yes"},
        {"verifier": "key"},
        {"on_delivery_failure": "log"},
    ],
)
def test_invalid_options_are_configuration_invalid(kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {
        "client": BareClient(),
        "queue_url": URL,
        "execute_delivery": RecordingDelivery(),
    }
    options.update(kwargs)
    with pytest.raises(RunlaneError) as error:
        create_sqs_delivery_consumer(**options)
    assert error.value.code is ErrorCode.CONFIGURATION_INVALID


def test_fifo_with_a_fifo_url_and_boundary_values_are_accepted() -> None:
    create_sqs_delivery_consumer(
        client=BareClient(),
        queue_url=URL + ".fifo",
        execute_delivery=RecordingDelivery(),
        fifo=True,
        max_number_of_messages=1,
        wait_time_seconds=0,
        visibility_timeout_seconds=43_200,
        concurrency=10,
    )


async def test_delivered_messages_are_deleted_and_failed_ones_are_kept(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    send_wakeups(sqs, url, [f"run_{i}" for i in range(5)])
    delivery = RecordingDelivery(fail_run_ids={"run_2"})
    failures: list[SqsDeliveryFailure] = []
    proxy = ClientProxy(sqs)
    consumer = consumer_for(proxy, url, delivery, on_delivery_failure=failures.append)
    await consumer.start()
    await wait_until(lambda: len(delivery.calls) == 5)
    await wait_until(lambda: bool(proxy.calls_to("delete_message_batch")))
    await consumer.stop()
    assert sorted(delivery.run_ids) == [f"run_{i}" for i in range(5)]
    assert queue_counts(sqs, url) == (0, 1)  # only the failed one, still invisible
    (delete,) = proxy.calls_to("delete_message_batch")
    assert len(delete["Entries"]) == 4
    assert all(e["Id"].startswith("delete_") for e in delete["Entries"])
    assert [(f.phase, f.delivery_message) for f in failures] == [
        (SqsDeliveryFailurePhase.EXECUTE, make_message("run_2"))
    ]
    assert failures[0].queue_url == url
    receive = proxy.calls_to("receive_message")[0]
    assert receive == {
        "QueueUrl": url,
        "MaxNumberOfMessages": 10,
        "WaitTimeSeconds": 0,
        "VisibilityTimeout": 30,
    }


async def test_concurrency_bounds_parallel_deliveries(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    send_wakeups(sqs, url, [f"run_{i}" for i in range(8)])
    parallel = RecordingDelivery(delay_seconds=0.2)
    consumer = consumer_for(sqs, url, parallel, concurrency=3)
    await consumer.start()
    await wait_until(lambda: len(parallel.calls) == 8)
    await consumer.stop()
    assert parallel.max_in_flight == 3

    send_wakeups(sqs, url, [f"seq_{i}" for i in range(3)])
    sequential = RecordingDelivery(delay_seconds=0.05)
    consumer = consumer_for(sqs, url, sequential)
    await consumer.start()
    await wait_until(lambda: len(sequential.calls) == 3)
    await consumer.stop()
    assert sequential.max_in_flight == 1


async def test_fifo_stops_the_batch_at_the_first_failure(sqs: Any) -> None:
    url = sqs.create_queue(
        QueueName="wakeups.fifo", Attributes={"FifoQueue": "true", "ContentBasedDeduplication": "true"}
    )["QueueUrl"]
    send_wakeups(sqs, url, ["run_0", "run_1", "run_2"], MessageGroupId="one")
    delivery = RecordingDelivery(fail_run_ids={"run_0"})
    proxy = ClientProxy(sqs)
    consumer = consumer_for(proxy, url, delivery, fifo=True, concurrency=5)
    await consumer.start()
    await wait_until(lambda: len(proxy.calls_to("receive_message")) >= 2)
    await consumer.stop()
    assert delivery.run_ids == ["run_0"]
    assert proxy.calls_to("delete_message_batch") == []


async def test_signed_consumer_asks_for_attributes_and_drops_unsigned_messages(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    clock = ManualClock()
    key = HmacSha256Key(key_id="k1", secret=b"k" * 32)
    body = create_sqs_wakeup_body(make_message("run_signed"))
    attributes = WakeupSigner(key=key, clock=clock).sign(body)
    sqs.send_message(
        QueueUrl=url,
        MessageBody=body,
        MessageAttributes={name: {"DataType": "String", "StringValue": v} for name, v in attributes.items()},
    )
    send_wakeups(sqs, url, ["run_unsigned"])
    delivery = RecordingDelivery()
    failures: list[SqsDeliveryFailure] = []
    proxy = ClientProxy(sqs)
    consumer = consumer_for(
        proxy,
        url,
        delivery,
        verifier=WakeupVerifier(key=key, clock=clock),
        on_delivery_failure=failures.append,
    )
    await consumer.start()
    await wait_until(lambda: len(failures) == 1 and len(delivery.calls) == 1)
    await consumer.stop()
    assert delivery.run_ids == ["run_signed"]
    assert proxy.calls_to("receive_message")[0]["MessageAttributeNames"] == ["All"]
    assert failures[0].phase is SqsDeliveryFailurePhase.MESSAGE
    assert isinstance(failures[0].cause, RunlaneError)
    assert failures[0].cause.meta == {"reason": "signature_missing"}
    assert queue_counts(sqs, url) == (0, 1)


async def test_receive_errors_end_the_loop_and_reject_closed(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]

    def denied(call: Any, kwargs: dict[str, Any]) -> Any:
        raise client_error("AccessDenied", status=403, operation="ReceiveMessage")

    consumer = consumer_for(ClientProxy(sqs, {"receive_message": denied}), url, RecordingDelivery())
    await consumer.start()
    with pytest.raises(RunlaneError) as error:
        await asyncio.wait_for(asyncio.shield(consumer.closed), 10)
    assert error.value.code is ErrorCode.TRANSPORT_UNAVAILABLE
    assert error.value.meta is not None
    assert error.value.meta["operation"] == "receive"
    with pytest.raises(RunlaneError):
        await consumer.stop()
    assert not consumer.running


async def test_delete_failures_are_reported_with_phase_delete(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    send_wakeups(sqs, url, ["run_0", "run_1"])

    def half_fail(call: Any, kwargs: dict[str, Any]) -> Any:
        first, *rest = kwargs["Entries"]
        response = call(QueueUrl=kwargs["QueueUrl"], Entries=rest)
        response["Failed"] = [{"Id": first["Id"], "SenderFault": True, "Code": "ReceiptHandleIsInvalid"}]
        return response

    failures: list[SqsDeliveryFailure] = []
    delivery = RecordingDelivery()
    consumer = consumer_for(
        ClientProxy(sqs, {"delete_message_batch": half_fail}),
        url,
        delivery,
        on_delivery_failure=failures.append,
    )
    await consumer.start()
    await wait_until(lambda: len(failures) == 1)
    await consumer.stop()
    (failure,) = failures
    assert failure.phase is SqsDeliveryFailurePhase.DELETE
    assert failure.delivery_message is not None
    assert failure.delivery_message.run_id in {"run_0", "run_1"}
    assert isinstance(failure.cause, RunlaneError)
    assert (failure.cause.code, failure.cause.retryable) == (ErrorCode.TRANSPORT_UNAVAILABLE, False)
    assert failure.cause.meta is not None
    assert failure.cause.meta["providerCode"] == "ReceiptHandleIsInvalid"


async def test_a_whole_failed_delete_reports_every_entry(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    send_wakeups(sqs, url, ["run_0", "run_1"])

    def unavailable(call: Any, kwargs: dict[str, Any]) -> Any:
        raise client_error("ServiceUnavailable", status=503, operation="DeleteMessageBatch")

    failures: list[SqsDeliveryFailure] = []
    consumer = consumer_for(
        ClientProxy(sqs, {"delete_message_batch": unavailable}),
        url,
        RecordingDelivery(),
        on_delivery_failure=failures.append,
    )
    await consumer.start()
    await wait_until(lambda: len(failures) == 2)
    await consumer.stop()
    assert {f.phase for f in failures} == {SqsDeliveryFailurePhase.DELETE}
    assert all(isinstance(f.cause, RunlaneError) and f.cause.retryable for f in failures)


async def test_visibility_is_extended_while_a_delivery_runs(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    send_wakeups(sqs, url, ["run_slow"])
    proxy = ClientProxy(sqs)
    delivery = RecordingDelivery(delay_seconds=3.2)
    consumer = consumer_for(proxy, url, delivery, visibility_timeout_seconds=2)
    await consumer.start()
    await wait_until(lambda: bool(proxy.calls_to("delete_message_batch")), within=15)
    await consumer.stop()
    extensions = proxy.calls_to("change_message_visibility")
    assert len(extensions) >= 2
    assert {e["VisibilityTimeout"] for e in extensions} == {2}
    assert delivery.run_ids == ["run_slow"]


async def test_the_queue_visibility_timeout_is_looked_up_when_not_given(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups", Attributes={"VisibilityTimeout": "2"})["QueueUrl"]
    send_wakeups(sqs, url, ["run_slow"])
    proxy = ClientProxy(sqs)
    consumer = consumer_for(proxy, url, RecordingDelivery(delay_seconds=1.5), visibility_timeout_seconds=None)
    await consumer.start()
    await wait_until(lambda: bool(proxy.calls_to("delete_message_batch")), within=15)
    await consumer.stop()
    assert proxy.calls_to("get_queue_attributes") == [
        {"QueueUrl": url, "AttributeNames": ["VisibilityTimeout"]}
    ]
    assert "VisibilityTimeout" not in proxy.calls_to("receive_message")[0]
    extensions = [e["VisibilityTimeout"] for e in proxy.calls_to("change_message_visibility")]
    assert extensions
    assert set(extensions) == {2}


async def test_no_extension_when_disabled(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    send_wakeups(sqs, url, ["run_slow"])
    proxy = ClientProxy(sqs)
    consumer = consumer_for(
        proxy,
        url,
        RecordingDelivery(delay_seconds=1.2),
        visibility_timeout_seconds=1,
        extend_visibility=False,
    )
    await consumer.start()
    await wait_until(lambda: bool(proxy.calls_to("delete_message_batch")), within=15)
    await consumer.stop()
    assert proxy.calls_to("change_message_visibility") == []
    assert proxy.calls_to("get_queue_attributes") == []


async def test_stop_lets_the_running_delivery_finish_and_releases_unstarted_messages(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    send_wakeups(sqs, url, ["run_0", "run_1", "run_2"])
    proxy = ClientProxy(sqs)
    delivery = RecordingDelivery(delay_seconds=0.5)
    consumer = consumer_for(proxy, url, delivery)
    await consumer.start()
    await wait_until(lambda: len(delivery.calls) == 1)
    await consumer.stop()
    assert len(delivery.calls) == 1
    assert delivery.in_flight == 0
    (delete,) = proxy.calls_to("delete_message_batch")
    assert len(delete["Entries"]) == 1
    released = proxy.calls_to("change_message_visibility")
    assert sorted(r["VisibilityTimeout"] for r in released) == [0, 0]
    assert queue_counts(sqs, url) == (2, 0)


async def test_lifecycle_is_idempotent(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="wakeups")["QueueUrl"]
    proxy = ClientProxy(sqs)
    consumer = consumer_for(proxy, url, RecordingDelivery())
    closed = consumer.closed
    await consumer.start()
    await consumer.start()
    assert consumer.running
    await consumer.stop()
    await consumer.stop()
    assert consumer.closed is closed
    assert closed.done()
    assert closed.result() is None
    await consumer.start()
    assert not consumer.running

    never_started = consumer_for(proxy, url, RecordingDelivery())
    await never_started.stop()
    await never_started.start()
    assert not never_started.running
    assert never_started.closed.done()
