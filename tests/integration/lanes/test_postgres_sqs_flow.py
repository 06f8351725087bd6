"""The full Postgres/SQS lane: trigger -> outbox -> SQS -> consumer -> execute_delivery -> executed run.

Real Postgres (a freshly migrated schema), moto's SQS server over HTTP with real boto3, and the real
long-running consumer. Handlers record into a ledger, so "executed exactly once" is counted, not
inferred from statuses.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING

from runlane import (
    DeliveryIgnoredReason,
    DeliveryMessage,
    DeliveryResultType,
    OutboxMessageStatus,
    RunStatus,
    TriggerDispatchMode,
)
from runlane.infrastructure.sqs import create_sqs_delivery_consumer, create_sqs_wakeup_body
from runlane.testing import ControlledClock, claim_queued_run
from tests.integration.lanes.conftest import Cleanup
from tests.integration.lanes.support import (
    EMAILS,
    ENVIRONMENT,
    VISIBILITY_SECONDS,
    DeliveryRecorder,
    FailureLog,
    Ledger,
    RecordingClient,
    bindings_for,
    build_lane,
    build_runtime,
    ledger_task,
    outbox,
    run_status,
    stop,
    wait_for_queue,
)
from tests.support.pg_cluster import PostgresCluster
from tests.unit.sqs.fakes import wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


async def test_trigger_publishes_one_message_per_outbox_row_and_the_consumer_executes_it(
    pg_cluster: PostgresCluster,
    lane_schema: str,
    sqs_client: SQSClient,
    queue_urls: tuple[str, str],
    clock: ControlledClock,
    cleanup: Cleanup,
) -> None:
    emails_url, _ = queue_urls
    client = RecordingClient(sqs_client)
    ledger = Ledger()
    job = ledger_task(ledger)
    lane = build_lane(
        dsn=pg_cluster.dsn, schema=lane_schema, client=client, bindings=bindings_for(*queue_urls)
    )
    runtime = cleanup.runtime(build_runtime(lane, [job], clock))

    triggered = [await runtime.trigger(job, {"to": f"user{index}@example.com"}) for index in range(5)]

    run_ids = [result.run.id for result in triggered]
    assert all(len(result.published) == 1 and not result.failed for result in triggered)
    rows = await outbox(runtime)
    assert sorted(row.run_id for row in rows) == sorted(run_ids)  # one outbox row per run
    assert {row.status for row in rows} == {OutboxMessageStatus.PUBLISHED}
    # Exactly one SQS message per outbox row, carrying that row's run and nothing else.
    assert len(client.accepted) == 5
    assert {row.provider_message_id for row in rows} == {entry["MessageId"] for entry in client.accepted}
    bodies = [json.loads(entry["Body"]) for entry in client.accepted]
    assert sorted(body["message"]["runId"] for body in bodies) == sorted(run_ids)
    assert all(body["message"]["queue"] == "emails" and "payload" not in body["message"] for body in bodies)
    await wait_for_queue(sqs_client, emails_url, (5, 0))

    recorder = DeliveryRecorder(runtime)
    consumer = cleanup.consumer(
        create_sqs_delivery_consumer(
            client=client,
            queue_url=emails_url,
            execute_delivery=recorder,
            concurrency=4,
            wait_time_seconds=1,
            visibility_timeout_seconds=VISIBILITY_SECONDS,
        )
    )
    await consumer.start()
    await wait_for_queue(sqs_client, emails_url, (0, 0))  # every message deleted
    await stop(consumer)

    assert ledger.calls == {run_id: 1 for run_id in run_ids}
    for run_id in run_ids:
        assert await run_status(runtime, run_id) is RunStatus.SUCCEEDED
        (result,) = recorder.results[run_id]
        assert result.type is DeliveryResultType.EXECUTED
        assert result.run is not None and result.run.status is RunStatus.SUCCEEDED
        (attempt,) = await runtime.runs.attempts(run_id)
        assert attempt.status.value == "succeeded"
    assert len(client.received) == 5
    assert sorted(client.deleted_handles) == sorted(message["ReceiptHandle"] for message in client.received)


async def test_the_same_wakeup_three_times_at_once_executes_the_run_once(
    pg_cluster: PostgresCluster,
    lane_schema: str,
    sqs_client: SQSClient,
    queue_urls: tuple[str, str],
    clock: ControlledClock,
    cleanup: Cleanup,
) -> None:
    gate = asyncio.Event()
    ledger = Ledger(gate=gate)  # the winner holds its lease until both losers have answered
    job = ledger_task(ledger)
    lane = build_lane(
        dsn=pg_cluster.dsn, schema=lane_schema, client=sqs_client, bindings=bindings_for(*queue_urls)
    )
    runtime = cleanup.runtime(build_runtime(lane, [job], clock))
    created = await runtime.trigger(job, {}, dispatch=TriggerDispatchMode.DEFERRED)
    (row,) = await outbox(runtime)

    deliveries = [asyncio.create_task(runtime.execute_delivery(row.message)) for _ in range(3)]
    await wait_until(
        lambda: ledger.started.is_set() and sum(task.done() for task in deliveries) == 2, within=30
    )
    gate.set()
    results = await asyncio.gather(*deliveries)

    executed = [result for result in results if result.type is DeliveryResultType.EXECUTED]
    ignored = [result for result in results if result.type is DeliveryResultType.IGNORED]
    assert len(executed) == 1 and len(ignored) == 2
    # The losers saw the lease being taken (claim_lost) or already held (already_leased); never a
    # finished run, because the winner was still running when they answered.
    assert {result.reason for result in ignored} <= {
        DeliveryIgnoredReason.CLAIM_LOST,
        DeliveryIgnoredReason.ALREADY_LEASED,
    }
    assert ledger.calls == {created.run.id: 1}
    assert await run_status(runtime, created.run.id) is RunStatus.SUCCEEDED


async def test_three_copies_of_a_wakeup_on_the_queue_execute_once_and_are_all_deleted(
    pg_cluster: PostgresCluster,
    lane_schema: str,
    sqs_client: SQSClient,
    queue_urls: tuple[str, str],
    clock: ControlledClock,
    cleanup: Cleanup,
) -> None:
    emails_url, _ = queue_urls
    ledger = Ledger()
    job = ledger_task(ledger)
    lane = build_lane(
        dsn=pg_cluster.dsn, schema=lane_schema, client=sqs_client, bindings=bindings_for(*queue_urls)
    )
    runtime = cleanup.runtime(build_runtime(lane, [job], clock))
    created = await runtime.trigger(job, {})  # eager: the first copy
    (row,) = await outbox(runtime)
    body = create_sqs_wakeup_body(row.message)
    for _ in range(2):  # two duplicates, as a provider redelivery or a republish would produce
        sqs_client.send_message(QueueUrl=emails_url, MessageBody=body)
    await wait_for_queue(sqs_client, emails_url, (3, 0))

    recorder = DeliveryRecorder(runtime)
    failures = FailureLog()
    consumer = cleanup.consumer(
        create_sqs_delivery_consumer(
            client=sqs_client,
            queue_url=emails_url,
            execute_delivery=recorder,
            concurrency=3,  # all three copies run at the same time
            wait_time_seconds=1,
            visibility_timeout_seconds=VISIBILITY_SECONDS,
            on_delivery_failure=failures,
        )
    )
    await consumer.start()
    await wait_until(lambda: len(recorder.results.get(created.run.id, [])) == 3, within=30)
    await wait_for_queue(sqs_client, emails_url, (0, 0))
    await stop(consumer)

    assert ledger.calls == {created.run.id: 1}
    results = recorder.results[created.run.id]
    assert sorted(result.type.value for result in results) == ["executed", "ignored", "ignored"]
    assert failures.failures == []
    assert await run_status(runtime, created.run.id) is RunStatus.SUCCEEDED


async def test_stale_wakeups_are_acknowledged_with_their_reason(
    pg_cluster: PostgresCluster,
    lane_schema: str,
    sqs_client: SQSClient,
    queue_urls: tuple[str, str],
    clock: ControlledClock,
    cleanup: Cleanup,
) -> None:
    """Terminal, not-due, leased, wrong-queue and unknown runs: ignored, deleted, never executed."""
    emails_url, reports_url = queue_urls
    ledger = Ledger()
    job = ledger_task(ledger)
    lane = build_lane(
        dsn=pg_cluster.dsn, schema=lane_schema, client=sqs_client, bindings=bindings_for(*queue_urls)
    )
    runtime = cleanup.runtime(build_runtime(lane, [job], clock))
    deferred = TriggerDispatchMode.DEFERRED

    finished = await runtime.trigger(job, {}, dispatch=deferred)
    (finished_row,) = await outbox(runtime)
    assert (await runtime.execute_delivery(finished_row.message)).type is DeliveryResultType.EXECUTED
    later = await runtime.trigger(job, {}, delay="1h")
    assert later.published == () and later.failed == ()  # not due: nothing is published eagerly
    leased = await runtime.trigger(job, {}, dispatch=deferred)
    claim = await claim_queued_run(runtime.lane, clock, leased.run.id, "10m", environment=ENVIRONMENT)
    misrouted = await runtime.trigger(job, {}, dispatch=deferred)
    ledger.calls.clear()

    def wakeup(run_id: str, queue: str = "emails") -> str:
        message = DeliveryMessage(
            environment=ENVIRONMENT, run_id=run_id, queue=queue, requested_at=clock.now()
        )
        return create_sqs_wakeup_body(message)

    for run_id in (finished.run.id, later.run.id, leased.run.id, "run_unknown"):
        sqs_client.send_message(QueueUrl=emails_url, MessageBody=wakeup(run_id))
    # The run lives on "emails"; a wakeup naming "reports" arrives on the reports queue.
    sqs_client.send_message(QueueUrl=reports_url, MessageBody=wakeup(misrouted.run.id, "reports"))

    recorder = DeliveryRecorder(runtime)
    failures = FailureLog()
    consumers = [
        cleanup.consumer(
            create_sqs_delivery_consumer(
                client=sqs_client,
                queue_url=url,
                execute_delivery=recorder,
                wait_time_seconds=1,
                visibility_timeout_seconds=VISIBILITY_SECONDS,
                on_delivery_failure=failures,
            )
        )
        for url in (emails_url, reports_url)
    ]
    for consumer in consumers:
        await consumer.start()
    await wait_for_queue(sqs_client, emails_url, (0, 0))  # acknowledged = deleted
    await wait_for_queue(sqs_client, reports_url, (0, 0))
    for consumer in consumers:
        await stop(consumer)

    reasons = {run_id: [(r.type, r.reason) for r in results] for run_id, results in recorder.results.items()}
    ignored = DeliveryResultType.IGNORED
    assert reasons == {
        finished.run.id: [(ignored, DeliveryIgnoredReason.TERMINAL)],
        later.run.id: [(ignored, DeliveryIgnoredReason.NOT_DUE)],
        leased.run.id: [(ignored, DeliveryIgnoredReason.ALREADY_LEASED)],
        "run_unknown": [(ignored, DeliveryIgnoredReason.RUN_NOT_FOUND)],
        misrouted.run.id: [(ignored, DeliveryIgnoredReason.WRONG_QUEUE)],
    }
    assert failures.failures == []
    assert ledger.total() == 0
    # Nothing about those runs changed.
    assert await run_status(runtime, later.run.id) is RunStatus.SCHEDULED
    assert await run_status(runtime, misrouted.run.id) is RunStatus.QUEUED
    leased_run = await runtime.runs.get(leased.run.id)
    assert leased_run is not None and leased_run.lease == claim.lease

    # The misrouted run still executes from a wakeup on its own queue.
    result = await runtime.execute_delivery(
        DeliveryMessage(environment=ENVIRONMENT, run_id=misrouted.run.id, queue=EMAILS.name)
    )
    assert result.type is DeliveryResultType.EXECUTED
    assert ledger.calls == {misrouted.run.id: 1}
