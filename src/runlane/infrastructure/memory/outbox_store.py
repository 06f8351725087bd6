"""Outbox rows: one per ``run.delivery_requested`` event, claimed exclusively for publishing.

Rows that can still be claimed (``pending``, ``failed``, ``claimed``) are kept in a per-environment
"open" index so claims never scan the published history.
"""

import heapq
import uuid
from dataclasses import replace
from datetime import datetime, timedelta

from runlane.domain.errors import invariant_violation
from runlane.domain.vocabulary import OutboxMessageStatus
from runlane.ports.storage_commands import OutboxCompletion, OutboxMessage

_OPEN = frozenset({OutboxMessageStatus.PENDING, OutboxMessageStatus.FAILED, OutboxMessageStatus.CLAIMED})
_COMPLETION_STATUSES = frozenset(
    {OutboxMessageStatus.PUBLISHED, OutboxMessageStatus.FAILED, OutboxMessageStatus.DEAD_LETTERED}
)


class OutboxStore:
    def __init__(self) -> None:
        self._rows: dict[str, dict[str, OutboxMessage]] = {}  # environment -> id -> row (insertion order)
        self._open: dict[str, dict[str, None]] = {}
        self._by_run: dict[tuple[str, str], list[str]] = {}

    def add(self, row: OutboxMessage) -> None:
        environment = row.environment.name
        self._rows.setdefault(environment, {})[row.id] = row
        self._open.setdefault(environment, {})[row.id] = None
        self._by_run.setdefault((environment, row.run_id), []).append(row.id)

    def claim(
        self,
        environment: str,
        *,
        now: datetime,
        limit: int,
        claim_timeout_ms: int,
        ids: tuple[str, ...] | None,
    ) -> tuple[OutboxMessage, ...]:
        rows = self._rows.get(environment, {})
        open_ids = self._open.get(environment, {})
        candidates = open_ids if ids is None else [i for i in dict.fromkeys(ids) if i in open_ids]
        stranded_before = now - timedelta(milliseconds=claim_timeout_ms)
        # Insertion order breaks ties, which keeps claims deterministic for rows created together.
        due = (
            (rows[row_id].available_at, position, row_id)
            for position, row_id in enumerate(candidates)
            if _claimable(rows[row_id], now, stranded_before)
        )
        claimed = []
        for _, _, row_id in heapq.nsmallest(limit, due):
            row = rows[row_id]
            updated = replace(
                row,
                status=OutboxMessageStatus.CLAIMED,
                claim_token=uuid.uuid4().hex,
                claimed_at=now,
                attempts=row.attempts + 1,
                updated_at=now,
            )
            rows[row.id] = updated
            claimed.append(updated)
        return tuple(claimed)

    def complete(self, environment: str, completions: tuple[OutboxCompletion, ...]) -> int:
        for completion in completions:
            if OutboxMessageStatus(completion.status) not in _COMPLETION_STATUSES:
                raise invariant_violation(
                    "An outbox completion must be published, failed or dead_lettered, "
                    f"not {completion.status}."
                )
        rows = self._rows.get(environment, {})
        applied = 0
        for completion in completions:
            row = rows.get(completion.id)
            if (
                row is None
                or row.status is not OutboxMessageStatus.CLAIMED
                or row.claim_token != completion.claim_token
            ):
                continue
            rows[row.id] = _completed(row, completion)
            if rows[row.id].status not in _OPEN:
                self._open.get(environment, {}).pop(row.id, None)
            applied += 1
        return applied

    def list(
        self,
        environment: str,
        *,
        run_id: str | None,
        statuses: tuple[OutboxMessageStatus, ...] | None,
        limit: int,
    ) -> tuple[OutboxMessage, ...]:
        rows = self._rows.get(environment, {})
        ids = rows.keys() if run_id is None else self._by_run.get((environment, run_id), [])
        wanted = None if statuses is None else frozenset(statuses)
        result: list[OutboxMessage] = []
        for row_id in ids:
            if len(result) >= limit:
                break
            row = rows[row_id]
            if wanted is None or row.status in wanted:
                result.append(row)
        return tuple(result)

    def delete_for_run(self, environment: str, run_id: str) -> None:
        for row_id in self._by_run.pop((environment, run_id), []):
            self._rows.get(environment, {}).pop(row_id, None)
            self._open.get(environment, {}).pop(row_id, None)


def _claimable(row: OutboxMessage, now: datetime, stranded_before: datetime) -> bool:
    if row.status is OutboxMessageStatus.CLAIMED:
        return row.claimed_at is not None and row.claimed_at <= stranded_before
    return row.available_at <= now


def _completed(row: OutboxMessage, completion: OutboxCompletion) -> OutboxMessage:
    status = OutboxMessageStatus(completion.status)
    if status is OutboxMessageStatus.PUBLISHED:
        return replace(
            row,
            status=status,
            published_at=completion.at,
            provider_message_id=completion.provider_message_id,
            updated_at=completion.at,
        )
    if status is OutboxMessageStatus.FAILED:
        return replace(
            row,
            status=status,
            last_error=completion.error,
            available_at=completion.next_attempt_at or completion.at,
            updated_at=completion.at,
        )
    return replace(row, status=status, last_error=completion.error, updated_at=completion.at)
