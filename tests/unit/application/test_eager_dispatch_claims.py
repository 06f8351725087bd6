"""Eager dispatch with storage that writes the trigger's outbox rows already claimed, and without.

``AppendRunEvents.claim_outbox`` saves the trigger a claim round trip. A storage adapter written
before the flag existed ignores it and leaves the rows pending: eager dispatch must still publish
them at once (claiming them by id), never quietly leave them for ``tick``.
"""

from dataclasses import replace
from datetime import timedelta

from runlane import OutboxMessageStatus, task
from runlane.infrastructure.memory import InMemoryStorage
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    AppendManyRunEventsResult,
    AppendRunEvents,
    AppendRunEventsResult,
    ClaimOutboxMessages,
    OutboxMessage,
)
from runlane.testing import ControlledClock
from tests.unit.application.support import Harness, lane_with_storage, noop, outbox_rows, published


class _StorageWithoutClaimOutbox(InMemoryStorage):
    """The local adapter as one that predates ``claim_outbox``: it drops the flag; counts claims."""

    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    async def append_run_events(self, command: AppendRunEvents) -> AppendRunEventsResult:
        return await super().append_run_events(replace(command, claim_outbox=False))

    async def append_many_run_events(self, command: AppendManyRunEvents) -> AppendManyRunEventsResult:
        items = tuple(replace(item, claim_outbox=False) for item in command.commands)
        return await super().append_many_run_events(replace(command, commands=items))

    async def claim_outbox_messages(self, command: ClaimOutboxMessages) -> tuple[OutboxMessage, ...]:
        self.claims += 1
        return await super().claim_outbox_messages(command)


class _CountingStorage(InMemoryStorage):
    def __init__(self) -> None:
        super().__init__()
        self.claims = 0

    async def claim_outbox_messages(self, command: ClaimOutboxMessages) -> tuple[OutboxMessage, ...]:
        self.claims += 1
        return await super().claim_outbox_messages(command)


async def test_a_claiming_adapter_is_published_without_a_claim_call(harness: Harness) -> None:
    storage = _CountingStorage()
    job = task("jobs.ping", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(storage))
    result = await runtime.trigger(job, {})
    assert len(result.published) == 1
    assert storage.claims == 0
    (row,) = await outbox_rows(runtime, result.run.id)
    assert row.status is OutboxMessageStatus.PUBLISHED
    assert [m.run_id for m in published(runtime)] == [result.run.id]


async def test_an_adapter_that_ignores_the_flag_is_still_published_at_once(harness: Harness) -> None:
    storage = _StorageWithoutClaimOutbox()
    job = task("jobs.ping", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(storage))
    result = await runtime.trigger(job, {})
    assert len(result.published) == 1
    assert storage.claims == 1
    (row,) = await outbox_rows(runtime, result.run.id)
    assert row.status is OutboxMessageStatus.PUBLISHED
    many = await runtime.trigger_many(job, [{}, {}, {}])
    assert all(len(item.published) == 1 for item in many if not isinstance(item, Exception))
    assert storage.claims == 2  # one claim for the whole batch
    rows = await outbox_rows(runtime)
    assert {r.status for r in rows} == {OutboxMessageStatus.PUBLISHED}
    assert len(published(runtime)) == 4


async def test_a_future_run_costs_no_claim_and_stays_pending(
    harness: Harness, clock: ControlledClock
) -> None:
    storage = _StorageWithoutClaimOutbox()
    job = task("jobs.later", run=noop)
    runtime = harness.runtime([job], lane=lane_with_storage(storage))
    result = await runtime.trigger(job, {}, run_at=clock.now() + timedelta(minutes=5))
    assert result.published == ()
    assert storage.claims == 0
    (row,) = await outbox_rows(runtime, result.run.id)
    assert row.status is OutboxMessageStatus.PENDING
    assert published(runtime) == ()
