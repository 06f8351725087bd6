"""Storage conformance: outbox rows derived from delivery requests, claimed exclusively, and what each
completion writes (17)."""

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

from runlane.domain.values import Environment, OutboxFailureRecord
from runlane.domain.vocabulary import ErrorCode, OutboxMessageStatus
from runlane.ports.storage_commands import (
    ClaimOutboxMessages,
    CompleteOutboxMessages,
    ListOutboxMessages,
    OutboxCompletion,
    OutboxMessage,
)
from runlane.testing.conformance.storage_kit import StorageKit


def _failure(kit: StorageKit, *, retryable: bool = True) -> OutboxFailureRecord:
    return OutboxFailureRecord(
        code=ErrorCode.TRANSPORT_UNAVAILABLE,
        message="provider down",
        occurred_at=kit.now,
        retryable=retryable,
        meta={"providerCode": "Throttling"},
    )


async def _complete(kit: StorageKit, *completions: OutboxCompletion) -> int:
    return await kit.storage.complete_outbox_messages(
        CompleteOutboxMessages(environment=kit.environment, completions=completions)
    )


def _published(kit: StorageKit, row: OutboxMessage, token: str | None = None) -> OutboxCompletion:
    return OutboxCompletion(
        id=row.id,
        claim_token=token or row.claim_token or "",
        status=OutboxMessageStatus.PUBLISHED,
        at=kit.now,
        provider_message_id="provider-1",
    )


def _failed(
    row: OutboxMessage, failure: OutboxFailureRecord, *, next_attempt_at: datetime | None = None
) -> OutboxCompletion:
    return OutboxCompletion(
        id=row.id,
        claim_token=row.claim_token or "",
        status=OutboxMessageStatus.FAILED,
        at=failure.occurred_at,
        error=failure,
        next_attempt_at=next_attempt_at,
    )


class StorageOutboxTests:
    async def test_a_delivery_request_derives_exactly_one_pending_row(self, kit: StorageKit) -> None:
        result = await kit.create(trace_carrier={"traceparent": "00-abc-def-01"})
        run = result.run
        (row,) = await kit.outbox(run.id)
        assert result.outbox_message_ids == (row.id,)
        assert row.status is OutboxMessageStatus.PENDING
        assert row.attempts == 0
        assert row.environment == kit.environment
        assert row.run_id == run.id
        assert row.queue == run.queue
        assert row.message.environment == kit.environment
        assert row.message.run_id == run.id
        assert row.message.queue == run.queue
        assert row.message.requested_at == kit.now
        assert row.message.trace_carrier == {"traceparent": "00-abc-def-01"}
        assert row.available_at == kit.now
        assert row.claim_token is None
        assert row.last_error is None

    async def test_each_delivery_request_adds_its_own_row(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        kit.clock.advance("1s")
        again = await kit.request_delivery(run)
        assert len(again.outbox_message_ids) == 1
        assert len(await kit.outbox(run.id)) == 2

    async def test_claiming_moves_a_row_to_claimed_with_a_token_and_an_attempt(self, kit: StorageKit) -> None:
        run = (await kit.create()).run
        (claimed,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        assert claimed.run_id == run.id
        assert claimed.status is OutboxMessageStatus.CLAIMED
        assert claimed.claim_token
        assert claimed.attempts == 1
        assert claimed.claimed_at == kit.now
        (listed,) = await kit.outbox(run.id)
        assert listed == claimed

    async def test_a_claimed_row_is_not_claimed_again(self, kit: StorageKit) -> None:
        await kit.create()
        assert len(await kit.storage.claim_outbox_messages(kit.claim_outbox())) == 1
        assert await kit.storage.claim_outbox_messages(kit.claim_outbox()) == ()

    async def test_concurrent_claimers_never_share_a_row(self, kit: StorageKit) -> None:
        for _ in range(20):
            await kit.create()
        batches = await asyncio.gather(
            *(kit.storage.claim_outbox_messages(kit.claim_outbox(limit=3)) for _ in range(8))
        )
        ids = [row.id for batch in batches for row in batch]
        assert len(ids) == len(set(ids)) == 20
        tokens = [row.claim_token for batch in batches for row in batch]
        assert len(set(tokens)) == 20

    async def test_claim_respects_limit_and_ids(self, kit: StorageKit) -> None:
        rows = [(await kit.create()).outbox_message_ids[0] for _ in range(4)]
        (first,) = await kit.storage.claim_outbox_messages(kit.claim_outbox(limit=1))
        wanted = tuple(row_id for row_id in rows if row_id != first.id)[:2]
        claimed = await kit.storage.claim_outbox_messages(kit.claim_outbox(ids=(*wanted, first.id)))
        assert sorted(row.id for row in claimed) == sorted(wanted)
        (last,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        assert last.id not in {first.id, *wanted}

    async def test_a_row_is_not_claimable_before_its_available_at(self, kit: StorageKit) -> None:
        run_at = kit.now + timedelta(minutes=5)
        run = await kit.create_scheduled(run_at)
        (row,) = await kit.outbox(run.id)
        assert row.available_at == run_at
        assert await kit.storage.claim_outbox_messages(kit.claim_outbox()) == ()
        assert await kit.storage.claim_outbox_messages(kit.claim_outbox(ids=(row.id,))) == ()
        kit.clock.set(run_at)
        assert [r.id for r in await kit.storage.claim_outbox_messages(kit.claim_outbox())] == [row.id]

    async def test_marking_published_records_time_and_provider_id(self, kit: StorageKit) -> None:
        await kit.create()
        (row,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        kit.clock.advance("2s")
        assert await _complete(kit, _published(kit, row)) == 1
        (stored,) = await kit.outbox()
        assert stored.status is OutboxMessageStatus.PUBLISHED
        assert stored.published_at == kit.now
        assert stored.provider_message_id == "provider-1"
        kit.clock.advance("1h")
        assert await kit.storage.claim_outbox_messages(kit.claim_outbox(claim_timeout_ms=1)) == ()

    async def test_a_failed_row_becomes_claimable_again_when_due(self, kit: StorageKit) -> None:
        await kit.create()
        (row,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        retry_at = kit.now + timedelta(seconds=30)
        failure = _failure(kit)
        completion = _failed(row, failure, next_attempt_at=retry_at)
        assert await _complete(kit, completion) == 1
        (stored,) = await kit.outbox()
        assert stored.status is OutboxMessageStatus.FAILED
        assert stored.last_error == failure
        assert await kit.storage.claim_outbox_messages(kit.claim_outbox()) == ()
        kit.clock.set(retry_at)
        (again,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        assert again.id == row.id
        assert again.attempts == 2
        assert again.claim_token != row.claim_token

    async def test_a_dead_lettered_row_is_never_claimed_again(self, kit: StorageKit) -> None:
        await kit.create()
        (row,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        failure = _failure(kit, retryable=False)
        completion = OutboxCompletion(
            id=row.id,
            claim_token=row.claim_token or "",
            status=OutboxMessageStatus.DEAD_LETTERED,
            at=kit.now,
            error=failure,
        )
        assert await _complete(kit, completion) == 1
        (stored,) = await kit.outbox()
        assert stored.status is OutboxMessageStatus.DEAD_LETTERED
        assert stored.last_error == failure
        kit.clock.advance("1d")
        assert await kit.storage.claim_outbox_messages(kit.claim_outbox(claim_timeout_ms=1)) == ()

    async def test_publishing_after_a_failure_keeps_the_failure_and_sets_the_provider_id(
        self, kit: StorageKit
    ) -> None:
        await kit.create()
        (row,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        failure = _failure(kit)
        await _complete(kit, _failed(row, failure, next_attempt_at=kit.now))
        kit.clock.advance("1s")
        (again,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        published = _published(kit, again)
        second = replace(published, provider_message_id="provider-2")  # same row twice: the first wins
        assert await _complete(kit, published, second) == 1
        (stored,) = await kit.outbox()
        assert stored.status is OutboxMessageStatus.PUBLISHED
        assert stored.last_error == failure
        assert stored.provider_message_id == "provider-1"
        assert stored.published_at == kit.now

    async def test_dead_lettering_without_an_error_clears_nothing_it_should_not(
        self, kit: StorageKit
    ) -> None:
        await kit.create()
        (row,) = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        dead = OutboxCompletion(
            id=row.id, claim_token=row.claim_token or "", status=OutboxMessageStatus.DEAD_LETTERED, at=kit.now
        )
        await _complete(kit, dead)
        (stored,) = await kit.outbox()
        assert stored.status is OutboxMessageStatus.DEAD_LETTERED
        assert stored.last_error is None
        assert stored.published_at is None
        assert stored.provider_message_id is None

    async def test_a_stranded_claimed_row_is_reclaimed_after_the_timeout(self, kit: StorageKit) -> None:
        await kit.create()
        (first,) = await kit.storage.claim_outbox_messages(kit.claim_outbox(claim_timeout_ms=60_000))
        kit.clock.advance("59999ms")
        assert await kit.storage.claim_outbox_messages(kit.claim_outbox(claim_timeout_ms=60_000)) == ()
        kit.clock.advance("1ms")
        (second,) = await kit.storage.claim_outbox_messages(kit.claim_outbox(claim_timeout_ms=60_000))
        assert second.id == first.id
        assert second.attempts == 2
        assert second.claim_token != first.claim_token

    async def test_a_completion_with_a_stale_token_is_ignored(self, kit: StorageKit) -> None:
        await kit.create()
        (first,) = await kit.storage.claim_outbox_messages(kit.claim_outbox(claim_timeout_ms=1_000))
        kit.clock.advance("1s")
        (second,) = await kit.storage.claim_outbox_messages(kit.claim_outbox(claim_timeout_ms=1_000))
        assert await _complete(kit, _published(kit, first)) == 0
        (stored,) = await kit.outbox()
        assert stored.status is OutboxMessageStatus.CLAIMED
        assert stored.claim_token == second.claim_token
        assert await _complete(kit, _published(kit, second)) == 1
        assert await _complete(kit, _published(kit, second)) == 0, "a completed row takes no second outcome"

    async def test_completions_apply_per_row(self, kit: StorageKit) -> None:
        for _ in range(3):
            await kit.create()
        a, b, c = await kit.storage.claim_outbox_messages(kit.claim_outbox())
        failed = _failed(b, _failure(kit))
        applied = await _complete(kit, _published(kit, a), failed, _published(kit, c, token="wrong-token"))
        assert applied == 2
        statuses = {row.id: row.status for row in await kit.outbox()}
        assert statuses == {
            a.id: OutboxMessageStatus.PUBLISHED,
            b.id: OutboxMessageStatus.FAILED,
            c.id: OutboxMessageStatus.CLAIMED,
        }

    async def test_outbox_rows_are_scoped_by_environment(self, kit: StorageKit) -> None:
        await kit.create()
        other = Environment(kit.environment.name + "_other")
        claim = ClaimOutboxMessages(environment=other, now=kit.now, limit=10, claim_timeout_ms=1)
        assert await kit.storage.claim_outbox_messages(claim) == ()
        assert await kit.storage.list_outbox_messages(ListOutboxMessages(environment=other)) == ()
        (row,) = await kit.outbox()
        completion = CompleteOutboxMessages(environment=other, completions=(_published(kit, row, token="x"),))
        assert await kit.storage.complete_outbox_messages(completion) == 0

    async def test_list_outbox_messages_filters_by_run_status_and_limit(self, kit: StorageKit) -> None:
        runs = [(await kit.create()).run for _ in range(3)]
        (claimed,) = await kit.storage.claim_outbox_messages(kit.claim_outbox(limit=1))
        assert [row.run_id for row in await kit.outbox(runs[1].id)] == [runs[1].id]
        pending = await kit.outbox(statuses=(OutboxMessageStatus.PENDING,))
        assert len(pending) == 2
        assert claimed.id not in {row.id for row in pending}
        limited = await kit.storage.list_outbox_messages(
            ListOutboxMessages(environment=kit.environment, limit=2)
        )
        assert len(limited) == 2
