"""``sqs_queue()`` and ``sqs_transport()`` options: every mistake is a ``configuration_invalid``."""

from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.queues import queue
from runlane.domain.vocabulary import ErrorCode, SqsFifoDeduplication, SqsFifoMessageGroup, SqsQueueSourceType
from runlane.infrastructure.sqs import SqsFifoOptions, sqs_queue, sqs_transport

EMAILS = queue("emails")
URL = "https://sqs.us-east-1.amazonaws.com/123456789012/emails"


class FakeClient:
    def send_message_batch(self, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("not called")

    def get_queue_url(self, **kwargs: Any) -> dict[str, Any]:
        raise AssertionError("not called")


def invalid(build: Any, *args: Any, **kwargs: Any) -> str:
    with pytest.raises(RunlaneError) as caught:
        build(*args, **kwargs)
    assert caught.value.code is ErrorCode.CONFIGURATION_INVALID
    return caught.value.message


def test_url_and_name_bindings() -> None:
    by_url = sqs_queue(EMAILS, queue_url=URL)
    assert (by_url.source_type, by_url.queue_url, by_url.fifo) == (SqsQueueSourceType.QUEUE_URL, URL, None)
    by_name = sqs_queue(EMAILS, queue_name="emails-prod", queue_owner_aws_account_id="123456789012")
    assert by_name.source_type is SqsQueueSourceType.QUEUE_NAME
    assert by_name.queue_owner_aws_account_id == "123456789012"
    assert by_name.name == "emails"


def test_fifo_options_default_and_coerce() -> None:
    options = SqsFifoOptions()
    assert (options.message_group, options.deduplication) == (
        SqsFifoMessageGroup.RUN,
        SqsFifoDeduplication.OUTBOX,
    )
    coerced = SqsFifoOptions(message_group="queue", deduplication="content_based")  # type: ignore[arg-type]
    assert coerced.message_group is SqsFifoMessageGroup.QUEUE
    assert invalid(SqsFifoOptions, message_group="group")
    assert invalid(SqsFifoOptions, deduplication="none")


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({}, "exactly one of queue_url or queue_name"),
        ({"queue_url": URL, "queue_name": "emails"}, "exactly one of queue_url or queue_name"),
        ({"queue_url": "sqs://emails"}, "http:// or https://"),
        ({"queue_url": "emails"}, "http:// or https://"),
        ({"queue_url": URL, "queue_owner_aws_account_id": "123456789012"}, "only allowed with queue_name"),
        ({"queue_name": ""}, "queue_name must be"),
        ({"queue_name": "a" * 81}, "queue_name must be"),
        ({"queue_name": "emails.prod"}, "queue_name must be"),
        ({"queue_name": "emails", "queue_owner_aws_account_id": "1234"}, "12 digits"),
        ({"queue_name": "emails", "fifo": SqsFifoOptions()}, "does not end in .fifo"),
        ({"queue_url": URL, "fifo": SqsFifoOptions()}, "does not end in .fifo"),
        ({"queue_name": "emails.fifo"}, "needs fifo="),
        ({"queue_url": URL + ".fifo"}, "needs fifo="),
        ({"queue_name": "emails.fifo", "fifo": {"message_group": "run"}}, "fifo must be SqsFifoOptions"),
    ],
)
def test_sqs_queue_rejects(kwargs: dict[str, Any], fragment: str) -> None:
    assert fragment in invalid(sqs_queue, EMAILS, **kwargs)


def test_sqs_queue_needs_a_queue_definition() -> None:
    invalid(sqs_queue, "emails", queue_url=URL)


def test_name_of_80_characters_is_allowed() -> None:
    assert sqs_queue(EMAILS, queue_name="a" * 75 + ".fifo", fifo=SqsFifoOptions()).is_fifo


def test_transport_options() -> None:
    binding = sqs_queue(EMAILS, queue_url=URL)
    client = FakeClient()
    transport = sqs_transport(client=client, queues=[binding])
    assert (transport.name, transport.queues) == ("sqs", (EMAILS,))
    assert "non-empty list" in invalid(sqs_transport, client=client, queues=[])
    assert "sqs_queue" in invalid(sqs_transport, client=client, queues=[EMAILS])
    assert "batch_size" in invalid(sqs_transport, client=client, queues=[binding], batch_size=11)
    assert "batch_size" in invalid(sqs_transport, client=client, queues=[binding], batch_size=0)
    assert "batch_size" in invalid(sqs_transport, client=client, queues=[binding], batch_size=True)
    assert "name" in invalid(sqs_transport, client=client, queues=[binding], name="")
    assert "send_message_batch" in invalid(sqs_transport, client=object(), queues=[binding])
    assert "signer" in invalid(sqs_transport, client=client, queues=[binding], signer="key")


def test_name_bindings_need_get_queue_url() -> None:
    class SendOnly:
        def send_message_batch(self, **kwargs: Any) -> None: ...

    sqs_transport(client=SendOnly(), queues=[sqs_queue(EMAILS, queue_url=URL)])
    assert "get_queue_url" in invalid(
        sqs_transport, client=SendOnly(), queues=[sqs_queue(EMAILS, queue_name="e")]
    )


def test_a_queue_may_be_bound_once() -> None:
    client = FakeClient()
    first = sqs_queue(EMAILS, queue_url=URL)
    again = sqs_queue(EMAILS, queue_name="emails-2")
    assert invalid(sqs_transport, client=client, queues=[first, again]).endswith("must not repeat.")
    bounded = sqs_queue(queue("emails", concurrency_limit=2), queue_name="emails-2")
    assert invalid(sqs_transport, client=client, queues=[first, bounded]).endswith(
        "must use the same policy in every binding."
    )


def test_capabilities_report_fifo_only_when_every_queue_is_fifo() -> None:
    client = FakeClient()
    fifo = sqs_queue(queue("ordered"), queue_url=URL + ".fifo", fifo=SqsFifoOptions())
    standard = sqs_queue(EMAILS, queue_url=URL)
    mixed = sqs_transport(client=client, queues=[fifo, standard]).capabilities
    assert mixed.to_wire() == {
        "durableDelivery": True,
        "messageGrouping": False,
        "nativeDelay": False,
        "orderedDelivery": False,
    }
    only_fifo = sqs_transport(client=client, queues=[fifo]).capabilities
    assert (only_fifo.message_grouping, only_fifo.ordered_delivery, only_fifo.native_delay) == (
        True,
        True,
        False,
    )
