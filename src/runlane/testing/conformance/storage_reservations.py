"""Storage conformance: bounded-queue dispatch reservations (11)."""

from datetime import timedelta
from typing import Any

from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import OutboxMessageStatus, RunEventType, RunStatus
from runlane.ports.storage_commands import AppendPlan, ClaimedRun, ReleaseExpiredReservations, ReserveDispatch
from runlane.testing.conformance.storage_kit import StorageKit
from runlane.testing.run_builders import cancelled_event

QUEUE = "bounded"


async def _bounded_runs(kit: StorageKit, count: int, **options: Any) -> list[RunRecord]:
    """Runs the way ``trigger`` writes them on a bounded queue: created, no delivery request yet."""
    return [(await kit.create(queue=QUEUE, with_delivery=False, **options)).run for _ in range(count)]


async def _reserve(
    kit: StorageKit, limit: int, *, timeout_ms: int | None = 60_000, batch: int = 100
) -> tuple[ClaimedRun, ...]:
    return await kit.storage.reserve_dispatch(
        ReserveDispatch(
            environment=kit.environment,
            queue=QUEUE,
            concurrency_limit=limit,
            dispatch_timeout_ms=timeout_ms,
            now=kit.now,
            limit=batch,
            plan=kit.delivery_plan(),
        )
    )


async def _release(kit: StorageKit, limit: int = 100) -> int:
    return await kit.storage.release_expired_reservations(
        ReleaseExpiredReservations(environment=kit.environment, now=kit.now, limit=limit)
    )


class StorageReservationTests:
    async def test_reserve_dispatch_fills_free_slots_and_requests_delivery(self, kit: StorageKit) -> None:
        runs = await _bounded_runs(kit, 5)
        reserved = await _reserve(kit, 2)
        assert len(reserved) == 2
        for item in reserved:
            assert [e.type for e in item.events] == [RunEventType.DELIVERY_REQUESTED]
            assert item.events[0].sequence == 2
            assert item.run.status is RunStatus.QUEUED
            assert await kit.require(item.run.id) == item.run
            (row,) = await kit.outbox(item.run.id)
            assert row.status is OutboxMessageStatus.PENDING
        assert {item.run.id for item in reserved} <= {run.id for run in runs}
        assert len(await kit.outbox()) == 2
        assert await _reserve(kit, 2) == (), "the partition is full"

    async def test_reserve_dispatch_respects_its_batch_limit(self, kit: StorageKit) -> None:
        await _bounded_runs(kit, 4)
        assert len(await _reserve(kit, 10, batch=3)) == 3
        assert len(await _reserve(kit, 10, batch=3)) == 1

    async def test_a_reserved_run_is_not_reserved_twice(self, kit: StorageKit) -> None:
        (run,) = await _bounded_runs(kit, 1)
        assert [item.run.id for item in await _reserve(kit, 5)] == [run.id]
        assert await _reserve(kit, 5) == ()
        assert len(await kit.outbox(run.id)) == 1

    async def test_leased_runs_occupy_slots(self, kit: StorageKit) -> None:
        first, *_ = await _bounded_runs(kit, 4)
        await kit.claim(first, concurrency_limit=2)
        assert len(await _reserve(kit, 2)) == 1

    async def test_capacity_is_reserved_per_concurrency_key(self, kit: StorageKit) -> None:
        await _bounded_runs(kit, 3, concurrency_key="tenant-a")
        await _bounded_runs(kit, 3, concurrency_key="tenant-b")
        reserved = await _reserve(kit, 1)
        assert sorted(item.run.concurrency_key or "" for item in reserved) == ["tenant-a", "tenant-b"]

    async def test_reserve_dispatch_only_takes_due_runs_of_its_queue(self, kit: StorageKit) -> None:
        await kit.create(queue="other", with_delivery=False)
        future_at = kit.now + timedelta(minutes=5)
        await kit.create(queue=QUEUE, with_delivery=False, run_at=future_at)
        assert await _reserve(kit, 5) == ()
        kit.clock.set(future_at)
        assert len(await _reserve(kit, 5)) == 1

    async def test_a_reserved_run_is_claimable_while_the_partition_is_full(self, kit: StorageKit) -> None:
        await _bounded_runs(kit, 2)
        (reserved,) = await _reserve(kit, 1)
        claimed = await kit.storage.claim_due_runs(kit.claim_due(10, concurrency_limits={QUEUE: 1}))
        assert [item.run.id for item in claimed] == [reserved.run.id]
        assert await kit.storage.claim_due_runs(kit.claim_due(10, concurrency_limits={QUEUE: 1})) == ()

    async def test_a_reserved_run_may_take_its_lease_through_append(self, kit: StorageKit) -> None:
        await _bounded_runs(kit, 1)
        (reserved,) = await _reserve(kit, 1)
        claimed = await kit.claim(reserved.run, concurrency_limit=1)
        assert claimed.status is RunStatus.RUNNING

    async def test_the_reservation_turns_into_the_lease_without_double_counting(
        self, kit: StorageKit
    ) -> None:
        await _bounded_runs(kit, 4)
        assert len(await _reserve(kit, 2)) == 2
        claimed = await kit.storage.claim_due_runs(kit.claim_due(10, concurrency_limits={QUEUE: 2}))
        assert len(claimed) == 2
        assert await _reserve(kit, 2) == ()
        await kit.finish(claimed[0].run, RunStatus.SUCCEEDED)
        assert len(await _reserve(kit, 2)) == 1

    async def test_a_reservation_ends_when_its_run_leaves_the_runnable_statuses(
        self, kit: StorageKit
    ) -> None:
        await _bounded_runs(kit, 2)
        (reserved,) = await _reserve(kit, 1)
        await kit.append(reserved.run, cancelled_event(reserved.run, now=kit.now))
        (next_one,) = await _reserve(kit, 1)
        assert next_one.run.id != reserved.run.id

    async def test_expired_reservations_are_released_and_free_capacity(self, kit: StorageKit) -> None:
        await _bounded_runs(kit, 2)
        assert len(await _reserve(kit, 1, timeout_ms=10_000)) == 1
        kit.clock.advance("9999ms")
        assert await _release(kit) == 0
        assert await _reserve(kit, 1, timeout_ms=10_000) == ()
        kit.clock.advance("1ms")
        assert await _release(kit) == 1
        assert await _release(kit) == 0
        assert len(await _reserve(kit, 1, timeout_ms=10_000)) == 1, "the freed slot is reserved again"
        assert await _reserve(kit, 1, timeout_ms=10_000) == ()

    async def test_release_expired_reservations_respects_limit_and_environment(self, kit: StorageKit) -> None:
        await _bounded_runs(kit, 3)
        assert len(await _reserve(kit, 3, timeout_ms=1_000)) == 3
        kit.clock.advance("1s")
        other = StorageKit(kit.storage, Environment(kit.environment.name + "_other"), kit.clock)
        assert await _release(other) == 0
        assert await _release(kit, limit=2) == 2
        assert await _release(kit) == 1

    async def test_reservations_without_a_timeout_never_expire(self, kit: StorageKit) -> None:
        await _bounded_runs(kit, 2)
        assert len(await _reserve(kit, 1, timeout_ms=None)) == 1
        kit.clock.advance("365d")
        assert await _release(kit) == 0
        assert await _reserve(kit, 1, timeout_ms=None) == ()

    async def test_a_plan_returning_none_reserves_nothing(self, kit: StorageKit) -> None:
        await _bounded_runs(kit, 2)

        def skip(run: RunRecord) -> AppendPlan | None:
            return None

        command = ReserveDispatch(
            environment=kit.environment,
            queue=QUEUE,
            concurrency_limit=1,
            dispatch_timeout_ms=None,
            now=kit.now,
            limit=10,
            plan=skip,
        )
        assert await kit.storage.reserve_dispatch(command) == ()
        assert len(await _reserve(kit, 1)) == 1
