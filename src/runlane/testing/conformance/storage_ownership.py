"""Storage conformance: idempotency and singleton ownership, schedule occurrence claims (4-6, 10)."""

import asyncio
from datetime import datetime, timedelta

from runlane.domain.errors import RunlaneError
from runlane.domain.schedules import occurrence_id
from runlane.domain.values import Environment, RunSource
from runlane.domain.vocabulary import RunSourceType, RunStatus, StorageConflictKind
from runlane.ports.storage_commands import (
    AppendRunEventsResult,
    GetRunByIdempotencyKey,
    PruneRuns,
    ResetIdempotencyKey,
    ScheduleOccurrenceClaim,
)
from runlane.testing.conformance.storage_kit import StorageKit, expect_conflict
from runlane.testing.run_builders import TEST_TASK_ID, create_queued_run_data


async def _owner(kit: StorageKit, key: str, task_id: str = TEST_TASK_ID) -> object:
    return await kit.storage.get_run_by_idempotency_key(
        GetRunByIdempotencyKey(environment=kit.environment, task_id=task_id, key=key, now=kit.now)
    )


async def _materialize(
    kit: StorageKit, schedule_id: str, fire_time: datetime, run_id: str | None = None
) -> AppendRunEventsResult:
    occurrence = occurrence_id(schedule_id, fire_time)
    data = create_queued_run_data(
        run_id or kit.new_id(),
        now=kit.now,
        environment=kit.environment,
        source=RunSource(type=RunSourceType.SCHEDULE, schedule_id=schedule_id, occurrence_id=occurrence),
    )
    claim = ScheduleOccurrenceClaim(
        schedule_id=schedule_id, occurrence_id=occurrence, fire_time=fire_time, task_id=TEST_TASK_ID
    )
    return await kit.storage.append_run_events(data.append_command(kit.now, schedule_occurrence=claim))


class StorageOwnershipTests:
    # -- 4. idempotency convergence -----------------------------------------------------------

    async def test_live_idempotency_owner_is_returned_and_nothing_is_written(self, kit: StorageKit) -> None:
        first = await kit.create(idempotency_key="order-1")
        second_id = kit.new_id()
        second = await kit.create(second_id, idempotency_key="order-1")
        assert second.returned_existing is True
        assert second.run == first.run
        assert second.events == ()
        assert second.outbox_message_ids == ()
        assert await kit.get(second_id) is None
        assert len(await kit.events(first.run.id)) == 2
        assert len(await kit.outbox()) == 1

    async def test_fifty_concurrent_creates_with_one_key_converge_on_one_owner(self, kit: StorageKit) -> None:
        results = await asyncio.gather(*(kit.create(idempotency_key="same-key") for _ in range(50)))
        created = [r for r in results if not r.returned_existing]
        existing = [r for r in results if r.returned_existing]
        assert len(created) == 1
        assert len(existing) == 49
        owner_id = created[0].run.id
        assert {r.run.id for r in existing} == {owner_id}
        assert [run.id for run in await kit.all_runs()] == [owner_id]
        assert len(await kit.outbox()) == 1

    async def test_idempotency_keys_are_scoped_by_task(self, kit: StorageKit) -> None:
        a = await kit.create(idempotency_key="k", task_id="task.a")
        b = await kit.create(idempotency_key="k", task_id="task.b")
        assert not a.returned_existing
        assert not b.returned_existing
        assert a.run.id != b.run.id

    async def test_idempotency_keys_are_scoped_by_environment(self, kit: StorageKit) -> None:
        first = await kit.create(idempotency_key="k")
        other = Environment(kit.environment.name + "_other")
        data = create_queued_run_data(kit.new_id(), now=kit.now, environment=other, idempotency_key="k")
        second = await kit.storage.append_run_events(data.append_command(kit.now))
        assert not second.returned_existing
        assert second.run.id != first.run.id

    # -- 5. retention -------------------------------------------------------------------------

    async def test_succeeded_owner_is_retained_until_its_ttl_expires(self, kit: StorageKit) -> None:
        created_at = kit.now
        owner = (await kit.create(idempotency_key="k", idempotency_key_ttl="1h")).run
        kit.clock.advance("10m")
        await kit.finish(owner, RunStatus.SUCCEEDED)
        kit.clock.set(created_at + timedelta(minutes=59, seconds=59, milliseconds=999))
        retained = await kit.create(idempotency_key="k", idempotency_key_ttl="1h")
        assert retained.returned_existing
        assert retained.run.id == owner.id
        kit.clock.set(created_at + timedelta(hours=1))
        fresh = await kit.create(idempotency_key="k", idempotency_key_ttl="1h")
        assert not fresh.returned_existing
        assert fresh.run.id != owner.id

    async def test_cancelled_owner_is_retained_until_its_ttl_expires(self, kit: StorageKit) -> None:
        owner = (await kit.create(idempotency_key="k", idempotency_key_ttl="5m")).run
        await kit.finish(owner, RunStatus.CANCELLED)
        assert (await kit.create(idempotency_key="k", idempotency_key_ttl="5m")).returned_existing
        kit.clock.advance("5m")
        assert not (await kit.create(idempotency_key="k", idempotency_key_ttl="5m")).returned_existing

    async def test_failed_owner_releases_its_key_at_once(self, kit: StorageKit) -> None:
        owner = (await kit.create(idempotency_key="k", idempotency_key_ttl="1h")).run
        await kit.finish(owner, RunStatus.FAILED)
        fresh = await kit.create(idempotency_key="k", idempotency_key_ttl="1h")
        assert not fresh.returned_existing
        assert fresh.run.id != owner.id

    async def test_active_ttl_releases_the_key_at_any_terminal_status(self, kit: StorageKit) -> None:
        for status in (RunStatus.SUCCEEDED, RunStatus.CANCELLED):
            owner = (await kit.create(idempotency_key=f"k-{status}", idempotency_key_ttl="active")).run
            assert (
                await kit.create(idempotency_key=f"k-{status}", idempotency_key_ttl="active")
            ).returned_existing
            await kit.finish(owner, status)
            assert not (
                await kit.create(idempotency_key=f"k-{status}", idempotency_key_ttl="active")
            ).returned_existing

    async def test_default_ttl_retains_a_succeeded_owner_for_thirty_days(self, kit: StorageKit) -> None:
        created_at = kit.now
        owner = (await kit.create(idempotency_key="k")).run
        await kit.finish(owner, RunStatus.SUCCEEDED)
        kit.clock.set(created_at + timedelta(days=29))
        assert (await kit.create(idempotency_key="k")).returned_existing
        kit.clock.set(created_at + timedelta(days=30))
        assert not (await kit.create(idempotency_key="k")).returned_existing

    async def test_get_run_by_idempotency_key_follows_the_retention_rules(self, kit: StorageKit) -> None:
        assert await _owner(kit, "unknown") is None
        active = (await kit.create(idempotency_key="active", idempotency_key_ttl="1h")).run
        assert await _owner(kit, "active") == active
        assert await _owner(kit, "active", task_id="task.other") is None
        done = await kit.finish(active, RunStatus.SUCCEEDED)
        assert await _owner(kit, "active") == done
        failed = (await kit.create(idempotency_key="failed")).run
        await kit.finish(failed, RunStatus.FAILED)
        assert await _owner(kit, "failed") is None
        kit.clock.advance("1h")
        assert await _owner(kit, "active") is None

    async def test_reset_clears_a_retained_owner(self, kit: StorageKit) -> None:
        owner = (await kit.create(idempotency_key="k")).run
        await kit.finish(owner, RunStatus.SUCCEEDED)
        reset = ResetIdempotencyKey(environment=kit.environment, task_id=TEST_TASK_ID, key="k", now=kit.now)
        assert await kit.storage.reset_idempotency_key(reset) is True
        assert await _owner(kit, "k") is None
        fresh = await kit.create(idempotency_key="k")
        assert not fresh.returned_existing
        assert await kit.get(owner.id) is not None, "reset must not delete the run"

    async def test_reset_of_an_active_owner_conflicts(self, kit: StorageKit) -> None:
        owner = (await kit.create(idempotency_key="k")).run
        reset = ResetIdempotencyKey(environment=kit.environment, task_id=TEST_TASK_ID, key="k", now=kit.now)
        await expect_conflict(kit.storage.reset_idempotency_key(reset), StorageConflictKind.IDEMPOTENCY_OWNER)
        assert await _owner(kit, "k") == owner

    async def test_reset_of_an_unknown_key_is_a_no_op(self, kit: StorageKit) -> None:
        reset = ResetIdempotencyKey(
            environment=kit.environment, task_id=TEST_TASK_ID, key="nope", now=kit.now
        )
        assert await kit.storage.reset_idempotency_key(reset) is False

    # -- 6. singleton -------------------------------------------------------------------------

    async def test_second_active_singleton_converges_on_the_owner(self, kit: StorageKit) -> None:
        owner = (await kit.create(singleton_key="nightly")).run
        second_id = kit.new_id()
        second = await kit.create(second_id, singleton_key="nightly")
        assert second.returned_existing
        assert second.run == owner
        assert await kit.get(second_id) is None

    async def test_singleton_accepts_a_new_owner_once_the_old_one_is_terminal(self, kit: StorageKit) -> None:
        owner = (await kit.create(singleton_key="nightly")).run
        running = await kit.claim(owner)
        assert (await kit.create(singleton_key="nightly")).run.id == owner.id
        await kit.finish(running, RunStatus.SUCCEEDED)
        fresh = await kit.create(singleton_key="nightly")
        assert not fresh.returned_existing
        assert fresh.run.id != owner.id

    async def test_concurrent_singleton_creates_have_one_owner(self, kit: StorageKit) -> None:
        results = await asyncio.gather(*(kit.create(singleton_key="one") for _ in range(20)))
        assert sum(not r.returned_existing for r in results) == 1
        assert len({r.run.id for r in results}) == 1

    async def test_singleton_keys_are_scoped_by_task(self, kit: StorageKit) -> None:
        a = await kit.create(singleton_key="s", task_id="task.a")
        b = await kit.create(singleton_key="s", task_id="task.b")
        assert not b.returned_existing
        assert a.run.id != b.run.id

    # -- 10. schedule occurrences -------------------------------------------------------------

    async def test_a_schedule_occurrence_is_claimed_exactly_once(self, kit: StorageKit) -> None:
        fire = kit.now
        first = await _materialize(kit, "sched.daily", fire)
        second_id = kit.new_id()
        await expect_conflict(
            _materialize(kit, "sched.daily", fire, second_id), StorageConflictKind.SCHEDULE_OCCURRENCE
        )
        assert await kit.get(second_id) is None
        assert [run.id for run in await kit.all_runs()] == [first.run.id]
        assert len(await kit.outbox()) == 1

    async def test_concurrent_occurrence_claims_have_one_winner(self, kit: StorageKit) -> None:
        fire = kit.now
        results = await asyncio.gather(
            *(_materialize(kit, "sched.x", fire) for _ in range(10)), return_exceptions=True
        )
        winners = [r for r in results if isinstance(r, AppendRunEventsResult)]
        losers = [r for r in results if isinstance(r, RunlaneError)]
        assert len(winners) == 1
        assert len(losers) == 9
        assert all(e.conflict_kind is StorageConflictKind.SCHEDULE_OCCURRENCE for e in losers)
        assert len(await kit.all_runs()) == 1

    async def test_distinct_fire_times_and_environments_each_materialize(self, kit: StorageKit) -> None:
        fire = kit.now
        await _materialize(kit, "sched.y", fire)
        await _materialize(kit, "sched.y", fire + timedelta(minutes=1))
        await _materialize(kit, "sched.z", fire)
        other = StorageKit(kit.storage, Environment(kit.environment.name + "_other"), kit.clock)
        await _materialize(other, "sched.y", fire)
        assert len(await kit.all_runs()) == 3
        assert len(await other.all_runs()) == 1

    async def test_an_occurrence_stays_claimed_after_its_run_is_pruned(self, kit: StorageKit) -> None:
        fire = kit.now
        run = (await _materialize(kit, "sched.once", fire)).run
        await kit.finish(run, RunStatus.SUCCEEDED)
        kit.clock.advance("1d")
        pruned = await kit.storage.prune_runs(
            PruneRuns(
                environment=kit.environment, older_than=kit.now, statuses=(RunStatus.SUCCEEDED,), limit=10
            )
        )
        assert pruned.deleted == 1
        await expect_conflict(_materialize(kit, "sched.once", fire), StorageConflictKind.SCHEDULE_OCCURRENCE)
