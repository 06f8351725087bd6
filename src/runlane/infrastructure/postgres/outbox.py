"""Outbox rows: exclusive claims with fresh claim tokens, token-checked completions, reads.

Rows are written by appends (one per ``run.delivery_requested`` event, same transaction). Claims
lock with ``FOR UPDATE SKIP LOCKED`` so two publishers never get the same row; a completion applies
only while the row is still ``claimed`` with the completion's token, so a publisher whose claim was
recovered by another cannot overwrite the newer outcome.
"""

import uuid
from dataclasses import replace
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.errors import invariant_violation
from runlane.domain.vocabulary import OutboxMessageStatus
from runlane.infrastructure.postgres.claims import check_limit
from runlane.infrastructure.postgres.rows import outbox_from_row
from runlane.infrastructure.postgres.schema import OPEN_OUTBOX_STATUS_VALUES, StorageTables
from runlane.ports.storage_commands import (
    ClaimOutboxMessages,
    CompleteOutboxMessages,
    ListOutboxMessages,
    OutboxCompletion,
    OutboxMessage,
)

_COMPLETION_STATUSES = frozenset(
    {OutboxMessageStatus.PUBLISHED, OutboxMessageStatus.FAILED, OutboxMessageStatus.DEAD_LETTERED}
)


def _columns(t: StorageTables) -> list[sa.Column[Any]]:
    return [c for c in t.outbox_messages.c if c.name != "position"]


async def claim_outbox_messages(
    conn: AsyncConnection, t: StorageTables, command: ClaimOutboxMessages
) -> tuple[OutboxMessage, ...]:
    limit = check_limit(command.limit)
    timeout = check_limit(command.claim_timeout_ms, "claim_timeout_ms")
    if limit == 0 or command.ids == ():
        return ()
    now = command.now
    o = t.outbox_messages
    stranded_before = now - timedelta(milliseconds=timeout)
    # A claimed row was due when it was claimed (available_at <= claimed_at), so the shared
    # available_at bound holds for stranded rows too and lets ix_outbox_messages_claim range-scan.
    stmt = sa.select(*_columns(t)).where(
        o.c.environment == command.environment.name,
        o.c.status.in_(OPEN_OUTBOX_STATUS_VALUES),
        o.c.available_at <= now,
        sa.or_(
            sa.and_(o.c.status != OutboxMessageStatus.CLAIMED.value, o.c.available_at <= now),
            sa.and_(o.c.status == OutboxMessageStatus.CLAIMED.value, o.c.claimed_at <= stranded_before),
        ),
    )
    if command.ids is not None:
        stmt = stmt.where(o.c.id.in_(tuple(dict.fromkeys(command.ids))))
    stmt = stmt.order_by(o.c.available_at, o.c.position).limit(limit).with_for_update(skip_locked=True)
    rows = (await conn.execute(stmt)).mappings().all()
    claimed = [
        replace(
            outbox_from_row(row),
            status=OutboxMessageStatus.CLAIMED,
            claim_token=uuid.uuid4().hex,
            claimed_at=now,
            attempts=row["attempts"] + 1,
            updated_at=now,
        )
        for row in rows
    ]
    if claimed:
        await conn.execute(
            sa.update(o).where(o.c.id == sa.bindparam("w_id")),
            [
                {
                    "w_id": message.id,
                    "status": message.status.value,
                    "claim_token": message.claim_token,
                    "claimed_at": now,
                    "attempts": message.attempts,
                    "updated_at": now,
                }
                for message in claimed
            ],
        )
    return tuple(claimed)


def _completion_values(completion: OutboxCompletion) -> dict[str, Any]:
    status = OutboxMessageStatus(completion.status)
    values: dict[str, Any] = {"status": status.value, "updated_at": completion.at}
    error = None if completion.error is None else completion.error.to_wire()
    if status is OutboxMessageStatus.PUBLISHED:
        values.update(published_at=completion.at, provider_message_id=completion.provider_message_id)
    elif status is OutboxMessageStatus.FAILED:
        values.update(last_error=error, available_at=completion.next_attempt_at or completion.at)
    else:
        values.update(last_error=error)
    return values


async def complete_outbox_messages(
    conn: AsyncConnection, t: StorageTables, command: CompleteOutboxMessages
) -> int:
    for completion in command.completions:
        if OutboxMessageStatus(completion.status) not in _COMPLETION_STATUSES:
            raise invariant_violation(
                f"An outbox completion must be published, failed or dead_lettered, not {completion.status}."
            )
    o = t.outbox_messages
    applied = 0
    for completion in command.completions:
        result = await conn.execute(
            sa.update(o)
            .where(
                o.c.environment == command.environment.name,
                o.c.id == completion.id,
                o.c.status == OutboxMessageStatus.CLAIMED.value,
                o.c.claim_token == completion.claim_token,
            )
            .values(_completion_values(completion))
        )
        applied += result.rowcount
    return applied


async def list_outbox_messages(
    conn: AsyncConnection, t: StorageTables, query: ListOutboxMessages
) -> tuple[OutboxMessage, ...]:
    limit = check_limit(query.limit)
    if limit == 0 or query.statuses == ():
        return ()
    o = t.outbox_messages
    stmt = sa.select(*_columns(t)).where(o.c.environment == query.environment.name)
    if query.run_id is not None:
        stmt = stmt.where(o.c.run_id == query.run_id)
    if query.statuses is not None:
        stmt = stmt.where(o.c.status.in_([OutboxMessageStatus(s).value for s in query.statuses]))
    rows = (await conn.execute(stmt.order_by(o.c.position).limit(limit))).mappings().all()
    return tuple(outbox_from_row(row) for row in rows)
