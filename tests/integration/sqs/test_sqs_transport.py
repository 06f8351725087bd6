"""The SQS transport over real HTTP against the moto server: standard and FIFO queues."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.queues import queue
from runlane.domain.vocabulary import ErrorCode, SqsFifoDeduplication, SqsFifoMessageGroup
from runlane.infrastructure.sqs import (
    SqsFifoOptions,
    create_sqs_wakeup_body,
    fifo_token,
    sqs_queue,
    sqs_transport,
)
from runlane.ports.transport import (
    FailedWakeupPublish,
    PublishedWakeup,
    PublishWakeupAttempt,
    PublishWakeups,
    validate_publish_result,
)
from tests.integration.sqs.conftest import QueueFactory
from tests.unit.sqs.fakes import ClientProxy, drain, make_message

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

EMAILS = queue("emails")


def command(count: int, *, queue_name: str = "emails", prefix: str = "run") -> PublishWakeups:
    return PublishWakeups(
        attempts=tuple(
            PublishWakeupAttempt(
                outbox_message_id=f"outbox_{prefix}_{i}",
                message=make_message(f"{prefix}_{i}", queue=queue_name),
            )
            for i in range(count)
        )
    )


def run_id(body: str) -> str:
    value: str = json.loads(body)["message"]["runId"]
    return value


async def test_standard_queue_receives_exact_bodies(sqs_client: SQSClient, make_queue: QueueFactory) -> None:
    url = make_queue("emails")
    transport = sqs_transport(client=sqs_client, queues=[sqs_queue(EMAILS, queue_url=url)])
    sent = command(3)
    result = validate_publish_result(sent, await transport.publish_wakeups(sent))
    received = {m["MessageId"]: m["Body"] for m in drain(sqs_client, url)}
    for attempt, outcome in zip(sent.attempts, result.outcomes, strict=True):
        assert isinstance(outcome, PublishedWakeup)
        assert received[outcome.provider_message_id or ""] == create_sqs_wakeup_body(attempt.message)


async def test_25_attempts_take_three_batches_of_10_10_5(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("emails")
    proxy = ClientProxy(sqs_client)
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_url=url)])
    sent = command(25)
    result = await transport.publish_wakeups(sent)
    calls = proxy.calls_to("send_message_batch")
    assert [len(call["Entries"]) for call in calls] == [10, 10, 5]
    assert [e["Id"] for call in calls for e in call["Entries"]] == [f"entry_{k}" for k in range(25)]
    received = {m["MessageId"]: run_id(m["Body"]) for m in drain(sqs_client, url, rounds=10)}
    assert [
        received[o.provider_message_id or ""] for o in result.outcomes if isinstance(o, PublishedWakeup)
    ] == [f"run_{i}" for i in range(25)]


async def test_partial_batch_failures_map_to_the_right_indices(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    """SQS rejects single entries (here an invalid DelaySeconds that a test proxy adds); the rest land."""
    url = make_queue("emails")
    doomed = {"run_2", "run_7", "run_11"}

    def sabotage(call: Any, kwargs: dict[str, Any]) -> Any:
        entries = [
            {**entry, "DelaySeconds": 1000} if run_id(entry["MessageBody"]) in doomed else entry
            for entry in kwargs["Entries"]
        ]
        return call(QueueUrl=kwargs["QueueUrl"], Entries=entries)

    transport = sqs_transport(
        client=ClientProxy(sqs_client, {"send_message_batch": sabotage}),
        queues=[sqs_queue(EMAILS, queue_url=url)],
    )
    sent = command(13)
    result = validate_publish_result(sent, await transport.publish_wakeups(sent))
    failed = [i for i, o in enumerate(result.outcomes) if isinstance(o, FailedWakeupPublish)]
    assert failed == [2, 7, 11]
    outcome = result.outcomes[11]
    assert isinstance(outcome, FailedWakeupPublish)
    assert outcome.error.retryable is False  # SQS says the sender is at fault
    assert outcome.error.meta is not None
    assert outcome.error.meta["entryId"] == "entry_11"  # ids count per queue URL, across chunks
    assert outcome.error.meta["providerCode"] == "InvalidParameterValue"
    assert outcome.error.meta["senderFault"] is True
    assert outcome.error.meta["queueUrl"] == url
    assert isinstance(outcome.error.meta["requestId"], str)
    landed = sorted(run_id(m["Body"]) for m in drain(sqs_client, url))
    assert landed == sorted(f"run_{i}" for i in range(13) if f"run_{i}" not in doomed)


async def test_queue_name_is_resolved_once(sqs_client: SQSClient, make_queue: QueueFactory) -> None:
    url = make_queue("emails-by-name")
    proxy = ClientProxy(sqs_client)
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_name="emails-by-name")])
    for round_ in range(3):
        await transport.publish_wakeups(command(2, prefix=f"r{round_}"))
    assert proxy.calls_to("get_queue_url") == [{"QueueName": "emails-by-name"}]
    assert len(drain(sqs_client, url)) == 6


async def test_missing_queue_name_is_configuration_invalid(sqs_client: SQSClient) -> None:
    transport = sqs_transport(client=sqs_client, queues=[sqs_queue(EMAILS, queue_name="nowhere")])
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(command(1))
    assert (error.value.code, error.value.retryable) == (ErrorCode.CONFIGURATION_INVALID, False)
    assert error.value.meta is not None
    assert error.value.meta["queueName"] == "nowhere"


async def test_publishing_to_a_deleted_queue_url_is_a_whole_call_failure(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("gone")
    sqs_client.delete_queue(QueueUrl=url)
    transport = sqs_transport(client=sqs_client, queues=[sqs_queue(EMAILS, queue_url=url)])
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(command(2))
    assert (error.value.code, error.value.retryable) == (ErrorCode.TRANSPORT_PUBLISH_FAILED, False)
    assert error.value.meta is not None
    assert error.value.meta["httpStatusCode"] == 400


@pytest.mark.parametrize(
    ("group", "dedup"),
    [
        (SqsFifoMessageGroup.RUN, SqsFifoDeduplication.OUTBOX),
        (SqsFifoMessageGroup.QUEUE, SqsFifoDeduplication.OUTBOX),
        (SqsFifoMessageGroup.QUEUE, SqsFifoDeduplication.CONTENT_BASED),
    ],
)
async def test_fifo_queue_gets_group_and_deduplication_ids(
    sqs_client: SQSClient, make_queue: QueueFactory, group: SqsFifoMessageGroup, dedup: SqsFifoDeduplication
) -> None:
    url = make_queue("emails", fifo=True, content_based=dedup is SqsFifoDeduplication.CONTENT_BASED)
    fifo = SqsFifoOptions(message_group=group, deduplication=dedup)
    transport = sqs_transport(client=sqs_client, queues=[sqs_queue(EMAILS, queue_url=url, fifo=fifo)])
    assert transport.capabilities.ordered_delivery
    assert transport.capabilities.message_grouping
    sent = command(3)
    result = await transport.publish_wakeups(sent)
    assert all(isinstance(o, PublishedWakeup) for o in result.outcomes)
    messages = sqs_client.receive_message(
        QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["MessageGroupId", "MessageDeduplicationId"]
    )["Messages"]
    by_run = {run_id(m["Body"]): m["Attributes"] for m in messages}
    for i in range(len(by_run)):
        attributes = by_run[f"run_{i}"]
        if group is SqsFifoMessageGroup.RUN:
            assert attributes["MessageGroupId"] == fifo_token(["run", "production", f"run_{i}"])
        else:
            assert attributes["MessageGroupId"] == fifo_token(["queue", "production", "emails"])
        if dedup is SqsFifoDeduplication.OUTBOX:
            assert attributes["MessageDeduplicationId"] == fifo_token(["outbox", f"outbox_run_{i}"])
    if group is SqsFifoMessageGroup.QUEUE:
        assert [run_id(m["Body"]) for m in messages] == ["run_0", "run_1", "run_2"]


async def test_fifo_outbox_deduplication_drops_a_republished_row(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("emails", fifo=True)
    transport = sqs_transport(
        client=sqs_client, queues=[sqs_queue(EMAILS, queue_url=url, fifo=SqsFifoOptions())]
    )
    sent = command(2)
    await transport.publish_wakeups(sent)
    again = await transport.publish_wakeups(sent)  # e.g. tick() republishing after a lost reply
    assert all(isinstance(o, PublishedWakeup) for o in again.outcomes)
    assert sorted(run_id(m["Body"]) for m in drain(sqs_client, url)) == ["run_0", "run_1"]


async def test_mixed_standard_and_fifo_bindings(sqs_client: SQSClient, make_queue: QueueFactory) -> None:
    standard = make_queue("emails")
    ordered = make_queue("ordered", fifo=True)
    transport = sqs_transport(
        client=sqs_client,
        queues=[
            sqs_queue(EMAILS, queue_url=standard),
            sqs_queue(queue("ordered"), queue_name="ordered.fifo", fifo=SqsFifoOptions()),
        ],
    )
    assert not transport.capabilities.ordered_delivery
    sent = PublishWakeups(
        attempts=(*command(2).attempts, *command(2, queue_name="ordered", prefix="o").attempts)
    )
    result = await transport.publish_wakeups(sent)
    assert all(isinstance(o, PublishedWakeup) for o in result.outcomes)
    assert sorted(run_id(m["Body"]) for m in drain(sqs_client, standard)) == ["run_0", "run_1"]
    assert sorted(run_id(m["Body"]) for m in drain(sqs_client, ordered)) == ["o_0", "o_1"]
