"""``create_sqs_lambda_handler()`` with hand-built SQS Lambda events."""

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
    create_sqs_lambda_handler,
    create_sqs_wakeup_body,
)
from tests.unit.sqs.fakes import ManualClock, RecordingDelivery, lambda_record, make_message


def record(run_id: str, **kwargs: Any) -> dict[str, Any]:
    return lambda_record(
        message_id=f"m-{run_id}", body=create_sqs_wakeup_body(make_message(run_id)), **kwargs
    )


def failed_ids(response: dict[str, Any]) -> list[str]:
    return [item["itemIdentifier"] for item in response["batchItemFailures"]]


async def test_all_records_delivered_in_order_returns_no_failures() -> None:
    delivery = RecordingDelivery()
    handler = create_sqs_lambda_handler(execute_delivery=delivery)
    response = await handler({"Records": [record(f"run_{i}") for i in range(4)]})
    assert response == {"batchItemFailures": []}
    assert delivery.run_ids == ["run_0", "run_1", "run_2", "run_3"]
    assert delivery.options == [{}] * 4


async def test_each_failure_phase_is_reported_and_returned() -> None:
    delivery = RecordingDelivery(fail_run_ids={"run_boom"})
    seen: list[SqsDeliveryFailure] = []

    async def on_failure(failure: SqsDeliveryFailure) -> None:
        seen.append(failure)

    handler = create_sqs_lambda_handler(execute_delivery=delivery, on_delivery_failure=on_failure)
    event = {
        "Records": [
            record("run_ok"),
            lambda_record(message_id="m-nobody", body=None),
            lambda_record(message_id="m-garbage", body="{not json"),
            record("run_boom"),
            record("run_ok2"),
        ]
    }
    response = await handler(event)
    assert failed_ids(response) == ["m-nobody", "m-garbage", "m-run_boom"]
    assert delivery.run_ids == ["run_ok", "run_boom", "run_ok2"]
    assert [(f.provider_message_id, f.phase) for f in seen] == [
        ("m-nobody", SqsDeliveryFailurePhase.MESSAGE),
        ("m-garbage", SqsDeliveryFailurePhase.PARSE),
        ("m-run_boom", SqsDeliveryFailurePhase.EXECUTE),
    ]
    assert seen[0].delivery_message is None
    assert seen[1].delivery_message is None
    assert seen[2].delivery_message == make_message("run_boom")
    assert isinstance(seen[2].cause, RuntimeError)
    assert isinstance(seen[1].cause, RunlaneError)
    assert seen[1].cause.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
    assert seen[2].event_source_arn == "arn:aws:sqs:us-east-1:123456789012:wakeups"


async def test_fifo_fails_the_rest_of_the_batch_without_running_it() -> None:
    delivery = RecordingDelivery(fail_run_ids={"run_1"})
    reported: list[str | None] = []
    handler = create_sqs_lambda_handler(
        execute_delivery=delivery,
        fifo=True,
        on_delivery_failure=lambda f: reported.append(f.provider_message_id),
    )
    response = await handler({"Records": [record(f"run_{i}") for i in range(4)]})
    assert failed_ids(response) == ["m-run_1", "m-run_2", "m-run_3"]
    assert delivery.run_ids == ["run_0", "run_1"]
    assert reported == ["m-run_1"]


async def test_ignored_results_and_sync_execute_delivery_count_as_success() -> None:
    calls: list[str] = []

    def execute(message: Any, **options: Any) -> dict[str, str]:
        calls.append(message.run_id)
        return {"type": "ignored", "reason": "terminal"}

    handler = create_sqs_lambda_handler(execute_delivery=execute)
    assert await handler({"Records": [record("run_a")]}) == {"batchItemFailures": []}
    assert calls == ["run_a"]


async def test_delivery_options_are_validated_then_forwarded_unchanged() -> None:
    delivery = RecordingDelivery()
    options = {"lease_duration": "5m", "heartbeat_interval": "30s", "worker_id": "lambda_1"}
    handler = create_sqs_lambda_handler(execute_delivery=delivery, delivery_options=options)
    await handler({"Records": [record("run_a")]})
    assert delivery.options == [options]


@pytest.mark.parametrize(
    "kwargs",
    [
        {"execute_delivery": None},
        {"execute_delivery": "runtime"},
        {"delivery_options": {"queue": "emails"}},
        {"delivery_options": {"lease_duration": "soon"}},
        {"delivery_options": {"worker_id": "a:b"}},
        {"delivery_options": {"signal": object()}},
        {"delivery_options": ["lease_duration"]},
        {"fifo": "yes"},
        {"on_delivery_failure": 3},
        {"verifier": "secret"},
    ],
)
def test_invalid_options_fail_at_creation(kwargs: dict[str, Any]) -> None:
    options: dict[str, Any] = {"execute_delivery": RecordingDelivery(), **kwargs}
    with pytest.raises(RunlaneError) as error:
        create_sqs_lambda_handler(**options)
    assert error.value.code is ErrorCode.CONFIGURATION_INVALID


@pytest.mark.parametrize(
    "event",
    [
        None,
        {},
        {"Records": "x"},
        {"Records": [{"body": "{}"}]},
        {"Records": [record("run_1"), {"messageId": "", "body": "{}"}]},
        {"Records": [record("run_1"), "record"]},
    ],
)
async def test_malformed_events_throw_before_any_record_runs(event: Any) -> None:
    delivery = RecordingDelivery()
    handler = create_sqs_lambda_handler(execute_delivery=delivery)
    with pytest.raises(RunlaneError) as error:
        await handler(event)
    assert error.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
    assert delivery.calls == []


async def test_a_failing_failure_callback_does_not_break_the_batch() -> None:
    def explode(failure: SqsDeliveryFailure) -> None:
        raise ValueError("callback bug")

    delivery = RecordingDelivery(fail_run_ids={"run_0"})
    handler = create_sqs_lambda_handler(execute_delivery=delivery, on_delivery_failure=explode)
    response = await handler({"Records": [record("run_0"), record("run_1")]})
    assert failed_ids(response) == ["m-run_0"]
    assert delivery.run_ids == ["run_0", "run_1"]


async def test_signed_records_are_verified_before_execute_delivery() -> None:
    clock = ManualClock()
    key = HmacSha256Key(key_id="k1", secret=b"k" * 32)
    signer = WakeupSigner(key=key, ttl="1m", clock=clock)
    delivery = RecordingDelivery()
    failures: list[SqsDeliveryFailure] = []
    handler = create_sqs_lambda_handler(
        execute_delivery=delivery,
        verifier=WakeupVerifier(key=key, clock=clock),
        on_delivery_failure=failures.append,
    )
    good_body = create_sqs_wakeup_body(make_message("run_good"))
    bad_body = create_sqs_wakeup_body(make_message("run_bad"))
    event = {
        "Records": [
            lambda_record(message_id="good", body=good_body, attributes=signer.sign(good_body)),
            lambda_record(message_id="unsigned", body=bad_body),
            lambda_record(message_id="altered", body=bad_body, attributes=signer.sign(good_body)),
        ]
    }
    response = await handler(event)
    assert failed_ids(response) == ["unsigned", "altered"]
    assert delivery.run_ids == ["run_good"]
    assert [f.phase for f in failures] == [SqsDeliveryFailurePhase.MESSAGE] * 2
    clock.advance(minutes=2)
    assert failed_ids(await handler({"Records": event["Records"][:1]})) == ["good"]
    assert delivery.run_ids == ["run_good"]


def test_sync_wrapper_reuses_one_event_loop_across_invocations() -> None:
    loops: list[asyncio.AbstractEventLoop] = []

    async def execute(message: Any, **options: Any) -> None:
        loops.append(asyncio.get_running_loop())

    handler = create_sqs_lambda_handler(execute_delivery=execute)
    try:
        assert handler.sync({"Records": [record("run_1")]}, object()) == {"batchItemFailures": []}
        assert handler.sync({"Records": [record("run_2")]}, object()) == {"batchItemFailures": []}
    finally:
        handler.close()
    assert len(loops) == 2
    assert loops[0] is loops[1]
