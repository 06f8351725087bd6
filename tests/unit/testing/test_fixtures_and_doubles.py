"""Run fixtures, the recording transport and the capability-override storage of runlane.testing."""

from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import ErrorCode, RunStatus
from runlane.infrastructure.memory import create_local_lane, create_local_storage
from runlane.ports.capabilities import ALL_STORAGE_CAPABILITIES
from runlane.ports.lane import create_lane
from runlane.ports.storage import StorageAdapter
from runlane.ports.storage_commands import (
    ClaimOutboxMessages,
    GetRun,
    ListRuns,
    PruneRuns,
    ReleaseExpiredReservations,
    RunFilter,
    ScheduleOccurrenceClaim,
)
from runlane.ports.transport import PublishedWakeup, PublishWakeupAttempt, PublishWakeups, TransportAdapter
from runlane.testing import (
    RecordingTransport,
    append_queued_run,
    append_scheduled_run,
    append_succeeded_run,
    claim_queued_run,
    create_controlled_clock,
    create_queued_run_data,
    get_lease,
    storage_with_capabilities,
)
from runlane.testing.run_builders import TEST_ENVIRONMENT

ENV = TEST_ENVIRONMENT


async def test_append_queued_run_writes_what_trigger_writes() -> None:
    clock = create_controlled_clock()
    lane = create_local_lane()
    fixture = await append_queued_run(lane, clock, "run_123", payload={"to": "a@example.com"})
    run = fixture.queued_run
    assert run.id == "run_123"
    assert run.status is RunStatus.QUEUED
    assert run.environment == Environment("test")
    assert run.task_id == "test.task"
    assert run.queue == "default"
    assert run.payload == {"to": "a@example.com"}
    assert [e.type.value for e in fixture.events] == ["run.created", "run.delivery_requested"]
    assert len(fixture.outbox_message_ids) == 1
    assert await lane.storage.get_run(GetRun(environment=ENV, run_id="run_123")) == run


async def test_append_queued_run_fails_loudly_when_an_owner_exists() -> None:
    clock = create_controlled_clock()
    storage = create_local_storage()
    await append_queued_run(storage, clock, "run_1", idempotency_key="k")
    with pytest.raises(AssertionError, match="returned existing run run_1"):
        await append_queued_run(storage, clock, "run_2", idempotency_key="k")


async def test_scheduled_and_succeeded_fixtures() -> None:
    clock = create_controlled_clock()
    lane = create_local_lane()
    scheduled = (await append_scheduled_run(lane, clock, "run_later", delay="5m")).scheduled_run
    assert scheduled.status is RunStatus.SCHEDULED
    assert scheduled.run_at is not None
    assert (scheduled.run_at - clock.now()).total_seconds() == 300
    succeeded = (await append_succeeded_run(lane, clock, "run_done")).succeeded_run
    assert succeeded.status is RunStatus.SUCCEEDED
    assert succeeded.attempts == 1
    assert succeeded.lease is None


async def test_claim_queued_run_simulates_a_crashed_worker() -> None:
    clock = create_controlled_clock()
    lane = create_local_lane()
    await append_queued_run(lane, clock, "run_crash")
    claimed = await claim_queued_run(lane, clock, "run_crash", lease_duration="10s", worker_id="worker_dead")
    assert claimed.run.status is RunStatus.RUNNING
    assert claimed.lease.worker_id == "worker_dead"
    assert (claimed.lease.expires_at - clock.now()).total_seconds() == 10
    assert await get_lease(lane, "run_crash") == claimed.lease
    with pytest.raises(AssertionError, match="only runnable runs"):
        await claim_queued_run(lane, clock, "run_crash")
    with pytest.raises(AssertionError, match="does not exist"):
        await claim_queued_run(lane, clock, "run_missing")
    generated = await claim_queued_run(lane, clock, (await append_queued_run(lane, clock, "run_b")).run.id)
    assert generated.lease.worker_id.startswith("worker_")


async def test_get_lease_fails_loudly_without_a_lease() -> None:
    clock = create_controlled_clock()
    lane = create_local_lane()
    await append_queued_run(lane, clock, "run_idle")
    with pytest.raises(AssertionError, match="holds no lease"):
        await get_lease(lane, "run_idle")
    with pytest.raises(AssertionError, match="does not exist"):
        await get_lease(lane, "run_nope")


def _attempt(run_id: str) -> PublishWakeupAttempt:
    return PublishWakeupAttempt(
        outbox_message_id=f"outbox_{run_id}",
        message=DeliveryMessage(environment=ENV, run_id=run_id, queue="default"),
    )


async def test_recording_transport_acknowledges_and_records_every_attempt() -> None:
    transport = RecordingTransport()
    assert isinstance(transport, TransportAdapter)
    command = PublishWakeups(attempts=(_attempt("run_1"), _attempt("run_2")))
    result = await transport.publish_wakeups(command)
    assert all(isinstance(o, PublishedWakeup) for o in result.outcomes)
    assert len(result.outcomes) == 2
    assert transport.calls == [command]
    assert [a.message.run_id for a in transport.attempts] == [
        "run_1",
        "run_2",
    ]
    with pytest.raises(RunlaneError) as info:
        await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_1"), _attempt("run_1"))))
    assert info.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
    lane = create_lane(storage=create_local_storage(), transport=transport)
    await lane.start()
    await lane.close()
    assert (transport.start_count, transport.close_count) == (1, 1)


async def test_recording_transport_can_answer_with_custom_outcomes() -> None:
    clock = create_controlled_clock()

    def respond(attempt: PublishWakeupAttempt) -> Any:
        return PublishedWakeup(
            published_at=clock.now(), provider_message_id=attempt.outbox_message_id.upper()
        )

    transport = RecordingTransport(respond=respond)
    result = await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_1"),)))
    assert result.outcomes == (PublishedWakeup(published_at=clock.now(), provider_message_id="OUTBOX_RUN_1"),)


async def test_storage_with_capabilities_overrides_flags_and_enforces_them() -> None:
    clock = create_controlled_clock()
    inner = create_local_storage()
    storage = storage_with_capabilities(
        inner,
        reads_run_history=False,
        prunes_runs=False,
        persists_outbox=False,
        enforces_idempotency=False,
        enforces_singleton=False,
        enforces_queue_concurrency=False,
        claims_schedule_occurrences=False,
    )
    assert isinstance(storage, StorageAdapter)
    assert storage.name == inner.name
    assert storage.capabilities.leases_runs is True
    assert storage.capabilities.reads_run_history is False
    assert inner.capabilities.reads_run_history is True
    now = clock.now()
    gated: list[Any] = [
        storage.list_runs(ListRuns(filter=RunFilter(environment=ENV))),
        storage.prune_runs(
            PruneRuns(environment=ENV, older_than=now, statuses=(RunStatus.SUCCEEDED,), limit=1)
        ),
        storage.claim_outbox_messages(
            ClaimOutboxMessages(environment=ENV, now=now, limit=1, claim_timeout_ms=1)
        ),
        storage.release_expired_reservations(ReleaseExpiredReservations(environment=ENV, now=now, limit=1)),
        append_queued_run(storage, clock, "run_with_delivery"),
        append_queued_run(storage, clock, "run_key", with_delivery=False, idempotency_key="k"),
        append_queued_run(storage, clock, "run_single", with_delivery=False, singleton_key="s"),
    ]
    for call in gated:
        with pytest.raises(RunlaneError) as info:
            await call
        assert info.value.code is ErrorCode.CAPABILITY_UNSUPPORTED
    data = create_queued_run_data("run_sched", now=now, environment=ENV, with_delivery=False)
    claim = ScheduleOccurrenceClaim(schedule_id="s", occurrence_id="s@1", fire_time=now, task_id="test.task")
    with pytest.raises(RunlaneError) as info:
        await storage.append_run_events(data.append_command(now, schedule_occurrence=claim))
    assert info.value.code is ErrorCode.CAPABILITY_UNSUPPORTED
    # Nothing gated reached the inner storage; an ungated create still works.
    assert await inner.get_run(GetRun(environment=ENV, run_id="run_with_delivery")) is None
    plain = await append_queued_run(storage, clock, "run_plain", with_delivery=False)
    assert await storage.get_run(GetRun(environment=ENV, run_id="run_plain")) == plain.run


def test_storage_with_capabilities_rejects_unknown_flags() -> None:
    with pytest.raises(TypeError, match="flying"):
        storage_with_capabilities(create_local_storage(), flying=True)
    wrapped = storage_with_capabilities(create_local_storage(), durable_state=True, process_local_state=False)
    assert wrapped.capabilities == ALL_STORAGE_CAPABILITIES
