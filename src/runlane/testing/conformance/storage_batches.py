"""Storage conformance: ``append_many_run_events``, many independent appends in one call.

Each item keeps every rule of a single append and succeeds or fails on its own; results come back
in input order; only ``storage_conflict`` is returned in a slot, anything else fails the call.
"""

import asyncio
from datetime import timedelta
from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.run_events import RunEvent
from runlane.domain.run_record import RunRecord
from runlane.domain.schedules import occurrence_id
from runlane.domain.values import Environment, RunSource
from runlane.domain.vocabulary import (
    ErrorCode,
    OutboxMessageStatus,
    RunEventType,
    RunSourceType,
    RunStatus,
    StorageConflictKind,
)
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    AppendRunEvents,
    AppendRunEventsResult,
    ScheduleOccurrenceClaim,
)
from runlane.testing.conformance.storage_kit import StorageKit
from runlane.testing.run_builders import (
    TEST_TASK_ID,
    create_queued_run_data,
    delivery_requested_event,
    lease_claimed_event,
    next_run_data,
    succeeded_event,
)


async def _batch(
    kit: StorageKit, *commands: AppendRunEvents
) -> tuple[AppendRunEventsResult | RunlaneError, ...]:
    result = await kit.storage.append_many_run_events(
        AppendManyRunEvents(environment=kit.environment, commands=commands)
    )
    assert len(result.results) == len(commands), "one result per item, in input order"
    return result.results


def _ok(result: AppendRunEventsResult | RunlaneError) -> AppendRunEventsResult:
    assert isinstance(result, AppendRunEventsResult), f"expected a committed append, got {result!r}"
    return result


def _conflict(result: AppendRunEventsResult | RunlaneError, kind: StorageConflictKind) -> RunlaneError:
    assert isinstance(result, RunlaneError), f"expected a {kind.value} conflict, got {result!r}"
    assert result.code is ErrorCode.STORAGE_CONFLICT
    assert result.conflict_kind is kind
    assert result.retryable is True
    return result


def _append(kit: StorageKit, run: RunRecord, *events: RunEvent, limit: int | None = None) -> AppendRunEvents:
    return next_run_data(run, *events).append_command(kit.now, concurrency_limit=limit)


def _claim(
    kit: StorageKit, run: RunRecord, worker_id: str = "worker_a", limit: int | None = None
) -> AppendRunEvents:
    return _append(kit, run, lease_claimed_event(run, now=kit.now, worker_id=worker_id), limit=limit)


def _create(kit: StorageKit, run_id: str | None = None, **options: Any) -> AppendRunEvents:
    data = create_queued_run_data(run_id or kit.new_id(), now=kit.now, environment=kit.environment, **options)
    return data.append_command(kit.now)


class StorageBatchTests:
    async def test_an_empty_batch_has_no_results(self, kit: StorageKit) -> None:
        assert await _batch(kit) == ()

    async def test_winners_commit_exactly_and_sequence_losers_write_nothing(self, kit: StorageKit) -> None:
        runs = [(await kit.create()).run for _ in range(4)]
        moved = await kit.claim(
            runs[1], worker_id="someone_else"
        )  # runs[1] is no longer at the stale sequence
        kit.clock.advance("1s")
        results = await _batch(
            kit,
            _claim(kit, runs[0]),
            _claim(kit, runs[1]),
            _claim(kit, runs[2]),
            _claim(kit, runs[3]),
        )
        for index in (0, 2, 3):
            won = _ok(results[index])
            assert won.run.status is RunStatus.RUNNING
            assert won.run.event_sequence == 3
            assert [event.sequence for event in won.events] == [3]
            assert await kit.get(won.run.id) == won.run
            assert (await kit.events(won.run.id))[-1:] == won.events
        lost = _conflict(results[1], StorageConflictKind.SEQUENCE)
        assert lost.meta is not None
        assert lost.meta.get("run_id") == runs[1].id
        assert await kit.get(runs[1].id) == moved, "the loser wrote nothing"
        assert [event.sequence for event in await kit.events(runs[1].id)] == [1, 2, 3]

    async def test_a_stale_item_for_a_missing_run_is_a_sequence_conflict(self, kit: StorageKit) -> None:
        ghost = create_queued_run_data(kit.new_id(), now=kit.now, environment=kit.environment).run
        real = (await kit.create()).run
        results = await _batch(kit, _claim(kit, ghost), _claim(kit, real))
        _conflict(results[0], StorageConflictKind.SEQUENCE)
        assert _ok(results[1]).run.status is RunStatus.RUNNING
        assert await kit.get(ghost.id) is None
        assert await kit.events(ghost.id) == ()

    async def test_event_order_sequences_and_records_are_exact(self, kit: StorageKit) -> None:
        first, second = (await kit.create()).run, (await kit.create()).run
        kit.clock.advance("2s")
        claimed = next_run_data(first, lease_claimed_event(first, now=kit.now))
        finished = next_run_data(claimed.run, succeeded_event(claimed.run, now=kit.now))
        two_events = _append(
            kit, first, lease_claimed_event(first, now=kit.now), succeeded_event(claimed.run, now=kit.now)
        )
        results = await _batch(kit, two_events, _claim(kit, second))
        done = _ok(results[0])
        assert done.run == finished.run
        assert [event.sequence for event in done.events] == [3, 4]
        assert [event.type for event in done.events] == [RunEventType.LEASE_CLAIMED, RunEventType.SUCCEEDED]
        for given, stored in zip(two_events.events, done.events, strict=True):
            assert stored.type is given.type
            assert stored.occurred_at == given.occurred_at
            assert stored.run_id == given.run_id
        assert (await kit.events(first.id))[2:] == done.events
        other = _ok(results[1])
        assert [event.sequence for event in other.events] == [3]
        ids = [event.id for result in (done, other) for event in result.events]
        assert len(set(ids)) == len(ids) == 3

    async def test_items_for_one_run_apply_in_input_order(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        claim = _claim(kit, run)
        after_claim = claim.run
        finish = _append(kit, after_claim, succeeded_event(after_claim, now=kit.now))
        stale = _claim(kit, run, worker_id="worker_b")  # same expected sequence as ``claim``
        results = await _batch(kit, claim, finish, stale)
        assert _ok(results[0]).run == after_claim
        assert _ok(results[1]).run.status is RunStatus.SUCCEEDED
        _conflict(results[2], StorageConflictKind.SEQUENCE)
        stored = await kit.require(run.id)
        assert stored.status is RunStatus.SUCCEEDED
        assert [event.type for event in await kit.events(run.id)] == [
            RunEventType.CREATED,
            RunEventType.DELIVERY_REQUESTED,
            RunEventType.LEASE_CLAIMED,
            RunEventType.SUCCEEDED,
        ]

    # -- creates --------------------------------------------------------------------------------

    async def test_creates_in_one_batch_converge_on_one_idempotency_owner(self, kit: StorageKit) -> None:
        first, second, plain = (
            _create(kit, idempotency_key="order-7"),
            _create(kit, idempotency_key="order-7"),
            _create(kit),
        )
        results = await _batch(kit, first, second, plain)
        owner = _ok(results[0])
        assert owner.returned_existing is False
        assert owner.run == first.run
        converged = _ok(results[1])
        assert converged.returned_existing is True
        assert converged.run == owner.run
        assert converged.events == ()
        assert converged.outbox_message_ids == ()
        assert _ok(results[2]).run == plain.run
        assert await kit.get(second.run_id) is None
        assert {run.id for run in await kit.all_runs()} == {first.run_id, plain.run_id}
        assert len(await kit.outbox()) == 2

    async def test_a_batch_create_meets_an_existing_owner(self, kit: StorageKit) -> None:
        owner = (await kit.create(singleton_key="nightly")).run
        late = _create(kit, singleton_key="nightly")
        results = await _batch(kit, _create(kit), late)
        assert _ok(results[1]).returned_existing is True
        assert _ok(results[1]).run == owner
        assert await kit.get(late.run_id) is None

    async def test_a_create_of_an_existing_run_is_a_sequence_conflict_in_its_slot(
        self, kit: StorageKit
    ) -> None:
        existing = await kit.create()
        duplicate = _create(kit, existing.run.id, payload={"other": True})
        fresh = _create(kit)
        results = await _batch(kit, duplicate, fresh)
        _conflict(results[0], StorageConflictKind.SEQUENCE)
        assert _ok(results[1]).run == fresh.run
        assert await kit.get(existing.run.id) == existing.run
        assert await kit.events(existing.run.id) == existing.events
        assert len(await kit.outbox(existing.run.id)) == 1

    async def test_a_claimed_occurrence_conflicts_in_its_slot_only(self, kit: StorageKit) -> None:
        fire_time = kit.now - timedelta(minutes=1)
        occurrence = occurrence_id("sched.batch", fire_time)
        claim = ScheduleOccurrenceClaim(
            schedule_id="sched.batch", occurrence_id=occurrence, fire_time=fire_time, task_id=TEST_TASK_ID
        )

        def materialize() -> AppendRunEvents:
            data = create_queued_run_data(
                kit.new_id(),
                now=kit.now,
                environment=kit.environment,
                source=RunSource(
                    type=RunSourceType.SCHEDULE, schedule_id="sched.batch", occurrence_id=occurrence
                ),
            )
            return data.append_command(kit.now, schedule_occurrence=claim)

        first, second, plain = materialize(), materialize(), _create(kit)
        results = await _batch(kit, first, second, plain)
        assert _ok(results[0]).run == first.run
        _conflict(results[1], StorageConflictKind.SCHEDULE_OCCURRENCE)
        assert _ok(results[2]).run == plain.run
        assert await kit.get(second.run_id) is None

    async def test_a_full_bounded_queue_conflicts_in_its_slot_only(self, kit: StorageKit) -> None:
        busy, waiting, elsewhere = (
            (await kit.create(queue="bounded")).run,
            (await kit.create(queue="bounded")).run,
            (await kit.create(queue="other")).run,
        )
        await kit.claim(busy, concurrency_limit=1)
        results = await _batch(kit, _claim(kit, waiting, limit=1), _claim(kit, elsewhere, limit=1))
        _conflict(results[0], StorageConflictKind.QUEUE_CAPACITY)
        assert _ok(results[1]).run.status is RunStatus.RUNNING
        assert await kit.get(waiting.id) == waiting

    # -- outbox ---------------------------------------------------------------------------------

    async def test_delivery_requests_in_a_batch_derive_one_outbox_row_each(self, kit: StorageKit) -> None:
        existing = (await kit.create(with_delivery=False)).run
        stale = (await kit.create(with_delivery=False)).run
        await kit.claim(stale)
        kit.clock.advance("1s")
        created = _create(kit)
        requested = _append(kit, existing, delivery_requested_event(existing, now=kit.now))
        lost = _append(kit, stale, delivery_requested_event(stale, now=kit.now))
        results = await _batch(kit, created, requested, lost)
        rows = {row.id: row for row in await kit.outbox()}
        for index, run_id in ((0, created.run_id), (1, existing.id)):
            result = _ok(results[index])
            assert len(result.outbox_message_ids) == 1
            row = rows[result.outbox_message_ids[0]]
            assert row.run_id == run_id
            assert row.status is OutboxMessageStatus.PENDING
            assert row.message.run_id == run_id
            assert row.available_at == kit.now
        _conflict(results[2], StorageConflictKind.SEQUENCE)
        assert await kit.outbox(stale.id) == ()
        assert len(rows) == 2

    # -- the call as a whole ---------------------------------------------------------------------

    async def test_an_item_of_another_environment_fails_the_call_and_writes_nothing(
        self, kit: StorageKit
    ) -> None:
        good = _create(kit)
        foreign = create_queued_run_data(
            kit.new_id(), now=kit.now, environment=Environment(kit.environment.name + "_x")
        ).append_command(kit.now)
        with pytest.raises(RunlaneError) as info:
            await _batch(kit, good, foreign)
        assert info.value.code is not ErrorCode.STORAGE_CONFLICT
        assert await kit.get(good.run_id) is None

    async def test_concurrent_batches_finish_each_run_exactly_once(self, kit: StorageKit) -> None:
        runs = [await kit.claim((await kit.create()).run) for _ in range(20)]
        kit.clock.advance("1s")

        def finish_all(order: list[RunRecord]) -> AppendManyRunEvents:
            return AppendManyRunEvents(
                environment=kit.environment,
                commands=tuple(_append(kit, run, succeeded_event(run, now=kit.now)) for run in order),
            )

        batches = [finish_all(runs), finish_all(runs[::-1]), finish_all(runs[7:] + runs[:7])]
        outcomes = await asyncio.gather(*(kit.storage.append_many_run_events(b) for b in batches))
        wins: dict[str, int] = {run.id: 0 for run in runs}
        for outcome in outcomes:
            for result in outcome.results:
                if isinstance(result, AppendRunEventsResult):
                    wins[result.run.id] += 1
                else:
                    _conflict(result, StorageConflictKind.SEQUENCE)
        assert set(wins.values()) == {1}
        for run in runs:
            types = [event.type for event in await kit.events(run.id)]
            assert types.count(RunEventType.SUCCEEDED) == 1
