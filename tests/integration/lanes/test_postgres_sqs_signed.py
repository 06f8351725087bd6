"""Signed wakeups end to end: the lane's producer signs, the consumer verifies before touching storage."""

from __future__ import annotations

from typing import TYPE_CHECKING

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from runlane import (
    DeliveryMessage,
    DeliveryResultType,
    RunStatus,
    SqsDeliveryFailurePhase,
    TriggerDispatchMode,
)
from runlane.infrastructure.sqs import (
    Ed25519Key,
    HmacSha256Key,
    WakeupKey,
    WakeupSigner,
    WakeupVerifier,
    create_sqs_delivery_consumer,
    create_sqs_wakeup_body,
)
from runlane.testing import ControlledClock
from tests.integration.lanes.conftest import Cleanup
from tests.integration.lanes.support import (
    ENVIRONMENT,
    VISIBILITY_SECONDS,
    FailureLog,
    GetRunCounter,
    Ledger,
    bindings_for,
    build_lane,
    build_runtime,
    ledger_task,
    run_status,
    stop,
    wait_for_queue,
    with_storage,
)
from tests.support.pg_cluster import PostgresCluster
from tests.unit.sqs.fakes import wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

KEY_ID = "2025-06"


def keys(algorithm: str) -> tuple[WakeupKey, WakeupKey, WakeupKey]:
    """(producer key, consumer key, an attacker's key under the same key id)."""
    if algorithm == "hmac":
        secret = b"s" * 32
        key = HmacSha256Key(key_id=KEY_ID, secret=secret)
        return key, key, HmacSha256Key(key_id=KEY_ID, secret=b"x" * 32)
    private = Ed25519PrivateKey.generate()
    return (
        Ed25519Key(key_id=KEY_ID, private_key=private),
        Ed25519Key(key_id=KEY_ID, public_key=private.public_key()),
        Ed25519Key(key_id=KEY_ID, private_key=Ed25519PrivateKey.generate()),
    )


def string_attributes(values: dict[str, str]) -> dict[str, dict[str, str]]:
    return {name: {"DataType": "String", "StringValue": value} for name, value in values.items()}


@pytest.mark.parametrize("algorithm", ["hmac", "ed25519"])
async def test_forged_wakeups_are_rejected_before_storage_and_the_signed_one_executes(
    pg_cluster: PostgresCluster,
    lane_schema: str,
    sqs_client: SQSClient,
    queue_urls: tuple[str, str],
    clock: ControlledClock,
    cleanup: Cleanup,
    algorithm: str,
) -> None:
    emails_url, _ = queue_urls
    producer_key, consumer_key, attacker_key = keys(algorithm)
    signer = WakeupSigner(key=producer_key)
    ledger = Ledger()
    job = ledger_task(ledger)
    lane = build_lane(
        dsn=pg_cluster.dsn,
        schema=lane_schema,
        client=sqs_client,
        bindings=bindings_for(*queue_urls),
        sqs_options={"signer": signer},
    )
    storage = GetRunCounter(lane.storage)
    runtime = cleanup.runtime(build_runtime(with_storage(lane, storage), [job], clock))

    legit = await runtime.trigger(job, {"to": "a@example.com"})  # signed by the lane's transport
    assert len(legit.published) == 1
    # A real, due run that only forged wakeups name: executing it would be visible in the ledger.
    victim = await runtime.trigger(job, {"to": "b@example.com"}, dispatch=TriggerDispatchMode.DEFERRED)
    victim_body = create_sqs_wakeup_body(
        DeliveryMessage(
            environment=ENVIRONMENT, run_id=victim.run.id, queue="emails", requested_at=clock.now()
        )
    )
    legit_body = create_sqs_wakeup_body(
        DeliveryMessage(
            environment=ENVIRONMENT, run_id=legit.run.id, queue="emails", requested_at=clock.now()
        )
    )
    forged = {
        "missing": sqs_client.send_message(QueueUrl=emails_url, MessageBody=victim_body)["MessageId"],
        # A genuine signature copied from another body.
        "tampered": sqs_client.send_message(
            QueueUrl=emails_url,
            MessageBody=victim_body,
            MessageAttributes=string_attributes(signer.sign(legit_body)),  # type: ignore[arg-type]
        )["MessageId"],
        "wrong_key": sqs_client.send_message(
            QueueUrl=emails_url,
            MessageBody=victim_body,
            MessageAttributes=string_attributes(WakeupSigner(key=attacker_key).sign(victim_body)),  # type: ignore[arg-type]
        )["MessageId"],
    }
    await wait_for_queue(sqs_client, emails_url, (4, 0))
    storage.get_run_calls.clear()

    failures = FailureLog()
    consumer = cleanup.consumer(
        create_sqs_delivery_consumer(
            client=sqs_client,
            queue_url=emails_url,
            execute_delivery=runtime.execute_delivery,
            verifier=WakeupVerifier(key=consumer_key),
            wait_time_seconds=1,
            visibility_timeout_seconds=VISIBILITY_SECONDS,
            on_delivery_failure=failures,
        )
    )
    await consumer.start()
    await wait_until(lambda: len(failures.failures) >= 3 and ledger.total() >= 1, within=30)
    # The legit message was deleted; the forged ones stay in flight until SQS redelivers them
    # (and after maxReceiveCount, dead-letters them).
    await wait_for_queue(sqs_client, emails_url, (0, 3))
    await stop(consumer)
    reads = dict(storage.get_run_calls)  # before this test's own reads below

    assert reads.get(victim.run.id, 0) == 0  # rejected before any storage read
    assert reads[legit.run.id] >= 1
    assert ledger.calls == {legit.run.id: 1}
    assert await run_status(runtime, legit.run.id) is RunStatus.SUCCEEDED
    assert await run_status(runtime, victim.run.id) is RunStatus.QUEUED
    reasons = {
        failure.provider_message_id: (failure.phase, (failure.cause.meta or {}).get("reason"))  # type: ignore[attr-defined]
        for failure in failures.failures
    }
    message = SqsDeliveryFailurePhase.MESSAGE
    assert reasons == {
        forged["missing"]: (message, "signature_missing"),
        forged["tampered"]: (message, "signature_invalid"),
        forged["wrong_key"]: (message, "signature_invalid"),
    }
    assert all(failure.delivery_message is None for failure in failures.failures)  # never parsed

    # Had a forgery got through, it would have run: the victim is executable.
    result = await runtime.execute_delivery(
        DeliveryMessage(environment=ENVIRONMENT, run_id=victim.run.id, queue="emails")
    )
    assert result.type is DeliveryResultType.EXECUTED
