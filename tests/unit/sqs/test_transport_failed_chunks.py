"""A failed ``SendMessageBatch`` call fails only its own chunk when other chunks reached SQS.

Raising for the whole publish would mark the already-sent chunks failed (so the outbox republishes
them) and leave the chunks after the failed one unsent on every retry, until the outbox gives up on
rows that were never delivered. Found by the Postgres/SQS lane end-to-end tests.
"""

from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.sqs import SqsFifoOptions, sqs_queue, sqs_transport
from runlane.ports.transport import FailedWakeupPublish, PublishedWakeup, validate_publish_result
from tests.unit.sqs.fakes import ClientProxy, client_error, drain
from tests.unit.sqs.test_transport import BILLING, EMAILS, attempts, run_id_of


def fail_calls(*numbers: int, error: Exception | None = None) -> Any:
    """A ``send_message_batch`` hook that raises on the given (1-based) call numbers."""
    calls = 0

    def hook(call: Any, kwargs: dict[str, Any]) -> Any:
        nonlocal calls
        calls += 1
        if calls in numbers:
            raise error or client_error("ThrottlingException")
        return call(**kwargs)

    return hook


async def test_a_throttled_middle_chunk_fails_only_its_own_attempts(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="emails")["QueueUrl"]
    proxy = ClientProxy(sqs, {"send_message_batch": fail_calls(2)})
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_url=url)], batch_size=3)
    command = attempts(8)  # chunks: 0-2, 3-5 (throttled), 6-7

    result = validate_publish_result(command, await transport.publish_wakeups(command))

    kinds = ["published" if isinstance(o, PublishedWakeup) else "failed" for o in result.outcomes]
    assert kinds == ["published"] * 3 + ["failed"] * 3 + ["published"] * 2
    failed = [o for o in result.outcomes if isinstance(o, FailedWakeupPublish)]
    assert {(o.error.code, o.error.retryable) for o in failed} == {(ErrorCode.TRANSPORT_UNAVAILABLE, True)}
    assert [o.error.meta["entryId"] for o in failed if o.error.meta] == ["entry_3", "entry_4", "entry_5"]
    assert failed[0].error.meta is not None and failed[0].error.meta["providerCode"] == "ThrottlingException"
    landed = sorted(run_id_of(m["Body"]) for m in drain(sqs, url))
    assert landed == sorted(f"run_{i}" for i in (0, 1, 2, 6, 7))  # failed = exactly what is not in SQS
    assert len(proxy.calls_to("send_message_batch")) == 3


async def test_a_failed_chunk_does_not_stop_another_queue(sqs: Any) -> None:
    emails = sqs.create_queue(QueueName="emails")["QueueUrl"]
    billing = sqs.create_queue(QueueName="billing")["QueueUrl"]
    denied = client_error("AccessDenied", status=403)
    transport = sqs_transport(
        client=ClientProxy(sqs, {"send_message_batch": fail_calls(1, error=denied)}),
        queues=[sqs_queue(EMAILS, queue_url=emails), sqs_queue(BILLING, queue_url=billing)],
    )
    command = attempts(2)
    command = type(command)(
        attempts=command.attempts + attempts(2, queue_name="billing", prefix="b").attempts
    )

    result = await transport.publish_wakeups(command)

    first, second, third, fourth = result.outcomes
    assert isinstance(first, FailedWakeupPublish) and isinstance(second, FailedWakeupPublish)
    assert (first.error.code, first.error.retryable) == (ErrorCode.TRANSPORT_PUBLISH_FAILED, False)
    assert isinstance(third, PublishedWakeup) and isinstance(fourth, PublishedWakeup)


async def test_fifo_chunks_after_a_failed_one_are_not_sent(sqs: Any) -> None:
    attributes = {"FifoQueue": "true"}
    url = sqs.create_queue(QueueName="emails.fifo", Attributes=attributes)["QueueUrl"]
    proxy = ClientProxy(sqs, {"send_message_batch": fail_calls(2)})
    transport = sqs_transport(
        client=proxy, queues=[sqs_queue(EMAILS, queue_url=url, fifo=SqsFifoOptions())], batch_size=2
    )

    result = await transport.publish_wakeups(attempts(6))  # chunks: 0-1, 2-3 (throttled), 4-5

    kinds = ["published" if isinstance(o, PublishedWakeup) else "failed" for o in result.outcomes]
    assert kinds == ["published"] * 2 + ["failed"] * 4
    assert len(proxy.calls_to("send_message_batch")) == 2  # nothing overtakes the failed chunk
    assert sorted(run_id_of(m["Body"]) for m in drain(sqs, url)) == ["run_0", "run_1"]


async def test_when_every_chunk_fails_the_publish_raises(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="emails")["QueueUrl"]
    transport = sqs_transport(
        client=ClientProxy(sqs, {"send_message_batch": fail_calls(1, 2)}),
        queues=[sqs_queue(EMAILS, queue_url=url)],
        batch_size=2,
    )
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(attempts(4))
    assert (error.value.code, error.value.retryable) == (ErrorCode.TRANSPORT_UNAVAILABLE, True)
