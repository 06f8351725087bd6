"""Signed wakeups end to end over the moto server: only authentic, unexpired wakeups reach core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from runlane.domain.errors import RunlaneError
from runlane.domain.queues import queue
from runlane.domain.vocabulary import ErrorCode, SqsDeliveryFailurePhase
from runlane.infrastructure.sqs import (
    ALGORITHM_ATTRIBUTE,
    Ed25519Key,
    HmacSha256Key,
    SqsDeliveryFailure,
    WakeupSigner,
    WakeupVerifier,
    create_sqs_delivery_consumer,
    create_sqs_lambda_handler,
    create_sqs_wakeup_body,
    sqs_queue,
    sqs_transport,
)
from runlane.ports.transport import PublishWakeupAttempt, PublishWakeups
from tests.integration.sqs.conftest import QueueFactory
from tests.unit.sqs.fakes import (
    ManualClock,
    RecordingDelivery,
    lambda_event_from_messages,
    make_message,
    queue_counts,
    wait_until,
)

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

KEY = HmacSha256Key(key_id="2025-01", secret=b"current-secret-" + b"x" * 20)
OLD_KEY = HmacSha256Key(key_id="2024-12", secret=b"previous-secret-" + b"y" * 20)
EMAILS = queue("emails")


def send(
    client: SQSClient, url: str, run_id: str, attributes: dict[str, str] | None, body: str | None = None
) -> None:
    client.send_message(
        QueueUrl=url,
        MessageBody=body or create_sqs_wakeup_body(make_message(run_id)),
        MessageAttributes={
            name: {"DataType": "String", "StringValue": value} for name, value in (attributes or {}).items()
        },
    )


def signed(run_id: str, signer: WakeupSigner) -> tuple[str, dict[str, str]]:
    body = create_sqs_wakeup_body(make_message(run_id))
    return body, signer.sign(body)


def load_hostile_queue(client: SQSClient, url: str) -> None:
    """One authentic wakeup (run_ok) and five that must never reach ``execute_delivery``."""
    body, attributes = signed("run_ok", WakeupSigner(key=KEY))
    send(client, url, "run_ok", attributes, body)
    forger = HmacSha256Key(key_id=KEY.key_id, secret=b"guessed-secret-" + b"z" * 20)
    send(client, url, "run_forged", signed("run_forged", WakeupSigner(key=forger))[1])
    send(client, url, "run_altered", attributes)  # run_ok's signature on another body
    past = ManualClock(datetime(2024, 1, 1, tzinfo=UTC))
    send(client, url, "run_expired", signed("run_expired", WakeupSigner(key=KEY, ttl="1h", clock=past))[1])
    send(client, url, "run_unsigned", None)
    _, other = signed("run_alg", WakeupSigner(key=KEY))
    send(client, url, "run_alg", {**other, ALGORITHM_ATTRIBUTE: "hmac-sha512"})


def reasons(failures: list[SqsDeliveryFailure]) -> list[str]:
    found = []
    for failure in failures:
        assert failure.phase is SqsDeliveryFailurePhase.MESSAGE
        assert failure.delivery_message is None  # never parsed, let alone executed
        assert isinstance(failure.cause, RunlaneError)
        assert failure.cause.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
        assert failure.cause.meta is not None
        found.append(failure.cause.meta["reason"])
    return sorted(found)


EXPECTED_REASONS = sorted(
    [
        "signature_invalid",
        "signature_invalid",
        "signature_expired",
        "signature_missing",
        "algorithm_unsupported",
    ]
)


async def test_consumer_executes_only_the_authentic_wakeup(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("signed")
    load_hostile_queue(sqs_client, url)
    delivery = RecordingDelivery()
    failures: list[SqsDeliveryFailure] = []
    consumer = create_sqs_delivery_consumer(
        client=sqs_client,
        queue_url=url,
        execute_delivery=delivery,
        wait_time_seconds=1,
        visibility_timeout_seconds=60,
        verifier=WakeupVerifier(key=KEY),
        on_delivery_failure=failures.append,
    )
    await consumer.start()
    try:
        await wait_until(lambda: len(failures) == 5 and len(delivery.calls) == 1, within=20)
    finally:
        await consumer.stop()
    assert delivery.run_ids == ["run_ok"]
    assert reasons(failures) == EXPECTED_REASONS
    assert queue_counts(sqs_client, url) == (0, 5)  # rejected wakeups are left for the DLQ


async def test_lambda_executes_only_the_authentic_wakeup(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("signed")
    load_hostile_queue(sqs_client, url)
    messages: list[dict[str, Any]] = []
    for _ in range(10):
        if len(messages) >= 6:
            break
        received = sqs_client.receive_message(
            QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"]
        )
        messages += [dict(m) for m in received.get("Messages", [])]
    event = lambda_event_from_messages(messages, queue_name="signed")
    delivery = RecordingDelivery()
    failures: list[SqsDeliveryFailure] = []
    handler = create_sqs_lambda_handler(
        execute_delivery=delivery, verifier=WakeupVerifier(key=KEY), on_delivery_failure=failures.append
    )
    response = await handler(event)
    assert delivery.run_ids == ["run_ok"]
    assert len(response["batchItemFailures"]) == 5
    assert reasons(failures) == EXPECTED_REASONS


async def test_signed_transport_to_consumer_with_key_rotation(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    """Wakeups signed with the old key still run while consumers trust it as the fallback."""
    url = make_queue("signed")
    for signer, prefix in ((WakeupSigner(key=OLD_KEY), "old"), (WakeupSigner(key=KEY), "new")):
        transport = sqs_transport(client=sqs_client, queues=[sqs_queue(EMAILS, queue_url=url)], signer=signer)
        await transport.publish_wakeups(
            PublishWakeups(
                attempts=tuple(
                    PublishWakeupAttempt(
                        outbox_message_id=f"outbox_{prefix}_{i}", message=make_message(f"{prefix}_{i}")
                    )
                    for i in range(2)
                )
            )
        )
    delivery = RecordingDelivery()
    consumer = create_sqs_delivery_consumer(
        client=sqs_client,
        queue_url=url,
        execute_delivery=delivery,
        wait_time_seconds=1,
        verifier=WakeupVerifier(key=KEY, fallback_key=OLD_KEY),
    )
    await consumer.start()
    try:
        await wait_until(lambda: len(delivery.calls) == 4, within=20)
        await wait_until(lambda: queue_counts(sqs_client, url) == (0, 0), within=20)
    finally:
        await consumer.stop()
    assert sorted(delivery.run_ids) == ["new_0", "new_1", "old_0", "old_1"]


async def test_ed25519_producer_signs_and_public_key_consumer_verifies(
    sqs_client: SQSClient, make_queue: QueueFactory
) -> None:
    url = make_queue("signed")
    private = Ed25519PrivateKey.generate()
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    producer = WakeupSigner(key=Ed25519Key(key_id="ed-2025", private_key=private_pem))
    transport = sqs_transport(client=sqs_client, queues=[sqs_queue(EMAILS, queue_url=url)], signer=producer)
    await transport.publish_wakeups(
        PublishWakeups(
            attempts=(PublishWakeupAttempt(outbox_message_id="outbox_1", message=make_message("run_ed")),)
        )
    )
    # A wakeup signed by somebody else's Ed25519 key under the same key id is refused.
    impostor = WakeupSigner(key=Ed25519Key(key_id="ed-2025", private_key=Ed25519PrivateKey.generate()))
    send(sqs_client, url, "run_impostor", signed("run_impostor", impostor)[1])
    delivery = RecordingDelivery()
    failures: list[SqsDeliveryFailure] = []
    consumer = create_sqs_delivery_consumer(
        client=sqs_client,
        queue_url=url,
        execute_delivery=delivery,
        wait_time_seconds=1,
        visibility_timeout_seconds=60,
        verifier=WakeupVerifier(key=Ed25519Key(key_id="ed-2025", public_key=public_pem)),
        on_delivery_failure=failures.append,
    )
    await consumer.start()
    try:
        await wait_until(lambda: len(delivery.calls) == 1 and len(failures) == 1, within=20)
    finally:
        await consumer.stop()
    assert delivery.run_ids == ["run_ed"]
    assert reasons(failures) == ["signature_invalid"]


def test_producer_with_only_a_public_key_is_configuration_invalid() -> None:
    public = Ed25519PrivateKey.generate().public_key()
    with pytest.raises(RunlaneError) as error:
        WakeupSigner(key=Ed25519Key(key_id="ed", public_key=public))
    assert error.value.code is ErrorCode.CONFIGURATION_INVALID


def test_consumer_with_only_a_private_key_is_configuration_invalid() -> None:
    with pytest.raises(RunlaneError) as error:
        WakeupVerifier(key=Ed25519Key(key_id="ed", private_key=Ed25519PrivateKey.generate()))
    assert error.value.code is ErrorCode.CONFIGURATION_INVALID
