"""The in-memory storage passes the storage conformance suite, plus what only it promises."""

import dataclasses
import time
from collections.abc import AsyncIterator

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.pages import PaginationParams
from runlane.domain.values import Environment
from runlane.domain.vocabulary import ErrorCode, RunStatus
from runlane.infrastructure.memory import InMemoryStorage, create_local_storage
from runlane.ports.storage import StorageAdapter
from runlane.ports.storage_commands import ClaimDueRuns, GetRun, ListOutboxMessages, ListRuns, RunFilter
from runlane.testing import StorageConformance, create_controlled_clock
from runlane.testing.conformance.storage_kit import StorageKit
from runlane.testing.fixtures import append_queued_run
from runlane.testing.run_builders import create_queued_run_data, lease_claimed_event, plan_for


class TestInMemoryStorage(StorageConformance):
    @pytest.fixture
    async def storage(self) -> AsyncIterator[StorageAdapter]:
        storage = InMemoryStorage()
        await storage.start()
        yield storage
        await storage.close()


ENV = Environment("memory")


def test_local_storage_capabilities_are_the_documented_ones() -> None:
    storage = create_local_storage()
    assert isinstance(storage, StorageAdapter)
    assert storage.name == "local"
    wire = storage.capabilities.to_wire()
    assert wire.pop("durableState") is False
    assert wire.pop("processLocalState") is True
    assert set(wire.values()) == {True}
    assert len(wire) == 8


async def test_two_instances_share_nothing() -> None:
    clock = create_controlled_clock()
    first, second = create_local_storage(), create_local_storage()
    assert first is not second
    fixture = await append_queued_run(first, clock, "run_shared", environment=ENV, idempotency_key="k")
    assert await second.get_run(GetRun(environment=ENV, run_id="run_shared")) is None
    assert await second.list_outbox_messages(ListOutboxMessages(environment=ENV)) == ()
    page = await second.list_runs(ListRuns(filter=RunFilter(environment=ENV)))
    assert page.data == ()
    # The same id and key are free in the second store.
    again = await append_queued_run(second, clock, "run_shared", environment=ENV, idempotency_key="k")
    assert again.queued_run == fixture.queued_run


async def test_cursors_of_one_instance_are_opaque_but_valid_only_for_the_same_query() -> None:
    clock = create_controlled_clock()
    storage = create_local_storage()
    for index in range(3):
        await append_queued_run(storage, clock, f"run_{index}", environment=ENV)
    page = await storage.list_runs(
        ListRuns(filter=RunFilter(environment=ENV), pagination=PaginationParams(limit=1))
    )
    assert page.next_cursor is not None
    assert "run_" not in page.next_cursor
    with pytest.raises(RunlaneError) as info:
        await storage.list_runs(
            ListRuns(
                filter=RunFilter(environment=Environment("elsewhere")),
                pagination=PaginationParams(cursor=page.next_cursor),
            )
        )
    assert info.value.code is ErrorCode.VALIDATION_FAILED


async def test_state_survives_close_and_restart() -> None:
    clock = create_controlled_clock()
    storage = create_local_storage()
    await storage.start()
    await append_queued_run(storage, clock, "run_kept", environment=ENV)
    await storage.close()
    await storage.start()
    assert await storage.get_run(GetRun(environment=ENV, run_id="run_kept")) is not None


async def test_a_failing_plan_callback_writes_nothing() -> None:
    clock = create_controlled_clock()
    storage = create_local_storage()
    for index in range(3):
        await append_queued_run(storage, clock, f"run_{index}", environment=ENV)
    calls: list[str] = []

    def plan(run: object) -> object:
        calls.append(getattr(run, "id", "?"))
        if len(calls) == 2:
            raise RuntimeError("core bug")
        return plan_for(run, lease_claimed_event(run, now=clock.now()))  # type: ignore[arg-type]

    with pytest.raises(RuntimeError):
        await storage.claim_due_runs(ClaimDueRuns(environment=ENV, now=clock.now(), limit=10, plan=plan))  # type: ignore[arg-type]
    for index in range(3):
        run = await storage.get_run(GetRun(environment=ENV, run_id=f"run_{index}"))
        assert run is not None
        assert run.status is RunStatus.QUEUED


async def test_thousands_of_runs_stay_fast() -> None:
    """Due scans, claims and pages use indexes: 5,000 runs claimed one by one take well under a minute."""
    storage = create_local_storage()
    kit = StorageKit(storage=storage, environment=ENV, clock=create_controlled_clock())
    started = time.perf_counter()
    for _ in range(5_000):
        await kit.create()
        kit.clock.advance("1ms")
    claimed = 0
    for _ in range(5_000):
        batch = await storage.claim_due_runs(kit.claim_due(1))
        claimed += len(batch)
    assert claimed == 5_000
    assert len(await kit.all_runs()) == 5_000
    assert time.perf_counter() - started < 30


async def test_an_append_in_a_callers_transaction_is_refused_and_writes_nothing() -> None:
    """Memory cannot join a caller's transaction: writing at once would outlive its rollback."""
    storage = create_local_storage()
    clock = create_controlled_clock()
    environment = Environment("tx")
    data = create_queued_run_data("run_tx", now=clock.now(), environment=environment)
    command = dataclasses.replace(data.append_command(clock.now()), claim_outbox=True, transaction=object())
    with pytest.raises(RunlaneError) as raised:
        await storage.append_run_events(command)
    assert raised.value.code is ErrorCode.CAPABILITY_UNSUPPORTED
    assert raised.value.meta == {"capability": "transaction"}
    assert await storage.get_run(GetRun(environment=environment, run_id=data.run.id)) is None
    rows = await storage.list_outbox_messages(ListOutboxMessages(environment=environment, limit=5))
    assert list(rows) == []
