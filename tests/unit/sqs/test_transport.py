"""``sqs_transport().publish_wakeups()`` against moto in process, plus injected provider failures."""

import json
import random
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import EndpointConnectionError

from runlane.domain.errors import RunlaneError
from runlane.domain.queues import queue
from runlane.domain.vocabulary import ErrorCode, SqsFifoDeduplication, SqsFifoMessageGroup
from runlane.infrastructure.sqs import (
    HmacSha256Key,
    SqsFifoOptions,
    WakeupSigner,
    WakeupVerifier,
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
from tests.unit.sqs.fakes import (
    ClientProxy,
    ManualClock,
    chaos_send,
    client_error,
    drain,
    make_message,
    reject_entries,
)

EMAILS = queue("emails")
BILLING = queue("billing")


def attempts(count: int, *, queue_name: str = "emails", prefix: str = "run") -> PublishWakeups:
    return PublishWakeups(
        attempts=tuple(
            PublishWakeupAttempt(
                outbox_message_id=f"outbox_{prefix}_{i}",
                message=make_message(f"{prefix}_{i}", queue=queue_name),
            )
            for i in range(count)
        )
    )


def run_id_of(body: str) -> str:
    run_id: str = json.loads(body)["message"]["runId"]
    return run_id


def publish_error(error: pytest.ExceptionInfo[RunlaneError]) -> tuple[ErrorCode, bool, dict[str, Any]]:
    return error.value.code, error.value.retryable, error.value.meta or {}


async def test_publishes_one_exact_body_per_attempt_in_order(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="emails")["QueueUrl"]
    proxy = ClientProxy(sqs)
    clock = ManualClock()
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_url=url)], clock=clock)
    command = attempts(3)
    result = validate_publish_result(command, await transport.publish_wakeups(command))
    assert all(isinstance(o, PublishedWakeup) for o in result.outcomes)
    assert {o.published_at for o in result.outcomes if isinstance(o, PublishedWakeup)} == {clock.now()}
    (call,) = proxy.calls_to("send_message_batch")
    assert call["QueueUrl"] == url
    assert [entry["Id"] for entry in call["Entries"]] == ["entry_0", "entry_1", "entry_2"]
    for entry, attempt in zip(call["Entries"], command.attempts, strict=True):
        assert set(entry) == {"Id", "MessageBody"}  # no DelaySeconds, no attributes, no FIFO ids
        assert entry["MessageBody"] == create_sqs_wakeup_body(attempt.message)
    received = {m["MessageId"]: run_id_of(m["Body"]) for m in drain(sqs, url)}
    for outcome, attempt in zip(result.outcomes, command.attempts, strict=True):
        assert isinstance(outcome, PublishedWakeup)
        assert received[outcome.provider_message_id or ""] == attempt.message.run_id


async def test_batches_are_chunked_and_entry_ids_count_per_queue_url(sqs: Any) -> None:
    emails_url = sqs.create_queue(QueueName="emails")["QueueUrl"]
    billing_url = sqs.create_queue(QueueName="billing")["QueueUrl"]
    proxy = ClientProxy(sqs)
    transport = sqs_transport(
        client=proxy,
        queues=[sqs_queue(EMAILS, queue_url=emails_url), sqs_queue(BILLING, queue_url=billing_url)],
        batch_size=4,
    )
    mixed = PublishWakeups(
        attempts=tuple(
            PublishWakeupAttempt(
                outbox_message_id=f"outbox_{i}",
                message=make_message(f"run_{i}", queue="emails" if i % 3 else "billing"),
            )
            for i in range(11)
        )
    )
    result = await transport.publish_wakeups(mixed)
    calls = proxy.calls_to("send_message_batch")
    # run_0 goes to billing, so billing's URL is grouped first.
    assert [(c["QueueUrl"], len(c["Entries"])) for c in calls] == [
        (billing_url, 4),
        (emails_url, 4),
        (emails_url, 3),
    ]
    assert [e["Id"] for e in calls[0]["Entries"]] == [f"entry_{k}" for k in range(4)]
    assert [e["Id"] for e in calls[1]["Entries"] + calls[2]["Entries"]] == [f"entry_{k}" for k in range(7)]
    # Outcomes follow the input order, not the grouping.
    by_message_id = {
        m["MessageId"]: run_id_of(m["Body"]) for m in drain(sqs, emails_url) + drain(sqs, billing_url)
    }
    assert [
        by_message_id[o.provider_message_id or ""] for o in result.outcomes if isinstance(o, PublishedWakeup)
    ] == [f"run_{i}" for i in range(11)]


async def test_empty_command_sends_nothing(sqs: Any) -> None:
    proxy = ClientProxy(sqs)
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_name="emails")])
    assert (await transport.publish_wakeups(PublishWakeups(attempts=()))).outcomes == ()
    assert proxy.calls == []


async def test_queue_name_is_resolved_once_and_cached(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="emails-prod")["QueueUrl"]
    proxy = ClientProxy(sqs)
    binding = sqs_queue(EMAILS, queue_name="emails-prod", queue_owner_aws_account_id="123456789012")
    transport = sqs_transport(client=proxy, queues=[binding])
    await transport.publish_wakeups(attempts(2))
    await transport.publish_wakeups(attempts(2, prefix="again"))
    assert proxy.calls_to("get_queue_url") == [
        {"QueueName": "emails-prod", "QueueOwnerAWSAccountId": "123456789012"}
    ]
    assert {c["QueueUrl"] for c in proxy.calls_to("send_message_batch")} == {url}
    assert len(drain(sqs, url)) == 4


async def test_missing_queue_is_configuration_invalid_and_not_cached(sqs: Any) -> None:
    proxy = ClientProxy(sqs)
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_name="later")])
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(attempts(1))
    code, retryable, meta = publish_error(error)
    assert (code, retryable) == (ErrorCode.CONFIGURATION_INVALID, False)
    assert meta["operation"] == "get_queue_url"
    assert meta["queueName"] == "later"
    assert proxy.calls_to("send_message_batch") == []
    sqs.create_queue(QueueName="later")
    result = await transport.publish_wakeups(attempts(1))
    assert isinstance(result.outcomes[0], PublishedWakeup)


async def test_unmapped_queue_fails_before_anything_is_sent(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="emails")["QueueUrl"]
    proxy = ClientProxy(sqs)
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_url=url)])
    command = PublishWakeups(
        attempts=(*attempts(2).attempts, *attempts(1, queue_name="reports", prefix="r").attempts)
    )
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(command)
    assert error.value.code is ErrorCode.CONFIGURATION_INVALID
    assert error.value.message == 'SQS transport has no queue mapping for "reports".'
    assert error.value.meta == {"queue": "reports"}
    assert proxy.calls == []


async def test_invalid_command_is_an_adapter_contract_violation(sqs: Any) -> None:
    transport = sqs_transport(client=sqs, queues=[sqs_queue(EMAILS, queue_name="emails")])
    duplicate = PublishWakeups(attempts=attempts(1).attempts * 2)
    commands: list[Any] = [duplicate, {"attempts": []}]
    for command in commands:
        with pytest.raises(RunlaneError) as error:
            await transport.publish_wakeups(command)
        assert error.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION


@pytest.mark.parametrize("sender_fault", [True, False])
async def test_rejected_entries_map_to_their_own_attempts(sqs: Any, sender_fault: bool) -> None:
    url = sqs.create_queue(QueueName="emails")["QueueUrl"]
    rejected_runs = {"run_1", "run_4"}
    proxy = ClientProxy(
        sqs,
        {
            "send_message_batch": reject_entries(
                lambda entry: run_id_of(entry["MessageBody"]) in rejected_runs,
                sender_fault=sender_fault,
                code="InvalidMessageContents",
            )
        },
    )
    clock = ManualClock()
    transport = sqs_transport(
        client=proxy, queues=[sqs_queue(EMAILS, queue_url=url)], batch_size=3, clock=clock
    )
    result = await transport.publish_wakeups(attempts(6))
    kinds = ["failed" if isinstance(o, FailedWakeupPublish) else "published" for o in result.outcomes]
    assert kinds == ["published", "failed", "published", "published", "failed", "published"]
    failed = result.outcomes[4]
    assert isinstance(failed, FailedWakeupPublish)
    assert failed.error.code is ErrorCode.TRANSPORT_PUBLISH_FAILED
    assert failed.error.message == "SQS rejected wakeup publish."
    assert failed.error.retryable is (not sender_fault)
    assert failed.error.occurred_at == clock.now()
    assert failed.error.meta is not None
    assert failed.error.meta == {
        "entryId": "entry_4",
        "providerCode": "InvalidMessageContents",
        "requestId": failed.error.meta["requestId"],
        "queueUrl": url,
        "senderFault": sender_fault,
    }
    assert sorted(run_id_of(m["Body"]) for m in drain(sqs, url)) == ["run_0", "run_2", "run_3", "run_5"]


@pytest.mark.parametrize(
    ("raised", "code", "retryable"),
    [
        (client_error("ThrottlingException"), ErrorCode.TRANSPORT_UNAVAILABLE, True),
        (client_error("KMS.ThrottlingException"), ErrorCode.TRANSPORT_UNAVAILABLE, True),
        (client_error("RequestThrottled"), ErrorCode.TRANSPORT_UNAVAILABLE, True),
        (client_error("InternalError", status=500), ErrorCode.TRANSPORT_UNAVAILABLE, True),
        (client_error("Whatever", status=503), ErrorCode.TRANSPORT_UNAVAILABLE, True),
        (EndpointConnectionError(endpoint_url="https://sqs"), ErrorCode.TRANSPORT_UNAVAILABLE, True),
        (client_error("AccessDenied", status=403), ErrorCode.TRANSPORT_PUBLISH_FAILED, False),
        (client_error("BatchRequestTooLong"), ErrorCode.TRANSPORT_PUBLISH_FAILED, False),
        (ValueError("bad client"), ErrorCode.TRANSPORT_PUBLISH_FAILED, False),
    ],
)
async def test_whole_call_send_errors_are_classified(
    sqs: Any, raised: Exception, code: ErrorCode, retryable: bool
) -> None:
    url = sqs.create_queue(QueueName="emails")["QueueUrl"]

    def fail(call: Any, kwargs: dict[str, Any]) -> Any:
        raise raised

    transport = sqs_transport(
        client=ClientProxy(sqs, {"send_message_batch": fail}), queues=[sqs_queue(EMAILS, queue_url=url)]
    )
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(attempts(2))
    got_code, got_retryable, meta = publish_error(error)
    assert (got_code, got_retryable) == (code, retryable)
    assert meta["operation"] == "publish"
    assert meta["queueUrl"] == url
    assert error.value.cause is raised


@pytest.mark.parametrize(
    ("raised", "code", "retryable"),
    [
        (
            client_error("AccessDenied", status=403, operation="GetQueueUrl"),
            ErrorCode.TRANSPORT_UNAVAILABLE,
            False,
        ),
        (client_error("ThrottlingException", operation="GetQueueUrl"), ErrorCode.TRANSPORT_UNAVAILABLE, True),
        (
            client_error("AWS.SimpleQueueService.NonExistentQueue", operation="GetQueueUrl"),
            ErrorCode.CONFIGURATION_INVALID,
            False,
        ),
    ],
)
async def test_get_queue_url_errors_are_classified(
    sqs: Any, raised: Exception, code: ErrorCode, retryable: bool
) -> None:
    def fail(call: Any, kwargs: dict[str, Any]) -> Any:
        raise raised

    transport = sqs_transport(
        client=ClientProxy(sqs, {"get_queue_url": fail}), queues=[sqs_queue(EMAILS, queue_name="emails")]
    )
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(attempts(1))
    got_code, got_retryable, meta = publish_error(error)
    assert (got_code, got_retryable) == (code, retryable)
    assert meta == {
        "operation": "get_queue_url",
        "providerCode": raised.response["Error"]["Code"],  # type: ignore[attr-defined]
        "httpStatusCode": raised.response["ResponseMetadata"]["HTTPStatusCode"],  # type: ignore[attr-defined]
        "requestId": "req-injected",
        "queueName": "emails",
    }


@pytest.mark.parametrize("reply", [{}, {"QueueUrl": ""}, {"QueueUrl": "emails"}, None])
async def test_malformed_get_queue_url_reply_is_retryable_unavailability(sqs: Any, reply: Any) -> None:
    transport = sqs_transport(
        client=ClientProxy(sqs, {"get_queue_url": lambda call, kwargs: reply}),
        queues=[sqs_queue(EMAILS, queue_name="emails")],
    )
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(attempts(1))
    assert publish_error(error)[:2] == (ErrorCode.TRANSPORT_UNAVAILABLE, True)


class CannedClient:
    """Answers SendMessageBatch with a fixed (broken) response."""

    def __init__(self, respond: Any) -> None:
        self.respond = respond

    def send_message_batch(self, *, QueueUrl: str, Entries: list[dict[str, Any]]) -> Any:
        return self.respond(Entries)


def ok(entry_id: str) -> dict[str, str]:
    return {"Id": entry_id, "MessageId": f"m-{entry_id}"}


@pytest.mark.parametrize(
    "respond",
    [
        lambda entries: {"Successful": [ok("entry_0"), ok("entry_9")], "Failed": []},
        lambda entries: {"Successful": [ok("entry_0"), ok("entry_0")], "Failed": []},
        lambda entries: {"Successful": [ok("entry_0")], "Failed": [{"Id": "entry_0", "SenderFault": True}]},
        lambda entries: {"Successful": [ok("entry_0")], "Failed": []},
        lambda entries: {"Successful": "all", "Failed": []},
        lambda entries: {"Successful": [{"MessageId": "x"}, ok("entry_1")]},
        lambda entries: None,
    ],
)
async def test_inconsistent_batch_responses_are_retryable_publish_failures(respond: Any) -> None:
    transport = sqs_transport(
        client=CannedClient(respond), queues=[sqs_queue(EMAILS, queue_url="https://sqs.local/1/emails")]
    )
    with pytest.raises(RunlaneError) as error:
        await transport.publish_wakeups(attempts(2))
    code, retryable, meta = publish_error(error)
    assert (code, retryable) == (ErrorCode.TRANSPORT_PUBLISH_FAILED, True)
    assert meta["operation"] == "publish"


async def test_sender_fault_defaults_to_false_and_missing_message_id_is_none() -> None:
    respond = lambda entries: {  # noqa: E731
        "Successful": [{"Id": "entry_1"}],
        "Failed": [{"Id": "entry_0"}],
    }
    transport = sqs_transport(
        client=CannedClient(respond), queues=[sqs_queue(EMAILS, queue_url="https://sqs.local/1/emails")]
    )
    first, second = (await transport.publish_wakeups(attempts(2))).outcomes
    assert isinstance(first, FailedWakeupPublish)
    assert first.error.retryable is True
    assert first.error.meta == {
        "entryId": "entry_0",
        "queueUrl": "https://sqs.local/1/emails",
        "senderFault": False,
    }
    assert isinstance(second, PublishedWakeup)
    assert second.provider_message_id is None


@pytest.mark.parametrize(
    ("group", "dedup"),
    [
        (SqsFifoMessageGroup.RUN, SqsFifoDeduplication.OUTBOX),
        (SqsFifoMessageGroup.QUEUE, SqsFifoDeduplication.CONTENT_BASED),
    ],
)
async def test_fifo_entries_carry_group_and_deduplication_tokens(
    sqs: Any, group: SqsFifoMessageGroup, dedup: SqsFifoDeduplication
) -> None:
    attributes = {"FifoQueue": "true"}
    if dedup is SqsFifoDeduplication.CONTENT_BASED:
        attributes["ContentBasedDeduplication"] = "true"
    url = sqs.create_queue(QueueName="emails.fifo", Attributes=attributes)["QueueUrl"]
    proxy = ClientProxy(sqs)
    fifo = SqsFifoOptions(message_group=group, deduplication=dedup)
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_url=url, fifo=fifo)])
    result = await transport.publish_wakeups(attempts(2))
    assert all(isinstance(o, PublishedWakeup) for o in result.outcomes)
    entries = proxy.calls_to("send_message_batch")[0]["Entries"]
    for i, entry in enumerate(entries):
        expected_group = (
            fifo_token(["run", "production", f"run_{i}"])
            if group is SqsFifoMessageGroup.RUN
            else fifo_token(["queue", "production", "emails"])
        )
        assert entry["MessageGroupId"] == expected_group
        if dedup is SqsFifoDeduplication.OUTBOX:
            assert entry["MessageDeduplicationId"] == fifo_token(["outbox", f"outbox_run_{i}"])
        else:
            assert "MessageDeduplicationId" not in entry
        assert "DelaySeconds" not in entry


async def test_signed_publish_keeps_the_body_and_adds_verifiable_attributes(sqs: Any) -> None:
    url = sqs.create_queue(QueueName="emails")["QueueUrl"]
    clock = ManualClock(datetime(2025, 1, 2, tzinfo=UTC))
    key = HmacSha256Key(key_id="k1", secret=b"k" * 32)
    transport = sqs_transport(
        client=sqs, queues=[sqs_queue(EMAILS, queue_url=url)], signer=WakeupSigner(key=key, clock=clock)
    )
    command = attempts(2)
    await transport.publish_wakeups(command)
    verifier = WakeupVerifier(key=key, clock=clock)
    messages = sorted(drain(sqs, url), key=lambda m: run_id_of(m["Body"]))
    for message, attempt in zip(messages, command.attempts, strict=True):
        assert message["Body"] == create_sqs_wakeup_body(attempt.message)
        attributes = {name: value["StringValue"] for name, value in message["MessageAttributes"].items()}
        verifier.verify(message["Body"], attributes)


async def test_thirty_percent_chaos_still_yields_one_honest_outcome_per_attempt(sqs: Any) -> None:
    """Throttled calls and rejected entries are retried like the outbox would until all are sent.

    Every attempt reported ``published`` is really in the queue, and no ``failed`` attempt is.
    """
    url = sqs.create_queue(QueueName="emails")["QueueUrl"]
    rng = random.Random(20250102)
    proxy = ClientProxy(sqs, {"send_message_batch": chaos_send(rng, throttle_rate=0.3, reject_rate=0.3)})
    transport = sqs_transport(client=proxy, queues=[sqs_queue(EMAILS, queue_url=url)], batch_size=7)
    pending = list(attempts(40).attempts)
    published: set[str] = set()
    throttled = rejected = 0
    for _ in range(50):
        if not pending:
            break
        command = PublishWakeups(attempts=tuple(pending))
        whole_call_error: RunlaneError | None = None
        try:
            result = validate_publish_result(command, await transport.publish_wakeups(command))
        except RunlaneError as error:
            whole_call_error = error
        if whole_call_error is not None:
            assert (whole_call_error.code, whole_call_error.retryable) == (
                ErrorCode.TRANSPORT_UNAVAILABLE,
                True,
            )
            throttled += 1
            published |= {run_id_of(m["Body"]) for m in drain(sqs, url)}  # earlier chunks may have landed
            pending = [a for a in pending if a.message.run_id not in published]
            continue
        landed = {run_id_of(m["Body"]) for m in drain(sqs, url)}
        still_pending = []
        for attempt, outcome in zip(command.attempts, result.outcomes, strict=True):
            if isinstance(outcome, PublishedWakeup):
                assert attempt.message.run_id in landed
                published.add(attempt.message.run_id)
            else:
                assert outcome.error.retryable is True
                assert attempt.message.run_id not in landed
                rejected += 1
                still_pending.append(attempt)
        pending = still_pending
    assert pending == []
    assert published == {f"run_{i}" for i in range(40)}
    assert throttled > 0
    assert rejected > 0
