"""Rows to domain values and back: the only place that knows both shapes.

A run row keeps the whole record (payload included) in ``record`` as the wire JSON and copies the
fields queries use into plain columns; reading a run parses ``record`` only, so the copies can
never disagree with what callers get back.
"""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.timestamps import utc_ms
from runlane.domain.values import DeliveryMessage, Environment, OutboxFailureRecord
from runlane.domain.vocabulary import OutboxMessageStatus
from runlane.domain.wire import require_mapping
from runlane.ports.storage_commands import OutboxMessage


def run_values(run: RunRecord) -> dict[str, Any]:
    lease = run.lease
    return {
        "environment": run.environment.name,
        "id": run.id,
        "task_id": run.task_id,
        "queue": run.queue,
        "status": run.status._value_,
        "event_sequence": run.event_sequence,
        "created_at": run.created_at,
        "updated_at": run.updated_at,
        "run_at": run.run_at,
        "available_at": run.available_at,
        "idempotency_key": run.idempotency_key,
        "singleton_key": run.singleton_key,
        "concurrency_key": run.concurrency_key,
        "lease_worker_id": None if lease is None else lease.worker_id,
        "lease_expires_at": None if lease is None else lease.expires_at,
        "record": run.to_wire(),
    }


def run_from_record(record: object) -> RunRecord:
    return RunRecord.from_wire(require_mapping(record, "run"))


def event_values(record: RunEventRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "environment": record.environment.name,
        "run_id": record.run_id,
        "sequence": record.sequence,
        "type": record.type._value_,
        "occurred_at": record.occurred_at,
        "event": record.to_wire(),
    }


def event_from_document(document: object) -> RunEventRecord:
    return RunEventRecord.from_wire(document)


def outbox_values(row: OutboxMessage) -> dict[str, Any]:
    """The column values of a derived outbox row (``ports.storage_rules.derived_outbox``)."""
    return {
        "id": row.id,
        "environment": row.environment.name,
        "run_id": row.run_id,
        "queue": row.queue,
        "status": row.status._value_,
        "attempts": row.attempts,
        "message": row.message.to_wire(),
        "available_at": row.available_at,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
        "claim_token": row.claim_token,
        "claimed_at": row.claimed_at,
        "published_at": row.published_at,
    }


def _time(value: datetime | None) -> datetime | None:
    return None if value is None else utc_ms(value)


def outbox_from_row(row: Mapping[Any, Any]) -> OutboxMessage:
    last_error = row["last_error"]
    return OutboxMessage(
        id=row["id"],
        environment=Environment(row["environment"]),
        run_id=row["run_id"],
        queue=row["queue"],
        message=DeliveryMessage.from_wire(row["message"]),
        status=OutboxMessageStatus(row["status"]),
        attempts=row["attempts"],
        available_at=utc_ms(row["available_at"]),
        created_at=utc_ms(row["created_at"]),
        updated_at=utc_ms(row["updated_at"]),
        claim_token=row["claim_token"],
        claimed_at=_time(row["claimed_at"]),
        published_at=_time(row["published_at"]),
        provider_message_id=row["provider_message_id"],
        last_error=None if last_error is None else OutboxFailureRecord.from_wire(last_error),
    )
