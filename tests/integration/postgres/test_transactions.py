"""Appends that join the caller's transaction (``AppendRunEvents.transaction``): the caller commits."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode, StorageConflictKind
from runlane.infrastructure.postgres import PostgresStorage
from runlane.ports.storage_commands import AppendRunEvents
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment
from runlane.testing.run_builders import RunData, create_queued_run_data


@pytest.fixture
def kit(pg_storage: PostgresStorage) -> StorageKit:
    return StorageKit(storage=pg_storage, environment=unique_environment("tx"), clock=ControlledClock())


def _create(kit: StorageKit, run_id: str | None = None, **options: Any) -> tuple[RunData, AppendRunEvents]:
    data = create_queued_run_data(run_id or kit.new_id(), now=kit.now, environment=kit.environment, **options)
    return data, data.append_command(kit.now)


async def test_rolling_back_the_callers_transaction_leaves_no_trace(
    kit: StorageKit, pg_storage: PostgresStorage
) -> None:
    data, command = _create(kit, idempotency_key="tx-key")
    async with pg_storage.engine.connect() as conn:
        await conn.begin()
        result = await pg_storage.append_run_events(dataclasses.replace(command, transaction=conn))
        assert result.run == data.run
        assert await kit.get(data.run.id) is None, "uncommitted work is invisible to other connections"
        await conn.rollback()
    assert await kit.get(data.run.id) is None
    assert await kit.events(data.run.id) == ()
    assert await kit.outbox(data.run.id) == ()
    fresh = await kit.create(idempotency_key="tx-key")
    assert not fresh.returned_existing, "the rolled-back create took no idempotency key"


async def test_committing_the_callers_transaction_makes_everything_visible(
    kit: StorageKit, pg_storage: PostgresStorage
) -> None:
    data, command = _create(kit)
    async with pg_storage.engine.connect() as conn:
        async with conn.begin():
            result = await pg_storage.append_run_events(dataclasses.replace(command, transaction=conn))
        assert await kit.get(data.run.id) == data.run
    assert await kit.events(data.run.id) == result.events
    (row,) = await kit.outbox(data.run.id)
    assert row.id == result.outbox_message_ids[0]


async def test_a_conflict_rolls_back_only_the_append_and_the_caller_can_carry_on(
    kit: StorageKit, pg_storage: PostgresStorage
) -> None:
    first, first_command = _create(kit)
    second, second_command = _create(kit)
    async with pg_storage.engine.connect() as conn, conn.begin():
        await pg_storage.append_run_events(dataclasses.replace(first_command, transaction=conn))
        with pytest.raises(RunlaneError) as info:
            await pg_storage.append_run_events(dataclasses.replace(first_command, transaction=conn))
        assert info.value.conflict_kind is StorageConflictKind.SEQUENCE
        await pg_storage.append_run_events(dataclasses.replace(second_command, transaction=conn))
    assert await kit.get(first.run.id) == first.run
    assert await kit.get(second.run.id) == second.run
    assert len(await kit.events(first.run.id)) == 2


async def test_returning_an_existing_owner_writes_nothing_inside_the_callers_transaction(
    kit: StorageKit, pg_storage: PostgresStorage
) -> None:
    owner = (await kit.create(idempotency_key="owned")).run
    duplicate, command = _create(kit, idempotency_key="owned")
    async with pg_storage.engine.connect() as conn:
        async with conn.begin():
            result = await pg_storage.append_run_events(dataclasses.replace(command, transaction=conn))
        assert result.returned_existing
        assert result.run == owner
    assert await kit.get(duplicate.run.id) is None


async def test_a_transaction_that_is_not_an_async_connection_is_refused(
    kit: StorageKit, pg_storage: PostgresStorage
) -> None:
    data, command = _create(kit)
    with pytest.raises(RunlaneError) as info:
        await pg_storage.append_run_events(dataclasses.replace(command, transaction=object()))
    assert info.value.code is ErrorCode.VALIDATION_FAILED
    assert await kit.get(data.run.id) is None
