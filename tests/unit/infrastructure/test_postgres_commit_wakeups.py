"""Which outbox rows an eager append on the Postgres lane writes published, and what it NOTIFYs."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import OutboxMessageStatus
from runlane.infrastructure.postgres.array_literals import array_literal
from runlane.infrastructure.postgres.commit_wakeups import notify_params, rows_publish_params
from runlane.infrastructure.postgres.wakeup_channels import (
    MAX_PAYLOAD_BYTES,
    all_queues_channel,
    encode_wakeup,
    queue_channel,
)
from runlane.infrastructure.postgres.writes import stage_command
from runlane.ports.storage_commands import OutboxMessage
from runlane.testing.run_builders import RunData, create_queued_run_data, create_scheduled_run_data

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ENV = Environment("production")


def _row(row_id: str, *, queue: str = "emails", available_at: datetime = NOW) -> OutboxMessage:
    return OutboxMessage(
        id=row_id,
        environment=ENV,
        run_id=f"run_{row_id}",
        queue=queue,
        message=DeliveryMessage(environment=ENV, run_id=f"run_{row_id}", queue=queue, requested_at=NOW),
        status=OutboxMessageStatus.PENDING,
        attempts=0,
        available_at=available_at,
        created_at=NOW,
        updated_at=NOW,
    )


def _staged_row(data: RunData, *, notify: bool = True, transaction: object = None) -> OutboxMessage:
    command = replace(data.append_command(NOW), claim_outbox=True, transaction=transaction)
    (row,) = stage_command(command, notify=notify).outbox
    return row


def test_due_rows_are_published_later_ones_stay_pending_and_unsendable_ones_are_claimed() -> None:
    later = NOW + timedelta(minutes=5)
    huge_queue = "q" * MAX_PAYLOAD_BYTES  # a valid queue name whose wakeup no NOTIFY can carry
    due = _staged_row(create_queued_run_data("run_due", now=NOW))
    delayed = _staged_row(create_scheduled_run_data("run_later", now=NOW, run_at=later))
    too_long = _staged_row(create_queued_run_data("run_huge", now=NOW, queue=huge_queue))
    assert (due.status, due.attempts, due.published_at, due.updated_at) == (
        OutboxMessageStatus.PUBLISHED,
        1,
        NOW,
        NOW,
    )
    assert (due.claim_token, due.claimed_at) == (None, None)
    assert (delayed.status, delayed.attempts, delayed.claim_token) == (OutboxMessageStatus.PENDING, 0, None)
    assert (too_long.status, too_long.attempts, too_long.claimed_at) == (OutboxMessageStatus.CLAIMED, 1, NOW)
    assert too_long.claim_token is not None  # the transport gets it, and fails it, as without this


def test_inside_a_callers_transaction_rows_are_published_by_its_commit_or_left_pending() -> None:
    data = create_queued_run_data("run_tx", now=NOW)
    assert _staged_row(data, transaction=object()).status is OutboxMessageStatus.PUBLISHED
    assert _staged_row(data, notify=False, transaction=object()).status is OutboxMessageStatus.PENDING
    assert _staged_row(data, notify=False).status is OutboxMessageStatus.CLAIMED


def test_each_published_row_is_sent_on_its_queue_channel_and_the_schema_channel() -> None:
    rows = [_row("o1"), _row("o2", queue="reports")]
    payloads = [encode_wakeup(row.message) for row in rows]
    every = all_queues_channel("tenant")
    channels = [queue_channel("tenant", "emails"), every, queue_channel("tenant", "reports"), every]
    sent = [payloads[0], payloads[0], payloads[1], payloads[1]]
    assert notify_params("tenant", rows) == {
        "n_outbox_ids": array_literal(["o1", "o1", "o2", "o2"]),
        "n_channels": array_literal(channels),
        "n_payloads": array_literal(sent),
    }
    assert rows_publish_params("tenant", rows) == {
        "n_channels": array_literal(channels),
        "n_payloads": array_literal(sent),
    }


def test_rows_written_at_the_append_differ_from_the_derived_row_in_the_attempt_fields_only() -> None:
    """``published_at_append``/``claimed_at_append`` copy slot by slot: nothing else may change."""
    row = _row("o1", available_at=NOW - timedelta(seconds=1))
    later = NOW + timedelta(seconds=3)
    published = row.published_at_append(later)
    claimed = row.claimed_at_append(later)
    assert published == replace(
        row, status=OutboxMessageStatus.PUBLISHED, attempts=1, published_at=later, updated_at=later
    )
    assert claimed.claim_token is not None and len(claimed.claim_token) == 32
    assert claimed == replace(
        row,
        status=OutboxMessageStatus.CLAIMED,
        attempts=1,
        claim_token=claimed.claim_token,
        claimed_at=later,
        updated_at=later,
    )
    assert (row.status, row.attempts, row.updated_at) == (OutboxMessageStatus.PENDING, 0, NOW)
