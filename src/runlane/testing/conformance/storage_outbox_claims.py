"""Storage conformance: appends that write their due outbox rows already claimed (eager dispatch) (4)."""

from dataclasses import replace
from datetime import timedelta

from runlane.domain.vocabulary import OutboxMessageStatus
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    CompleteOutboxMessages,
    OutboxCompletion,
)
from runlane.testing.conformance.storage_kit import StorageKit
from runlane.testing.run_builders import create_queued_run_data, create_scheduled_run_data


class StorageOutboxClaimTests:
    async def test_a_claiming_append_writes_its_due_row_claimed(self, kit: StorageKit) -> None:
        data = create_queued_run_data(kit.new_id(), now=kit.now, environment=kit.environment)
        result = await kit.storage.append_run_events(replace(data.append_command(kit.now), claim_outbox=True))
        (claimed,) = result.claimed_outbox
        assert result.outbox_message_ids == (claimed.id,)
        assert claimed.status is OutboxMessageStatus.CLAIMED
        assert claimed.claim_token
        assert claimed.attempts == 1
        assert claimed.claimed_at == kit.now
        assert claimed.message.run_id == result.run.id
        (listed,) = await kit.outbox(result.run.id)
        assert listed == claimed
        assert await kit.storage.claim_outbox_messages(kit.claim_outbox()) == ()

    async def test_its_token_completes_the_row(self, kit: StorageKit) -> None:
        data = create_queued_run_data(kit.new_id(), now=kit.now, environment=kit.environment)
        result = await kit.storage.append_run_events(replace(data.append_command(kit.now), claim_outbox=True))
        (claimed,) = result.claimed_outbox
        completion = OutboxCompletion(
            id=claimed.id,
            claim_token=claimed.claim_token or "",
            status=OutboxMessageStatus.PUBLISHED,
            at=kit.now,
        )
        done = await kit.storage.complete_outbox_messages(
            CompleteOutboxMessages(environment=kit.environment, completions=(completion,))
        )
        assert done == 1
        (stored,) = await kit.outbox(result.run.id)
        assert stored.status is OutboxMessageStatus.PUBLISHED

    async def test_an_uncompleted_row_is_recovered_as_a_stranded_claim(self, kit: StorageKit) -> None:
        data = create_queued_run_data(kit.new_id(), now=kit.now, environment=kit.environment)
        result = await kit.storage.append_run_events(replace(data.append_command(kit.now), claim_outbox=True))
        (claimed,) = result.claimed_outbox
        kit.clock.advance("2m")
        (recovered,) = await kit.storage.claim_outbox_messages(kit.claim_outbox(claim_timeout_ms=60_000))
        assert recovered.id == claimed.id
        assert recovered.claim_token != claimed.claim_token
        assert recovered.attempts == 2

    async def test_a_future_row_stays_pending_and_batches_claim_per_item(self, kit: StorageKit) -> None:
        later = create_scheduled_run_data(
            kit.new_id(), now=kit.now, run_at=kit.now + timedelta(minutes=5), environment=kit.environment
        )
        due = [
            create_queued_run_data(kit.new_id(), now=kit.now, environment=kit.environment) for _ in range(3)
        ]
        commands = tuple(replace(d.append_command(kit.now), claim_outbox=True) for d in (later, *due))
        many = await kit.storage.append_many_run_events(
            AppendManyRunEvents(environment=kit.environment, commands=commands)
        )
        first, *rest = many.results
        assert not isinstance(first, Exception)
        assert first.claimed_outbox == ()
        (pending,) = await kit.outbox(first.run.id)
        assert pending.status is OutboxMessageStatus.PENDING
        for outcome in rest:
            assert not isinstance(outcome, Exception)
            (claimed,) = outcome.claimed_outbox
            assert claimed.status is OutboxMessageStatus.CLAIMED
            assert (await kit.outbox(outcome.run.id)) == (claimed,)
