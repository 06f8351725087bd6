"""Storage conformance: operator reads with opaque cursors (12) and pruning (13)."""

import base64
import json
from datetime import timedelta
from typing import Any

from runlane.domain.pages import PaginationParams
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import (
    ErrorCode,
    RunSortField,
    RunStatus,
    SortDirection,
)
from runlane.ports.storage_commands import (
    GetRunByIdempotencyKey,
    ListRunEvents,
    ListRuns,
    PruneRuns,
    RunFilter,
)
from runlane.testing.conformance.storage_kit import StorageKit, expect_error
from runlane.testing.run_builders import TEST_TASK_ID

TERMINAL = (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)


def _list(
    kit: StorageKit,
    *,
    limit: int | None = None,
    cursor: str | None = None,
    sort_by: RunSortField = RunSortField.CREATED_AT,
    direction: SortDirection = SortDirection.DESC,
    **filters: Any,
) -> ListRuns:
    return ListRuns(
        filter=RunFilter(environment=kit.environment, **filters),
        pagination=PaginationParams(limit=limit, cursor=cursor),
        sort_by=sort_by,
        sort_direction=direction,
    )


async def _pages(kit: StorageKit, limit: int, **options: Any) -> list[list[RunRecord]]:
    pages: list[list[RunRecord]] = []
    cursor: str | None = None
    for _ in range(1_000):
        page = await kit.storage.list_runs(_list(kit, limit=limit, cursor=cursor, **options))
        pages.append(list(page.data))
        cursor = page.next_cursor
        if cursor is None:
            return pages
    raise AssertionError("pagination did not end")


def _prune(
    kit: StorageKit,
    older_than_offset: timedelta = timedelta(0),
    *,
    statuses: tuple[RunStatus, ...] = TERMINAL,
    limit: int = 100,
    cursor: str | None = None,
) -> PruneRuns:
    return PruneRuns(
        environment=kit.environment,
        older_than=kit.now - older_than_offset,
        statuses=statuses,
        limit=limit,
        cursor=cursor,
    )


class StorageReadTests:
    # -- 12. operator reads -------------------------------------------------------------------

    async def test_get_run_of_an_unknown_id_is_none(self, kit: StorageKit) -> None:
        assert await kit.get(kit.new_id()) is None

    async def test_list_runs_returns_the_stored_records(self, kit: StorageKit) -> None:
        created = [(await kit.create(payload={"i": i})).run for i in range(3)]
        listed = await kit.all_runs()
        assert sorted(listed, key=lambda r: r.id) == sorted(created, key=lambda r: r.id)

    async def test_list_runs_filters(self, kit: StorageKit) -> None:
        start = kit.now
        a = (await kit.create(task_id="task.a", queue="alpha", idempotency_key="ik")).run
        kit.clock.advance("1s")
        b = (await kit.create(task_id="task.b", queue="beta", singleton_key="sk")).run
        kit.clock.advance("1s")
        c = await kit.finish((await kit.create(task_id="task.a", queue="beta")).run, RunStatus.SUCCEEDED)

        async def ids(**filters: Any) -> set[str]:
            return {run.id for run in await kit.all_runs(**filters)}

        assert await ids() == {a.id, b.id, c.id}
        assert await ids(statuses=(RunStatus.SUCCEEDED,)) == {c.id}
        assert await ids(statuses=(RunStatus.QUEUED, RunStatus.SUCCEEDED)) == {a.id, b.id, c.id}
        assert await ids(task_ids=("task.a",)) == {a.id, c.id}
        assert await ids(queues=("beta",)) == {b.id, c.id}
        assert await ids(task_ids=("task.a",), queues=("beta",)) == {c.id}
        assert await ids(idempotency_key="ik") == {a.id}
        assert await ids(singleton_key="sk") == {b.id}
        assert await ids(created_after=start) == {b.id, c.id}
        assert await ids(created_before=start + timedelta(seconds=1)) == {a.id}
        assert await ids(statuses=(RunStatus.FAILED,)) == set()

    async def test_pagination_visits_every_run_once_in_sort_order(self, kit: StorageKit) -> None:
        for index in range(23):
            if index % 3 == 0:
                kit.clock.advance("1ms")  # groups of equal created_at exercise the id tie-break
            await kit.create()
        for direction in (SortDirection.DESC, SortDirection.ASC):
            pages = await _pages(kit, 5, direction=direction)
            assert [len(page) for page in pages] == [5, 5, 5, 5, 3]
            seen = [run for page in pages for run in page]
            expected = sorted(
                seen, key=lambda r: (r.created_at, r.id), reverse=direction is SortDirection.DESC
            )
            assert seen == expected
            assert len({run.id for run in seen}) == 23

    async def test_pagination_by_updated_at(self, kit: StorageKit) -> None:
        runs = [(await kit.create()).run for _ in range(6)]
        for run in reversed(runs[:3]):
            kit.clock.advance("1s")
            await kit.claim(run)
        pages = await _pages(kit, 4, sort_by=RunSortField.UPDATED_AT, direction=SortDirection.DESC)
        seen = [run for page in pages for run in page]
        assert seen == sorted(seen, key=lambda r: (r.updated_at, r.id), reverse=True)
        assert [run.id for run in seen[:3]] == [runs[0].id, runs[1].id, runs[2].id]
        assert len(seen) == 6

    async def test_pages_stay_stable_while_runs_are_inserted(self, kit: StorageKit) -> None:
        originals = {(await kit.create()).run.id for _ in range(10)}
        for direction in (SortDirection.DESC, SortDirection.ASC):
            seen: list[str] = []
            cursor: str | None = None
            for _ in range(100):
                page = await kit.storage.list_runs(_list(kit, limit=3, cursor=cursor, direction=direction))
                seen.extend(run.id for run in page.data)
                kit.clock.advance("1ms")
                await kit.create()  # a newer run lands while we page
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert len(seen) == len(set(seen)), "no run may appear twice"
            assert originals <= set(seen), "no pre-existing run may be skipped"

    async def test_limit_defaults_to_fifty_and_is_clamped_to_five_hundred(self, kit: StorageKit) -> None:
        for _ in range(501):
            await kit.create(with_delivery=False)
        default = await kit.storage.list_runs(_list(kit))
        assert len(default.data) == 50
        assert default.next_cursor is not None
        clamped = await kit.storage.list_runs(_list(kit, limit=10_000))
        assert len(clamped.data) == 500
        assert clamped.next_cursor is not None
        rest = await kit.storage.list_runs(_list(kit, limit=10_000, cursor=clamped.next_cursor))
        assert len(rest.data) == 1
        assert rest.next_cursor is None

    async def test_an_invalid_cursor_is_rejected(self, kit: StorageKit) -> None:
        for _ in range(3):
            await kit.create()
        page = await kit.storage.list_runs(_list(kit, limit=1))
        assert page.next_cursor is not None
        forged = base64.urlsafe_b64encode(json.dumps({"hello": "world"}).encode()).decode()
        for bad in ("garbage!!", "bm90IGpzb24", forged):
            await expect_error(kit.storage.list_runs(_list(kit, cursor=bad)), ErrorCode.VALIDATION_FAILED)
        other = StorageKit(kit.storage, Environment(kit.environment.name + "_other"), kit.clock)
        reused = page.next_cursor
        for query in (
            _list(kit, cursor=reused, direction=SortDirection.ASC),
            _list(kit, cursor=reused, sort_by=RunSortField.UPDATED_AT),
            _list(other, cursor=reused),
        ):
            await expect_error(kit.storage.list_runs(query), ErrorCode.VALIDATION_FAILED)

    async def test_list_runs_is_environment_scoped(self, kit: StorageKit) -> None:
        await kit.create()
        other = StorageKit(kit.storage, Environment(kit.environment.name + "_other"), kit.clock)
        assert await other.all_runs() == ()

    async def test_list_run_events_pages_by_sequence_in_both_directions(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        run = await kit.claim(run)
        kit.clock.advance("1s")
        await kit.finish(run, RunStatus.SUCCEEDED)
        for direction, expected in ((SortDirection.ASC, [1, 2, 3, 4]), (SortDirection.DESC, [4, 3, 2, 1])):
            sequences: list[int] = []
            cursor: str | None = None
            for _ in range(10):
                page = await kit.storage.list_run_events(
                    ListRunEvents(
                        environment=kit.environment,
                        run_id=run.id,
                        pagination=PaginationParams(limit=3, cursor=cursor),
                        sort_direction=direction,
                    )
                )
                sequences.extend(event.sequence for event in page.data)
                cursor = page.next_cursor
                if cursor is None:
                    break
            assert sequences == expected

    async def test_list_run_events_rejects_an_invalid_cursor(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        query = ListRunEvents(
            environment=kit.environment, run_id=run.id, pagination=PaginationParams(limit=1, cursor="%%%")
        )
        await expect_error(kit.storage.list_run_events(query), ErrorCode.VALIDATION_FAILED)

    # -- 13. pruning --------------------------------------------------------------------------

    async def test_prune_deletes_only_old_terminal_runs_in_the_given_statuses(self, kit: StorageKit) -> None:
        succeeded = await kit.finish((await kit.create()).run, RunStatus.SUCCEEDED)
        failed = await kit.finish((await kit.create()).run, RunStatus.FAILED)
        cancelled = await kit.finish((await kit.create()).run, RunStatus.CANCELLED)
        queued = (await kit.create()).run
        running = await kit.claim((await kit.create()).run)
        other = StorageKit(kit.storage, Environment(kit.environment.name + "_other"), kit.clock)
        foreign = await other.finish((await other.create()).run, RunStatus.SUCCEEDED)
        kit.clock.advance("1h")
        recent = await kit.finish((await kit.create()).run, RunStatus.SUCCEEDED)
        kit.clock.advance("1h")
        result = await kit.storage.prune_runs(
            _prune(kit, timedelta(minutes=90), statuses=(RunStatus.SUCCEEDED, RunStatus.FAILED))
        )
        assert result.deleted == 2
        assert result.next_cursor is None
        assert await kit.get(succeeded.id) is None
        assert await kit.get(failed.id) is None
        for kept in (cancelled, queued, running, recent):
            assert await kit.get(kept.id) is not None
        assert await other.get(foreign.id) is not None

    async def test_prune_cutoff_is_strictly_before(self, kit: StorageKit) -> None:
        done = await kit.finish((await kit.create()).run, RunStatus.SUCCEEDED)
        cutoff = done.updated_at
        at_cutoff = PruneRuns(environment=kit.environment, older_than=cutoff, statuses=TERMINAL, limit=10)
        assert (await kit.storage.prune_runs(at_cutoff)).deleted == 0
        after = PruneRuns(
            environment=kit.environment,
            older_than=cutoff + timedelta(milliseconds=1),
            statuses=TERMINAL,
            limit=10,
        )
        assert (await kit.storage.prune_runs(after)).deleted == 1

    async def test_prune_removes_events_outbox_rows_and_ownership(self, kit: StorageKit) -> None:
        owner = (await kit.create(idempotency_key="k", singleton_key="s")).run
        await kit.finish(owner, RunStatus.SUCCEEDED)
        kit.clock.advance("1m")
        assert (await kit.storage.prune_runs(_prune(kit))).deleted == 1
        assert await kit.get(owner.id) is None
        assert await kit.events(owner.id) == ()
        assert await kit.outbox(owner.id) == ()
        lookup = GetRunByIdempotencyKey(
            environment=kit.environment, task_id=TEST_TASK_ID, key="k", now=kit.now
        )
        assert await kit.storage.get_run_by_idempotency_key(lookup) is None
        fresh = await kit.create(idempotency_key="k", singleton_key="s")
        assert not fresh.returned_existing

    async def test_prune_resumes_with_its_cursor_until_done(self, kit: StorageKit) -> None:
        for _ in range(7):
            await kit.finish((await kit.create()).run, RunStatus.SUCCEEDED)
            kit.clock.advance("1ms")
        kept = (await kit.create()).run
        kit.clock.advance("1m")
        first = await kit.storage.prune_runs(_prune(kit, limit=3))
        assert first.deleted == 3
        assert first.next_cursor is not None
        total, calls = first.deleted, 1
        cursor: str | None = first.next_cursor
        while cursor is not None and calls < 10:
            result = await kit.storage.prune_runs(_prune(kit, limit=3, cursor=cursor))
            total, cursor, calls = total + result.deleted, result.next_cursor, calls + 1
        assert total == 7
        assert cursor is None
        assert [run.id for run in await kit.all_runs()] == [kept.id]

    async def test_prune_refuses_active_statuses(self, kit: StorageKit) -> None:
        await kit.create()
        await expect_error(
            kit.storage.prune_runs(_prune(kit, statuses=(RunStatus.QUEUED,))), ErrorCode.VALIDATION_FAILED
        )
        assert len(await kit.all_runs()) == 1

    async def test_prune_rejects_an_invalid_cursor(self, kit: StorageKit) -> None:
        await expect_error(
            kit.storage.prune_runs(_prune(kit, cursor="not-a-cursor")), ErrorCode.VALIDATION_FAILED
        )
