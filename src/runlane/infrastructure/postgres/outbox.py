"""Outbox rows: exclusive claims with fresh claim tokens, token-checked completions, reads.

Rows are written by appends (one per ``run.delivery_requested`` event, same transaction). Claims
lock with ``FOR UPDATE SKIP LOCKED`` so two publishers never get the same row; a completion applies
only while the row is still ``claimed`` with the completion's token, so a publisher whose claim was
recovered by another cannot overwrite the newer outcome.
"""

import uuid
from dataclasses import dataclass, replace
from datetime import timedelta
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.errors import invariant_violation
from runlane.domain.vocabulary import OutboxMessageStatus
from runlane.infrastructure.postgres import driver_statements
from runlane.infrastructure.postgres.array_literals import array_literal
from runlane.infrastructure.postgres.bulk import Rows, ids_array, locked_in_id_order
from runlane.infrastructure.postgres.rows import outbox_from_row
from runlane.infrastructure.postgres.schema import OPEN_OUTBOX_STATUS_VALUES, StorageTables, build_tables
from runlane.ports.storage_commands import (
    ClaimOutboxMessages,
    CompleteOutboxMessages,
    ListOutboxMessages,
    OutboxCompletion,
    OutboxMessage,
)
from runlane.ports.storage_rules import check_limit

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


_COMPLETION_COLUMNS = (
    "id",
    "claim_token",
    "status",
    "updated_at",
    "published_at",
    "provider_message_id",
    "last_error",
    "available_at",
)
_ENVIRONMENT = "c_environment"
_IDS = "c_ids"


@dataclass(frozen=True, slots=True)
class _CompleteStatement:
    statement: sa.Update
    rows: Rows


@lru_cache(maxsize=32)
def _complete_statement(schema: str) -> _CompleteStatement:
    """One ``UPDATE ... FROM unnest(...)`` for every completion of a call, built once per schema.

    Rows are locked in id order first (as ``bulk`` does), so two completers that share rows (a
    publisher whose stranded claim was recovered by another) queue instead of deadlocking. A row
    changes only while it is still ``claimed`` with the completion's token.
    """
    o = build_tables(schema).outbox_messages
    rows = Rows.of(o, "c", _COMPLETION_COLUMNS)
    v = rows.source
    locked = locked_in_id_order(o, _ENVIRONMENT, _IDS, "c_locked")
    status = v.c.status
    published = status == OutboxMessageStatus.PUBLISHED.value

    def when(condition: sa.ColumnElement[bool], value: sa.ColumnElement[Any], name: str) -> Any:
        return sa.case((condition, value), else_=o.c[name])

    # Each status writes only its own columns, as the per-row UPDATE did: published sets the
    # publish time and provider id (and keeps an earlier failure); failed sets the error and the
    # next attempt time; dead_lettered sets the error. An absent error is SQL NULL, not JSON null.
    error = sa.cast(sa.func.nullif(v.c.last_error, "null"), sa.JSON)
    statement = (
        sa.update(o)
        .where(
            o.c.environment == sa.bindparam(_ENVIRONMENT),
            o.c.id == sa.any_(ids_array(_IDS)),  # a primary-key lookup, whatever the statistics say
            o.c.id == locked.c.id,
            o.c.id == v.c.id,
            # One join condition, not a filter on ``o`` alone: claimed rows are transient, so the
            # planner would estimate one row for "status = 'claimed'" and loop over the batch per row.
            sa.func.concat(o.c.status, " ", o.c.claim_token)
            == sa.func.concat(OutboxMessageStatus.CLAIMED.value + " ", v.c.claim_token),
        )
        .values(
            status=status,
            updated_at=v.c.updated_at,
            published_at=when(published, v.c.published_at, "published_at"),
            provider_message_id=when(published, v.c.provider_message_id, "provider_message_id"),
            last_error=when(~published, error, "last_error"),
            available_at=when(status == OutboxMessageStatus.FAILED.value, v.c.available_at, "available_at"),
        )
    )
    return _CompleteStatement(statement=statement, rows=rows)


def _completion_row(completion: OutboxCompletion) -> dict[str, Any]:
    status = OutboxMessageStatus(completion.status)
    if status not in _COMPLETION_STATUSES:
        raise invariant_violation(
            f"An outbox completion must be published, failed or dead_lettered, not {completion.status}."
        )
    published = status is OutboxMessageStatus.PUBLISHED
    return {
        "id": completion.id,
        "claim_token": completion.claim_token,
        "status": status.value,
        "updated_at": completion.at,
        "published_at": completion.at if published else None,
        "provider_message_id": completion.provider_message_id if published else None,
        "last_error": None if published or completion.error is None else completion.error.to_wire(),
        "available_at": (completion.next_attempt_at or completion.at)
        if status is OutboxMessageStatus.FAILED
        else None,
    }


async def complete_outbox_messages(
    conn: driver_statements.Driver, t: StorageTables, command: CompleteOutboxMessages
) -> int:
    """Every completion in one statement; returns how many rows were still claimed with their token."""
    built = completion_statement(t.schema, command)
    if built is None:
        return 0
    statement, params = built
    return (await driver_statements.execute(conn, statement, params)).rowcount


def completion_statement(
    schema: str, command: CompleteOutboxMessages
) -> tuple[sa.Update, dict[str, Any]] | None:
    """``complete_outbox_messages``'s statement and parameters; ``None`` when nothing is completed."""
    rows: list[dict[str, Any]] = []
    seen: set[str] = set()
    for completion in command.completions:
        row = _completion_row(completion)
        # A second completion of the same row in one call cannot apply (the first one ends the
        # claim), as with one UPDATE per completion; keep the first so the outcome is deterministic.
        if row["id"] not in seen:
            seen.add(row["id"])
            rows.append(row)
    if not rows:
        return None
    built = _complete_statement(schema)
    params = {
        _ENVIRONMENT: command.environment.name,
        _IDS: array_literal(row["id"] for row in rows),
        **built.rows.params(rows),
    }
    return built.statement, params


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
