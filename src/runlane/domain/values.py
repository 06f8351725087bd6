"""Small immutable values shared by events, records, storage and transport."""

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runlane.domain.errors import RunlaneError
from runlane.domain.ids import IdKind, as_id
from runlane.domain.json_values import JsonValue, ensure_json_object, ensure_string_map
from runlane.domain.slot_init import slot_init
from runlane.domain.timestamps import from_wire_time, to_wire_time, utc_ms
from runlane.domain.vocabulary import ActorType, ErrorCode, RunSourceType
from runlane.domain.wire import (
    compact,
    parse_enum,
    parse_time_or_none,
    require,
    require_mapping,
    time_or_none,
)


def _set(obj: object, name: str, value: object) -> None:
    object.__setattr__(obj, name, value)


@slot_init
@dataclass(frozen=True, slots=True)
class Environment:
    """The durable scope of every run, event, wakeup and read."""

    name: str = "default"

    def __post_init__(self) -> None:
        as_id(IdKind.ENVIRONMENT, self.name)

    def to_wire(self) -> dict[str, Any]:
        return {"name": self.name}

    @classmethod
    def from_wire(cls, data: object) -> "Environment":
        name = require(require_mapping(data, "environment"), "name", "environment")
        known = _ENVIRONMENTS.get(name) if type(name) is str else None
        if known is None:
            known = cls(name=name)
            if len(_ENVIRONMENTS) < _MAX_KNOWN_ENVIRONMENTS:
                _ENVIRONMENTS[name] = known
        return known


# Every stored run, event and message names its environment: equal values, so one instance each.
_ENVIRONMENTS: dict[str, Environment] = {}
_MAX_KNOWN_ENVIRONMENTS = 256


@slot_init
@dataclass(frozen=True, slots=True)
class Actor:
    type: ActorType = ActorType.SYSTEM
    id: str | None = None

    def __post_init__(self) -> None:
        try:
            _set(self, "type", ActorType(self.type))
        except ValueError as exc:
            raise RunlaneError(ErrorCode.VALIDATION_FAILED, f"Unknown actor type {self.type!r}.") from exc
        if self.id is not None and (not isinstance(self.id, str) or not self.id):
            raise RunlaneError(ErrorCode.VALIDATION_FAILED, "actor id must be a non-empty string.")

    def to_wire(self) -> dict[str, Any]:
        if self.id is None:
            return {"type": self.type._value_}
        return {"type": self.type._value_, "id": self.id}

    @classmethod
    def from_wire(cls, data: object) -> "Actor":
        mapping = require_mapping(data, "actor")
        return cls(type=require(mapping, "type", "actor"), id=mapping.get("id"))


SYSTEM_ACTOR = Actor(ActorType.SYSTEM)
OPERATOR_ACTOR = Actor(ActorType.OPERATOR)


@slot_init
@dataclass(frozen=True, slots=True)
class RunSource:
    """Why a run exists; child runs (rerun, manual retry) point at their source run."""

    type: RunSourceType = RunSourceType.TRIGGER
    source_run_id: str | None = None
    schedule_id: str | None = None
    occurrence_id: str | None = None

    def __post_init__(self) -> None:
        _set(self, "type", parse_enum(RunSourceType, self.type, "source type"))
        if self.source_run_id is not None:
            as_id(IdKind.RUN, self.source_run_id)

    def to_wire(self) -> dict[str, Any]:
        if self.source_run_id is None and self.schedule_id is None and self.occurrence_id is None:
            return {"type": self.type._value_}
        return compact(
            {
                "type": self.type._value_,
                "sourceRunId": self.source_run_id,
                "scheduleId": self.schedule_id,
                "occurrenceId": self.occurrence_id,
            }
        )

    @classmethod
    def from_wire(cls, data: object) -> "RunSource":
        mapping = require_mapping(data, "source")
        if len(mapping) == 1 and cls is RunSource:
            # ``{"type": "trigger"}`` on almost every stored run: one shared (immutable) value per type.
            source_type = mapping.get("type")
            plain = _PLAIN_SOURCES.get(source_type) if type(source_type) is str else None
            if plain is not None:
                return plain
        return cls(
            type=require(mapping, "type", "source"),
            source_run_id=mapping.get("sourceRunId"),
            schedule_id=mapping.get("scheduleId"),
            occurrence_id=mapping.get("occurrenceId"),
        )


# A source with nothing but its type, per type (``RunSource.from_wire``).
_PLAIN_SOURCES = {source_type.value: RunSource(source_type) for source_type in RunSourceType}


@slot_init
@dataclass(frozen=True, slots=True)
class Lease:
    """Durable execution ownership of one attempt."""

    worker_id: str
    claimed_at: datetime
    expires_at: datetime
    heartbeat_at: datetime

    def __post_init__(self) -> None:
        as_id(IdKind.WORKER, self.worker_id)
        _set(self, "claimed_at", utc_ms(self.claimed_at, field="claimed_at"))
        _set(self, "expires_at", utc_ms(self.expires_at, field="expires_at"))
        _set(self, "heartbeat_at", utc_ms(self.heartbeat_at, field="heartbeat_at"))

    def is_expired(self, now: datetime) -> bool:
        return self.expires_at <= now

    def to_wire(self) -> dict[str, Any]:
        return {
            "workerId": self.worker_id,
            "claimedAt": to_wire_time(self.claimed_at),
            "expiresAt": to_wire_time(self.expires_at),
            "heartbeatAt": to_wire_time(self.heartbeat_at),
        }

    @classmethod
    def from_wire(cls, data: object) -> "Lease":
        m = require_mapping(data, "lease")
        return cls(
            worker_id=require(m, "workerId", "lease"),
            claimed_at=from_wire_time(require(m, "claimedAt", "lease"), field="claimedAt"),
            expires_at=from_wire_time(require(m, "expiresAt", "lease"), field="expiresAt"),
            heartbeat_at=from_wire_time(require(m, "heartbeatAt", "lease"), field="heartbeatAt"),
        )


@slot_init
@dataclass(frozen=True, slots=True)
class RunFailure:
    """A sanitized failure: a runlane code, task-facing text, and JSON-safe detail (never the cause)."""

    code: ErrorCode
    message: str
    retryable: bool
    meta: dict[str, JsonValue] | None = None
    occurred_at: datetime | None = None

    def __post_init__(self) -> None:
        _set(self, "code", parse_enum(ErrorCode, self.code, "failure code"))
        if self.meta is not None:
            _set(self, "meta", ensure_json_object(self.meta, field="failure meta"))
        if self.occurred_at is not None:
            _set(self, "occurred_at", utc_ms(self.occurred_at, field="occurred_at"))

    def to_wire(self) -> dict[str, Any]:
        return compact(
            {
                "code": self.code.value,
                "message": self.message,
                "retryable": self.retryable,
                "meta": self.meta,
                "occurredAt": time_or_none(self.occurred_at),
            }
        )

    @classmethod
    def from_wire(cls, data: object) -> "RunFailure":
        m = require_mapping(data, "failure")
        return cls(
            code=require(m, "code", "failure"),
            message=require(m, "message", "failure"),
            retryable=bool(m.get("retryable", False)),
            meta=m.get("meta"),
            occurred_at=parse_time_or_none(m.get("occurredAt"), "occurredAt"),
        )


@dataclass(frozen=True, slots=True)
class OutboxFailureRecord:
    code: ErrorCode
    message: str
    occurred_at: datetime
    retryable: bool
    meta: dict[str, JsonValue] | None = None

    def __post_init__(self) -> None:
        _set(self, "code", parse_enum(ErrorCode, self.code, "error code"))
        _set(self, "occurred_at", utc_ms(self.occurred_at, field="occurred_at"))
        if self.meta is not None:
            _set(self, "meta", ensure_json_object(self.meta, field="failure meta"))

    def to_wire(self) -> dict[str, Any]:
        return compact(
            {
                "code": self.code.value,
                "message": self.message,
                "meta": self.meta,
                "occurredAt": to_wire_time(self.occurred_at),
                "retryable": self.retryable,
            }
        )

    @classmethod
    def from_wire(cls, data: object) -> "OutboxFailureRecord":
        m = require_mapping(data, "error")
        return cls(
            code=require(m, "code", "error"),
            message=require(m, "message", "error"),
            occurred_at=from_wire_time(require(m, "occurredAt", "error"), field="occurredAt"),
            retryable=bool(m.get("retryable", False)),
            meta=m.get("meta"),
        )


@slot_init
@dataclass(frozen=True, slots=True)
class DeliveryIntent:
    """What a ``run.delivery_requested`` event asks for; storage derives one outbox row from it."""

    run_id: str
    environment: Environment
    queue: str
    requested_at: datetime
    available_at: datetime
    trace_carrier: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.environment, Environment):
            raise RunlaneError(ErrorCode.VALIDATION_FAILED, "delivery environment must be an Environment.")
        as_id(IdKind.RUN, self.run_id)
        as_id(IdKind.QUEUE, self.queue)
        _set(self, "requested_at", utc_ms(self.requested_at, field="requested_at"))
        _set(self, "available_at", utc_ms(self.available_at, field="available_at"))
        if self.trace_carrier is not None:
            _set(self, "trace_carrier", ensure_string_map(self.trace_carrier))

    def to_message(self) -> "DeliveryMessage":
        return DeliveryMessage(
            environment=self.environment,
            run_id=self.run_id,
            queue=self.queue,
            requested_at=self.requested_at,
            trace_carrier=self.trace_carrier,
        )

    def to_wire(self) -> dict[str, Any]:
        return compact(
            {
                "availableAt": to_wire_time(self.available_at),
                "environment": self.environment.to_wire(),
                "queue": self.queue,
                "requestedAt": to_wire_time(self.requested_at),
                "runId": self.run_id,
                "traceCarrier": self.trace_carrier,
            }
        )

    @classmethod
    def from_wire(cls, data: object) -> "DeliveryIntent":
        m = require_mapping(data, "delivery")
        return cls(
            run_id=require(m, "runId", "delivery"),
            environment=Environment.from_wire(require(m, "environment", "delivery")),
            queue=require(m, "queue", "delivery"),
            requested_at=from_wire_time(require(m, "requestedAt", "delivery"), field="requestedAt"),
            available_at=from_wire_time(require(m, "availableAt", "delivery"), field="availableAt"),
            trace_carrier=m.get("traceCarrier"),
        )


@dataclass(frozen=True, slots=True)
class DeliveryMessage:
    """A wakeup: environment, run id, queue, request time and trace context; never payloads."""

    environment: Environment
    run_id: str
    queue: str
    requested_at: datetime | None = None
    trace_carrier: dict[str, str] | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.environment, Environment):
            raise RunlaneError(ErrorCode.VALIDATION_FAILED, "environment must be an Environment.")
        as_id(IdKind.RUN, self.run_id)
        as_id(IdKind.QUEUE, self.queue)
        if self.requested_at is not None:
            _set(self, "requested_at", utc_ms(self.requested_at, field="requested_at"))
        if self.trace_carrier is not None:
            _set(self, "trace_carrier", ensure_string_map(self.trace_carrier))

    def to_wire(self) -> dict[str, Any]:
        """camelCase keys in the envelope order: environment, queue, runId, requestedAt, traceCarrier."""
        return compact(
            {
                "environment": self.environment.to_wire(),
                "queue": self.queue,
                "runId": self.run_id,
                "requestedAt": time_or_none(self.requested_at),
                "traceCarrier": self.trace_carrier,
            }
        )

    @classmethod
    def from_wire(cls, data: object, *, code: ErrorCode = ErrorCode.VALIDATION_FAILED) -> "DeliveryMessage":
        """Strict: unknown keys are rejected (the environment object ignores extra keys)."""
        if not isinstance(data, Mapping):
            raise RunlaneError(code, "Delivery message must be an object.")
        unknown = set(data) - {"environment", "queue", "runId", "requestedAt", "traceCarrier"}
        if unknown:
            raise RunlaneError(
                code,
                f"Delivery message field {sorted(unknown)[0]!r} is not supported.",
                meta={"field": sorted(unknown)[0]},
            )
        try:
            env = data.get("environment")
            if not isinstance(env, Mapping) or not isinstance(env.get("name"), str):
                raise RunlaneError(code, "Delivery message environment must be an object with a string name.")
            for key in ("runId", "queue"):
                if not isinstance(data.get(key), str):
                    raise RunlaneError(code, f"Delivery message {key} must be a string.", meta={"field": key})
            requested = data.get("requestedAt")
            if requested is not None and not isinstance(requested, str):
                raise RunlaneError(code, "Delivery message requestedAt must be a date string.")
            carrier = data.get("traceCarrier")
            return cls(
                environment=Environment(env["name"]),
                run_id=data["runId"],
                queue=data["queue"],
                requested_at=None if requested is None else from_wire_time(requested, field="requestedAt"),
                trace_carrier=None if carrier is None else ensure_string_map(carrier),
            )
        except RunlaneError as exc:
            if exc.code is code:
                raise
            raise RunlaneError(code, exc.message, meta=exc.meta) from exc
