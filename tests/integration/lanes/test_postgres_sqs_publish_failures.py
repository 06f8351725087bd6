"""Failed wakeup publishes on the Postgres/SQS lane: tick republishes them, every run executes once.

30% of ``SendMessageBatch`` calls fail at the boto3 client (a throttling ``ClientError`` or every
entry ``Failed``), chosen by call number, so the run is the same every time. The runtime's clock
is controlled and only moves while nothing is in flight, to make the outbox retry delay pass
without waiting and without ever expiring a lease.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runlane import OutboxMessageStatus, RunStatus, TickResult
from runlane.infrastructure.sqs import create_sqs_delivery_consumer
from runlane.testing import ControlledClock
from tests.integration.lanes.conftest import Cleanup
from tests.integration.lanes.support import (
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
    thirty_percent_failing,
    unpublished,
    wait_for_queue,
)
from tests.support.pg_cluster import PostgresCluster

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

RUNS = 200
MAX_ROUNDS = 30


async def test_two_hundred_runs_with_thirty_percent_failed_publishes_each_execute_once(
    pg_cluster: PostgresCluster,
    lane_schema: str,
    sqs_client: SQSClient,
    queue_urls: tuple[str, str],
    clock: ControlledClock,
    cleanup: Cleanup,
) -> None:
    emails_url, _ = queue_urls
    client = RecordingClient(sqs_client, send_fault=thirty_percent_failing)
    ledger = Ledger()
    job = ledger_task(ledger)
    lane = build_lane(
        dsn=pg_cluster.dsn, schema=lane_schema, client=client, bindings=bindings_for(*queue_urls)
    )
    runtime = cleanup.runtime(build_runtime(lane, [job], clock))
    recorder = DeliveryRecorder(runtime)
    failures = FailureLog()
    consumer = cleanup.consumer(
        create_sqs_delivery_consumer(
            client=client,
            queue_url=emails_url,
            execute_delivery=recorder,
            concurrency=10,
            wait_time_seconds=1,
            visibility_timeout_seconds=VISIBILITY_SECONDS,
            on_delivery_failure=failures,
        )
    )
    await consumer.start()

    triggered = [await runtime.trigger(job, {"n": index}) for index in range(RUNS)]

    run_ids = [result.run.id for result in triggered]
    # Eager dispatch sends one SendMessageBatch per trigger: calls 2, 5, 8 of every ten fail.
    assert client.send_calls == RUNS
    eager_failed = [result.run.id for result in triggered if result.failed]
    assert len(eager_failed) == RUNS * 3 // 10
    assert all(len(result.published) + len(result.failed) == 1 for result in triggered)
    failed_codes = {result.failed[0].error.code.value for result in triggered if result.failed}
    assert failed_codes == {"transport_unavailable", "transport_publish_failed"}  # both fault kinds hit
    assert len(await unpublished(runtime)) == len(eager_failed)

    ticks: list[TickResult] = []
    for _ in range(MAX_ROUNDS):
        # Nothing moves the clock while a wakeup is queued or a run is leased.
        await wait_for_queue(sqs_client, emails_url, (0, 0), within=120)
        if not await unpublished(runtime):
            break
        clock.advance("5m")  # past the outbox retry delay (capped at 5m)
        ticks.append(await runtime.tick())
    else:
        raise AssertionError(f"outbox still has unpublished rows after {MAX_ROUNDS} ticks")
    await stop(consumer)

    assert ledger.calls == {run_id: 1 for run_id in run_ids}
    assert failures.failures == []
    for run_id in run_ids:
        assert await run_status(runtime, run_id) is RunStatus.SUCCEEDED
        assert [result.type.value for result in recorder.results[run_id]] == ["executed"]
    rows = await outbox(runtime)
    assert len(rows) == RUNS
    assert {row.status for row in rows} == {OutboxMessageStatus.PUBLISHED}
    retried = {row.run_id for row in rows if row.attempts > 1}
    assert retried == set(eager_failed)
    # SQS accepted exactly one message per outbox row; every rejected one was republished by tick.
    assert len(client.accepted) == RUNS
    assert {row.provider_message_id for row in rows} == {entry["MessageId"] for entry in client.accepted}
    assert sum(tick.published_wakeups for tick in ticks) == len(eager_failed)
    assert sum(tick.dead_lettered_wakeups for tick in ticks) == 0
    assert len(ticks) >= 2  # some republishes failed too, and were retried on a later tick
