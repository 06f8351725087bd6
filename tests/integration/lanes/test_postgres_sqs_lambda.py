"""The SQS Lambda handler on the Postgres/SQS lane: partial batch failures against real Postgres."""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Any

from runlane import (
    DeliveryMessage,
    ErrorCode,
    Runlane,
    RunlaneError,
    RunStatus,
    SqsDeliveryFailurePhase,
    TriggerDispatchMode,
)
from runlane.infrastructure.sqs import create_sqs_lambda_handler, create_sqs_wakeup_body
from runlane.testing import ControlledClock
from tests.integration.lanes.conftest import Cleanup
from tests.integration.lanes.support import (
    ENVIRONMENT,
    FailureLog,
    Ledger,
    bindings_for,
    build_lane,
    build_runtime,
    ledger_task,
    run_status,
)
from tests.support.pg_cluster import PostgresCluster
from tests.unit.sqs.fakes import lambda_record

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


class FlakyDelivery:
    """``runtime.execute_delivery`` for every run except ``broken`` ones, whose storage read "fails"."""

    def __init__(self, runtime: Runlane, broken: set[str]) -> None:
        self.runtime = runtime
        self.broken = broken

    async def __call__(self, message: DeliveryMessage, **options: Any) -> object:
        if message.run_id in self.broken:
            raise RunlaneError(ErrorCode.INTERNAL_ERROR, "Postgres is unavailable.", retryable=True)
        return await self.runtime.execute_delivery(message, **options)


async def test_a_batch_of_ten_reports_exactly_the_three_bad_records(
    pg_cluster: PostgresCluster,
    lane_schema: str,
    sqs_client: SQSClient,
    queue_urls: tuple[str, str],
    clock: ControlledClock,
    cleanup: Cleanup,
) -> None:
    ledger = Ledger()
    job = ledger_task(ledger)
    lane = build_lane(
        dsn=pg_cluster.dsn, schema=lane_schema, client=sqs_client, bindings=bindings_for(*queue_urls)
    )
    runtime = cleanup.runtime(build_runtime(lane, [job], clock))
    runs = [
        (await runtime.trigger(job, {"n": index}, dispatch=TriggerDispatchMode.DEFERRED)).run.id
        for index in range(8)
    ]
    good, unlucky = runs[:7], runs[7]

    def body(run_id: str) -> str:
        return create_sqs_wakeup_body(
            DeliveryMessage(environment=ENVIRONMENT, run_id=run_id, queue="emails", requested_at=clock.now())
        )

    wrong_version = json.dumps(
        {"message": json.loads(body(good[0]))["message"], "type": "runlane.wakeup", "version": 2}
    )
    records = [lambda_record(message_id=f"m{index}", body=body(run_id)) for index, run_id in enumerate(good)]
    records.insert(2, lambda_record(message_id="bad-json", body="{not json"))
    records.insert(5, lambda_record(message_id="bad-version", body=wrong_version))
    records.insert(8, lambda_record(message_id="bad-execute", body=body(unlucky)))
    assert len(records) == 10
    failures = FailureLog()
    handler = create_sqs_lambda_handler(
        execute_delivery=FlakyDelivery(runtime, broken={unlucky}), on_delivery_failure=failures
    )

    response = await handler({"Records": records})

    assert response == {
        "batchItemFailures": [
            {"itemIdentifier": "bad-json"},
            {"itemIdentifier": "bad-version"},
            {"itemIdentifier": "bad-execute"},
        ]
    }
    assert [(f.provider_message_id, f.phase) for f in failures.failures] == [
        ("bad-json", SqsDeliveryFailurePhase.PARSE),
        ("bad-version", SqsDeliveryFailurePhase.PARSE),
        ("bad-execute", SqsDeliveryFailurePhase.EXECUTE),
    ]
    assert ledger.calls == {run_id: 1 for run_id in good}
    for run_id in good:
        assert await run_status(runtime, run_id) is RunStatus.SUCCEEDED
    assert await run_status(runtime, unlucky) is RunStatus.QUEUED

    # SQS redelivers only the failed record; once storage is back it executes, and a redelivered
    # good record is a harmless duplicate.
    retry = create_sqs_lambda_handler(execute_delivery=runtime.execute_delivery)
    redelivered = [lambda_record(message_id="bad-execute", body=body(unlucky)), records[0]]
    assert await retry({"Records": redelivered}) == {"batchItemFailures": []}
    assert ledger.calls == {run_id: 1 for run_id in runs}
    assert await run_status(runtime, unlucky) is RunStatus.SUCCEEDED


async def test_three_concurrent_invocations_with_the_same_record_execute_once(
    pg_cluster: PostgresCluster,
    lane_schema: str,
    sqs_client: SQSClient,
    queue_urls: tuple[str, str],
    clock: ControlledClock,
    cleanup: Cleanup,
) -> None:
    """SQS may hand one message to several Lambda invocations; storage lets only one run it."""
    ledger = Ledger()
    job = ledger_task(ledger)
    lane = build_lane(
        dsn=pg_cluster.dsn, schema=lane_schema, client=sqs_client, bindings=bindings_for(*queue_urls)
    )
    runtime = cleanup.runtime(build_runtime(lane, [job], clock))
    created = await runtime.trigger(job, {}, dispatch=TriggerDispatchMode.DEFERRED)
    body = create_sqs_wakeup_body(
        DeliveryMessage(
            environment=ENVIRONMENT, run_id=created.run.id, queue="emails", requested_at=clock.now()
        )
    )
    failures = FailureLog()
    handler = create_sqs_lambda_handler(
        execute_delivery=runtime.execute_delivery, on_delivery_failure=failures
    )

    responses = await asyncio.gather(
        *(handler({"Records": [lambda_record(message_id=f"copy-{i}", body=body)]}) for i in range(3))
    )

    assert responses == [{"batchItemFailures": []}] * 3  # every copy acknowledged
    assert failures.failures == []
    assert ledger.calls == {created.run.id: 1}
    assert await run_status(runtime, created.run.id) is RunStatus.SUCCEEDED
