"""Storage conformance: lease claims, heartbeats, expired leases and due-run scans (8, 9)."""

import asyncio
import dataclasses
from datetime import timedelta

from runlane.domain.errors import RunlaneError
from runlane.domain.run_record import RunRecord
from runlane.domain.timestamps import add_ms
from runlane.domain.values import Environment
from runlane.domain.vocabulary import (
    RUNNABLE_RUN_STATUSES,
    ErrorCode,
    RunEventType,
    RunStatus,
    StorageConflictKind,
)
from runlane.ports.storage_commands import (
    AppendPlan,
    ClaimDueRuns,
    HeartbeatRunLease,
    ListDueRuns,
    ListExpiredLeases,
)
from runlane.testing.conformance.storage_kit import StorageKit, expect_conflict, expect_error
from runlane.testing.run_builders import (
    cancellation_requested_event,
    lease_expired_event,
    released_event,
)


def _heartbeat(kit: StorageKit, run: RunRecord, worker_id: str, expected: int) -> HeartbeatRunLease:
    """Extend ``run``'s lease to one minute from now on behalf of ``worker_id``."""
    expires_at = add_ms(kit.now, 60_000)
    return HeartbeatRunLease(
        environment=kit.environment,
        run_id=run.id,
        worker_id=worker_id,
        expected_sequence=expected,
        heartbeat_at=kit.now,
        expires_at=expires_at,
    )


def _due(
    kit: StorageKit,
    *,
    statuses: tuple[RunStatus, ...] = tuple(RUNNABLE_RUN_STATUSES),
    limit: int = 100,
    queues: tuple[str, ...] | None = None,
    exclude_queues: tuple[str, ...] = (),
) -> ListDueRuns:
    return ListDueRuns(
        environment=kit.environment,
        now=kit.now,
        limit=limit,
        statuses=statuses,
        queues=queues,
        exclude_queues=exclude_queues,
    )


class StorageLeaseTests:
    # -- 8. leases ----------------------------------------------------------------------------

    async def test_claim_due_runs_leases_a_due_run_with_the_plans_events(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        (claimed,) = await kit.storage.claim_due_runs(kit.claim_due(worker_id="worker_x"))
        assert claimed.run.id == run.id
        assert claimed.run.status is RunStatus.RUNNING
        assert claimed.run.lease is not None
        assert claimed.run.lease.worker_id == "worker_x"
        assert [(e.type, e.sequence) for e in claimed.events] == [(RunEventType.LEASE_CLAIMED, 3)]
        assert await kit.require(run.id) == claimed.run
        assert (await kit.events(run.id))[-1] == claimed.events[0]

    async def test_a_leased_run_is_not_claimed_again(self, kit: StorageKit) -> None:
        await kit.create()
        assert len(await kit.storage.claim_due_runs(kit.claim_due())) == 1
        assert await kit.storage.claim_due_runs(kit.claim_due(worker_id="worker_b")) == ()

    async def test_concurrent_claimers_never_get_the_same_run(self, kit: StorageKit) -> None:
        created = {(await kit.create()).run.id for _ in range(30)}
        batches = await asyncio.gather(
            *(kit.storage.claim_due_runs(kit.claim_due(5, worker_id=f"worker_{i}")) for i in range(8))
        )
        claimed = [item.run.id for batch in batches for item in batch]
        assert len(claimed) == len(set(claimed)) == 30
        assert set(claimed) == created
        for batch in batches:
            for item in batch:
                assert len(await kit.events(item.run.id)) == 3

    async def test_claim_order_is_availability_then_id_within_the_limit(self, kit: StorageKit) -> None:
        base = kit.new_id()
        start = kit.now
        await kit.create(f"{base}_3", now=start)
        await kit.create(f"{base}_2", now=start + timedelta(seconds=1))
        await kit.create(f"{base}_1", now=start + timedelta(seconds=1))
        kit.clock.set(start + timedelta(seconds=2))
        claimed = await kit.storage.claim_due_runs(kit.claim_due(2))
        assert [item.run.id for item in claimed] == [f"{base}_3", f"{base}_1"]

    async def test_future_runs_are_not_claimed_until_due(self, kit: StorageKit) -> None:
        run_at = kit.now + timedelta(minutes=1)
        run = await kit.create_scheduled(run_at)
        assert await kit.storage.claim_due_runs(kit.claim_due()) == ()
        kit.clock.set(run_at)
        (claimed,) = await kit.storage.claim_due_runs(kit.claim_due())
        assert claimed.run.id == run.id

    async def test_a_plan_returning_none_skips_the_run(self, kit: StorageKit) -> None:
        skipped = (await kit.create(now=kit.now - timedelta(seconds=1))).run
        taken = (await kit.create()).run
        lease = kit.lease_plan()

        def plan(run: RunRecord) -> AppendPlan | None:
            return None if run.id == skipped.id else lease(run)

        command = ClaimDueRuns(environment=kit.environment, now=kit.now, limit=10, plan=plan)
        assert [item.run.id for item in await kit.storage.claim_due_runs(command)] == [taken.id]
        assert (await kit.require(skipped.id)).status is RunStatus.QUEUED

    async def test_a_plan_with_a_wrong_sequence_is_rejected_and_nothing_is_written(
        self, kit: StorageKit
    ) -> None:
        first = (await kit.create(now=kit.now - timedelta(seconds=1))).run
        second = (await kit.create()).run
        lease = kit.lease_plan()

        def plan(run: RunRecord) -> AppendPlan:
            good = lease(run)
            assert good is not None
            if run.id == second.id:
                return AppendPlan(events=good.events, run=dataclasses.replace(good.run, event_sequence=99))
            return good

        command = ClaimDueRuns(environment=kit.environment, now=kit.now, limit=10, plan=plan)
        await expect_error(kit.storage.claim_due_runs(command), ErrorCode.INVARIANT_VIOLATION)
        assert (await kit.require(second.id)).status is RunStatus.QUEUED
        assert len(await kit.events(second.id)) == 2
        assert (await kit.require(first.id)).status is RunStatus.QUEUED, "the batch commits all or nothing"

    async def test_heartbeat_by_the_holder_extends_the_lease(self, kit: StorageKit) -> None:
        run = await kit.claim((await kit.create()).run, worker_id="worker_a", lease_duration="30s")
        kit.clock.advance("10s")
        extended = await kit.storage.heartbeat_run_lease(_heartbeat(kit, run, "worker_a", run.event_sequence))
        assert extended.lease is not None
        assert run.lease is not None
        assert extended.lease.expires_at == add_ms(kit.now, 60_000)
        assert extended.lease.heartbeat_at == kit.now
        assert extended.lease.claimed_at == run.lease.claimed_at
        assert extended.event_sequence == run.event_sequence
        assert await kit.require(run.id) == extended

    async def test_heartbeat_by_another_worker_is_a_lease_conflict(self, kit: StorageKit) -> None:
        run = await kit.claim((await kit.create()).run, worker_id="worker_a")
        await expect_conflict(
            kit.storage.heartbeat_run_lease(_heartbeat(kit, run, "worker_b", run.event_sequence)),
            StorageConflictKind.LEASE,
        )
        assert await kit.require(run.id) == run

    async def test_heartbeat_after_the_run_changed_is_a_sequence_conflict(self, kit: StorageKit) -> None:
        run = await kit.claim((await kit.create()).run, worker_id="worker_a")
        requested = (await kit.append(run, cancellation_requested_event(run, now=kit.now))).run
        await expect_conflict(
            kit.storage.heartbeat_run_lease(_heartbeat(kit, run, "worker_a", run.event_sequence)),
            StorageConflictKind.SEQUENCE,
        )
        assert await kit.require(run.id) == requested

    async def test_heartbeat_of_a_run_without_a_lease_is_a_lease_conflict(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        await expect_conflict(
            kit.storage.heartbeat_run_lease(_heartbeat(kit, run, "worker_a", run.event_sequence)),
            StorageConflictKind.LEASE,
        )

    async def test_a_stale_holder_is_fenced_off_after_another_claim(self, kit: StorageKit) -> None:
        run = await kit.claim((await kit.create()).run, worker_id="worker_a", lease_duration="30s")
        kit.clock.advance("31s")
        recovered = (await kit.append(run, lease_expired_event(run, now=kit.now, run_at=kit.now))).run
        assert recovered.status is RunStatus.RETRYING
        reclaimed = await kit.claim(recovered, worker_id="worker_b")
        await expect_conflict(
            kit.storage.heartbeat_run_lease(_heartbeat(kit, run, "worker_a", run.event_sequence)),
            StorageConflictKind.SEQUENCE,
        )
        await expect_conflict(
            kit.storage.heartbeat_run_lease(_heartbeat(kit, run, "worker_a", reclaimed.event_sequence)),
            StorageConflictKind.LEASE,
        )
        assert await kit.require(run.id) == reclaimed

    async def test_expired_leases_are_listed_for_recovery(self, kit: StorageKit) -> None:
        short = await kit.claim((await kit.create()).run, lease_duration="10s")
        await kit.claim((await kit.create()).run, lease_duration="60s")
        cancelling = await kit.claim((await kit.create()).run, lease_duration="10s")
        cancelling = (await kit.append(cancelling, cancellation_requested_event(cancelling, now=kit.now))).run
        await kit.create()
        query = ListExpiredLeases(environment=kit.environment, now=kit.now + timedelta(seconds=9), limit=10)
        assert await kit.storage.list_expired_leases(query) == ()
        kit.clock.advance("10s")
        expired = await kit.storage.list_expired_leases(
            ListExpiredLeases(environment=kit.environment, now=kit.now, limit=10)
        )
        assert sorted(run.id for run in expired) == sorted([short.id, cancelling.id])
        limited = await kit.storage.list_expired_leases(
            ListExpiredLeases(environment=kit.environment, now=kit.now, limit=1)
        )
        assert len(limited) == 1
        other = Environment(kit.environment.name + "_other")
        assert (
            await kit.storage.list_expired_leases(ListExpiredLeases(environment=other, now=kit.now, limit=10))
            == ()
        )

    # -- 9. due-run scans ---------------------------------------------------------------------

    async def test_list_due_runs_returns_only_due_runs_in_the_given_statuses(self, kit: StorageKit) -> None:
        queued = (await kit.create()).run
        future = await kit.create_scheduled(kit.now + timedelta(minutes=5))
        await kit.claim((await kit.create()).run)
        await kit.finish((await kit.create()).run, RunStatus.SUCCEEDED)
        leased = await kit.claim((await kit.create()).run)
        released = (await kit.append(leased, released_event(leased, now=kit.now, run_at=kit.now))).run
        due = await kit.storage.list_due_runs(_due(kit))
        assert sorted(run.id for run in due) == sorted([queued.id, released.id])
        only_released = await kit.storage.list_due_runs(_due(kit, statuses=(RunStatus.RELEASED,)))
        assert [run.id for run in only_released] == [released.id]
        kit.clock.advance("5m")
        assert future.id in {run.id for run in await kit.storage.list_due_runs(_due(kit))}

    async def test_list_due_runs_filters_queues_limits_and_environments(self, kit: StorageKit) -> None:
        a = (await kit.create(queue="alpha")).run
        b = (await kit.create(queue="beta")).run
        assert [run.id for run in await kit.storage.list_due_runs(_due(kit, queues=("alpha",)))] == [a.id]
        assert [run.id for run in await kit.storage.list_due_runs(_due(kit, exclude_queues=("alpha",)))] == [
            b.id
        ]
        assert len(await kit.storage.list_due_runs(_due(kit, limit=1))) == 1
        other = StorageKit(kit.storage, Environment(kit.environment.name + "_other"), kit.clock)
        assert await kit.storage.list_due_runs(_due(other)) == ()

    async def test_claim_due_runs_filters_queues(self, kit: StorageKit) -> None:
        await kit.create(queue="alpha")
        beta = (await kit.create(queue="beta")).run
        claimed = await kit.storage.claim_due_runs(kit.claim_due(queues=("beta",)))
        assert [item.run.id for item in claimed] == [beta.id]

    async def test_claim_due_runs_filters_task_ids(self, kit: StorageKit) -> None:
        await kit.create(task_id="tasks.unknown_here")
        known = (await kit.create(task_id="tasks.known")).run
        claimed = await kit.storage.claim_due_runs(kit.claim_due(task_ids=("tasks.known",)))
        assert [item.run.id for item in claimed] == [known.id]
        assert await kit.storage.claim_due_runs(kit.claim_due(task_ids=())) == ()

    async def test_claim_due_runs_respects_bounded_queue_capacity(self, kit: StorageKit) -> None:
        runs = [(await kit.create(queue="bounded", with_delivery=False)).run for _ in range(3)]
        limits = {"bounded": 1}
        (first,) = await kit.storage.claim_due_runs(kit.claim_due(10, concurrency_limits=limits))
        assert await kit.storage.claim_due_runs(kit.claim_due(10, concurrency_limits=limits)) == ()
        await kit.finish(first.run, RunStatus.SUCCEEDED)
        (second,) = await kit.storage.claim_due_runs(kit.claim_due(10, concurrency_limits=limits))
        assert second.run.id != first.run.id
        assert second.run.id in {run.id for run in runs}

    async def test_capacity_is_counted_per_concurrency_key(self, kit: StorageKit) -> None:
        for key in ("a", "a", "b", "b"):
            await kit.create(queue="bounded", concurrency_key=key, with_delivery=False)
        claimed = await kit.storage.claim_due_runs(kit.claim_due(10, concurrency_limits={"bounded": 1}))
        assert sorted(item.run.concurrency_key or "" for item in claimed) == ["a", "b"]

    async def test_a_lease_append_over_capacity_is_a_queue_capacity_conflict(self, kit: StorageKit) -> None:
        first = (await kit.create(queue="bounded", with_delivery=False)).run
        second = (await kit.create(queue="bounded", with_delivery=False)).run
        await kit.claim(first, concurrency_limit=1)
        await expect_conflict(kit.claim(second, concurrency_limit=1), StorageConflictKind.QUEUE_CAPACITY)
        assert (await kit.require(second.id)).status is RunStatus.QUEUED
        assert len(await kit.events(second.id)) == 1
        assert (await kit.claim(second, concurrency_limit=2)).status is RunStatus.RUNNING

    async def test_concurrent_bounded_claims_never_exceed_the_limit(self, kit: StorageKit) -> None:
        runs = [(await kit.create(queue="bounded", with_delivery=False)).run for _ in range(10)]
        results = await asyncio.gather(
            *(kit.claim(run, worker_id=f"worker_{i}", concurrency_limit=3) for i, run in enumerate(runs)),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, RunRecord)]
        lost = [r for r in results if isinstance(r, RunlaneError)]
        assert len(won) == 3
        assert len(lost) == 7
        assert all(e.conflict_kind is StorageConflictKind.QUEUE_CAPACITY for e in lost)
