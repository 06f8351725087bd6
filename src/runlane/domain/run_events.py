"""Run events: the append-only history every run state is folded from."""

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

from runlane.domain.errors import RunlaneError
from runlane.domain.ids import IdKind, as_id, as_optional_id
from runlane.domain.json_values import JsonValue, ensure_json_object, ensure_json_value, ensure_string_map
from runlane.domain.slot_init import slot_copier, slot_init, slot_setter
from runlane.domain.timestamps import from_wire_time, to_wire_time, utc_ms
from runlane.domain.values import (
    SYSTEM_ACTOR,
    Actor,
    DeliveryIntent,
    Environment,
    Lease,
    RunFailure,
    RunSource,
)
from runlane.domain.vocabulary import ErrorCode, RunEventType
from runlane.domain.wire import parse_time_or_none, require, require_mapping

# Fields each event type must carry (beyond the common ones).
_REQUIRED: dict[RunEventType, tuple[str, ...]] = {
    RunEventType.CREATED: ("task_id", "queue"),
    RunEventType.DELIVERY_REQUESTED: ("delivery",),
    RunEventType.LEASE_CLAIMED: ("lease",),
    RunEventType.SUCCEEDED: (),
    RunEventType.RETRY_SCHEDULED: ("failure", "run_at"),
    RunEventType.FAILED: ("failure",),
    RunEventType.RELEASED: ("run_at",),
    RunEventType.CANCELLATION_REQUESTED: (),
    RunEventType.CANCELLED: (),
    RunEventType.LEASE_EXPIRED: ("failure",),
}
# Fields an event type may carry; anything else set is a contract violation.
_ALLOWED: dict[RunEventType, frozenset[str]] = {
    RunEventType.CREATED: frozenset(
        {
            "task_id",
            "queue",
            "payload",
            "source",
            "idempotency_key",
            "idempotency_key_ttl",
            "singleton_key",
            "concurrency_key",
            "run_at",
            "trace_carrier",
            "meta",
        }
    ),
    RunEventType.DELIVERY_REQUESTED: frozenset({"delivery"}),
    RunEventType.LEASE_CLAIMED: frozenset({"lease"}),
    RunEventType.SUCCEEDED: frozenset(),
    RunEventType.RETRY_SCHEDULED: frozenset({"failure", "run_at"}),
    RunEventType.FAILED: frozenset({"failure"}),
    RunEventType.RELEASED: frozenset({"run_at", "reason", "meta"}),
    RunEventType.CANCELLATION_REQUESTED: frozenset({"reason", "trace_carrier", "meta"}),
    RunEventType.CANCELLED: frozenset({"reason", "trace_carrier", "meta"}),
    RunEventType.LEASE_EXPIRED: frozenset({"failure", "run_at"}),
}
_COMMON = frozenset({"type", "run_id", "environment", "occurred_at", "actor", "id", "sequence"})
# Value types checked on construction, so a malformed event fails here and not inside the reducer.
_VALUE_TYPES: dict[str, type] = {
    "environment": Environment,
    "actor": Actor,
    "source": RunSource,
    "delivery": DeliveryIntent,
    "lease": Lease,
    "failure": RunFailure,
    "reason": str,
    "idempotency_key_ttl": str,
}
_REQUIRED_VALUES = frozenset({"environment", "actor"})
_WIRE_NAMES = {
    "task_id": "taskId",
    "queue": "queue",
    "payload": "payload",
    "source": "source",
    "idempotency_key": "idempotencyKey",
    "idempotency_key_ttl": "idempotencyKeyTTL",
    "singleton_key": "singletonKey",
    "concurrency_key": "concurrencyKey",
    "run_at": "runAt",
    "trace_carrier": "traceCarrier",
    "meta": "meta",
    "delivery": "delivery",
    "lease": "lease",
    "failure": "failure",
    "reason": "reason",
}


@slot_init
@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent:
    """One change to one run. Type-specific fields are optional here and checked per ``type``."""

    type: RunEventType
    run_id: str
    environment: Environment
    occurred_at: datetime
    actor: Actor = SYSTEM_ACTOR
    task_id: str | None = None
    queue: str | None = None
    payload: JsonValue = None
    source: RunSource | None = None
    idempotency_key: str | None = None
    idempotency_key_ttl: str | None = None
    singleton_key: str | None = None
    concurrency_key: str | None = None
    run_at: datetime | None = None
    trace_carrier: dict[str, str] | None = None
    meta: dict[str, JsonValue] | None = None
    delivery: DeliveryIntent | None = None
    lease: Lease | None = None
    failure: RunFailure | None = None
    reason: str | None = None

    def __post_init__(self) -> None:
        code = ErrorCode.INVARIANT_VIOLATION
        event_type = self.type
        if type(event_type) is not RunEventType:
            try:
                event_type = RunEventType(event_type)
            except ValueError as exc:
                raise RunlaneError(code, f"Unknown run event type {self.type!r}.") from exc
            object.__setattr__(self, "type", event_type)
        as_id(IdKind.RUN, self.run_id, code=code)
        typed = _typed_values(self)
        # Common case: exact environment and actor, no optional value object (else checked one by one).
        if not (
            type(typed[0]) is Environment and type(typed[1]) is Actor and typed[2:] == _NO_OPTIONAL_VALUES
        ):
            _check_value_types(event_type, typed)
        occurred_at = self.occurred_at
        if not (
            type(occurred_at) is datetime
            and occurred_at.tzinfo is UTC
            and occurred_at.microsecond % 1000 == 0
        ):
            object.__setattr__(self, "occurred_at", utc_ms(occurred_at, field="occurred_at", code=code))
        if self.run_at is not None:
            object.__setattr__(self, "run_at", utc_ms(self.run_at, field="run_at", code=code))
        for name in _REQUIRED[event_type]:
            if getattr(self, name) is None:
                raise RunlaneError(code, f"{event_type.value} event requires {name}.")
        forbidden = _FORBIDDEN_VALUES[event_type](self)
        if forbidden != _NO_FORBIDDEN_VALUES[event_type]:
            for name, value in zip(_FORBIDDEN[event_type], forbidden, strict=True):
                if value is not None:
                    raise RunlaneError(code, f"{event_type.value} event does not carry {name}.")
        if event_type is RunEventType.CREATED:
            as_id(IdKind.TASK, self.task_id, code=code)
            as_id(IdKind.QUEUE, self.queue, code=code)
            as_optional_id(IdKind.IDEMPOTENCY_KEY, self.idempotency_key, code=code)
            as_optional_id(IdKind.SINGLETON_KEY, self.singleton_key, code=code)
            as_optional_id(IdKind.CONCURRENCY_KEY, self.concurrency_key, code=code)
            object.__setattr__(self, "payload", ensure_json_value(self.payload, field="payload", code=code))
        if self.meta is not None:
            object.__setattr__(self, "meta", ensure_json_object(self.meta, code=code))
        if self.trace_carrier is not None:
            object.__setattr__(self, "trace_carrier", ensure_string_map(self.trace_carrier, code=code))
        if self.delivery is not None and self.delivery.run_id != self.run_id:
            raise RunlaneError(code, "delivery intent belongs to another run.")
        if self.delivery is not None and self.delivery.environment != self.environment:
            raise RunlaneError(code, "delivery intent belongs to another environment.")

    def to_wire(self) -> dict[str, Any]:
        return _fill_wire(self, {})

    @classmethod
    def from_wire(cls, data: object) -> "RunEvent":
        return cls(**_event_kwargs(data))


def _fill_wire(event: RunEvent, wire: dict[str, Any]) -> dict[str, Any]:
    """Add ``event``'s wire fields to ``wire`` (a record's ``id`` and ``sequence`` come first)."""
    event_type = event.type
    wire["type"] = event_type._value_
    wire["runId"] = event.run_id
    wire["environment"] = event.environment.to_wire()
    wire["occurredAt"] = to_wire_time(event.occurred_at)
    wire["actor"] = event.actor.to_wire()
    for name, wire_name, convert in _WIRE_FIELDS[event_type]:
        value = getattr(event, name)
        if value is None:
            if name == "payload":  # run.created always carries its payload, null included
                wire[wire_name] = None
            continue
        if convert:
            value = to_wire_time(value) if isinstance(value, datetime) else value.to_wire()
        wire[wire_name] = value
    return wire


@slot_init
@dataclass(frozen=True, slots=True, kw_only=True)
class RunEventRecord(RunEvent):
    """A persisted event: the event plus the identity storage assigned (``id``, 1-based ``sequence``)."""

    id: str = field(default="")
    sequence: int = field(default=0)

    def __post_init__(self) -> None:
        RunEvent.__post_init__(self)
        if (
            not self.id
            or isinstance(self.sequence, bool)
            or not isinstance(self.sequence, int)
            or self.sequence < 1
        ):
            raise RunlaneError(ErrorCode.INVARIANT_VIOLATION, "event records need an id and a sequence >= 1.")

    @classmethod
    def of(cls, event: RunEvent, *, id: str, sequence: int) -> "RunEventRecord":
        """Attach storage identity to an already validated event (no second validation pass)."""
        if not isinstance(event, RunEvent):
            raise RunlaneError(ErrorCode.INVARIANT_VIOLATION, "RunEventRecord.of needs a RunEvent.")
        if not id or isinstance(sequence, bool) or not isinstance(sequence, int) or sequence < 1:
            raise RunlaneError(ErrorCode.INVARIANT_VIOLATION, "event records need an id and a sequence >= 1.")
        record = object.__new__(cls)
        _copy_event_fields(event, record)
        _set_record_id(record, id)
        _set_record_sequence(record, sequence)
        return record

    def to_event(self) -> RunEvent:
        event = object.__new__(RunEvent)
        _copy_event_fields(self, event)
        return event

    def to_wire(self) -> dict[str, Any]:
        return _fill_wire(self, {"id": self.id, "sequence": self.sequence})

    @classmethod
    def from_wire(cls, data: object) -> "RunEventRecord":
        mapping = require_mapping(data, "event")
        return cls(
            **_event_kwargs(mapping),
            id=require(mapping, "id", "event"),
            sequence=require(mapping, "sequence", "event"),
        )


def _event_kwargs(data: object) -> dict[str, Any]:
    m = require_mapping(data, "event")
    kwargs: dict[str, Any] = {
        "type": require(m, "type", "event"),  # unknown types fail in RunEvent.__post_init__
        "run_id": require(m, "runId", "event"),
        "environment": Environment.from_wire(require(m, "environment", "event")),
        "occurred_at": from_wire_time(require(m, "occurredAt", "event"), field="occurredAt"),
        "actor": Actor.from_wire(m["actor"]) if m.get("actor") is not None else SYSTEM_ACTOR,
        "task_id": m.get("taskId"),
        "queue": m.get("queue"),
        "payload": m.get("payload"),
        "source": RunSource.from_wire(m["source"]) if m.get("source") is not None else None,
        "idempotency_key": m.get("idempotencyKey"),
        "idempotency_key_ttl": m.get("idempotencyKeyTTL"),
        "singleton_key": m.get("singletonKey"),
        "concurrency_key": m.get("concurrencyKey"),
        "run_at": parse_time_or_none(m.get("runAt"), "runAt"),
        "trace_carrier": m.get("traceCarrier"),
        "meta": m.get("meta"),
        "delivery": DeliveryIntent.from_wire(m["delivery"]) if m.get("delivery") is not None else None,
        "lease": Lease.from_wire(m["lease"]) if m.get("lease") is not None else None,
        "failure": RunFailure.from_wire(m["failure"]) if m.get("failure") is not None else None,
        "reason": m.get("reason"),
    }
    return kwargs


_EVENT_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RunEvent))
# Fields an event type must leave empty, precomputed so validation is one pass over few names.
_FORBIDDEN: dict[RunEventType, tuple[str, ...]] = {
    event_type: tuple(name for name in _EVENT_FIELDS if name not in _COMMON and name not in allowed)
    for event_type, allowed in _ALLOWED.items()
}


def _values_of(names: tuple[str, ...]) -> Callable[[object], tuple[Any, ...]]:
    """``attrgetter`` that always returns a tuple (one C call for many fields)."""
    if len(names) >= 2:
        return attrgetter(*names)
    return lambda obj: tuple(getattr(obj, name) for name in names)


_FORBIDDEN_VALUES = {event_type: _values_of(names) for event_type, names in _FORBIDDEN.items()}
# All-``None`` tuples the checks compare with: a tuple comparison matches ``None`` by identity, where
# ``tuple.count(None)`` called each set value's ``__eq__`` (Python code on a dataclass).
_NO_FORBIDDEN_VALUES = {event_type: (None,) * len(names) for event_type, names in _FORBIDDEN.items()}
# Value-typed fields, in check order; ``environment`` and ``actor`` (required) come first.
_TYPED_FIELDS: tuple[tuple[str, type], ...] = tuple(_VALUE_TYPES.items())
_TYPED_OPTIONAL = tuple(name for name, _ in _TYPED_FIELDS if name not in _REQUIRED_VALUES)
_NO_OPTIONAL_VALUES = (None,) * len(_TYPED_OPTIONAL)
_typed_values = _values_of(tuple(name for name, _ in _TYPED_FIELDS))
assert tuple(name for name, _ in _TYPED_FIELDS[:2]) == ("environment", "actor")


def _check_value_types(event_type: RunEventType, values: tuple[Any, ...]) -> None:
    for (name, value_type), value in zip(_TYPED_FIELDS, values, strict=True):
        if (value is not None or name in _REQUIRED_VALUES) and not isinstance(value, value_type):
            raise RunlaneError(
                ErrorCode.INVARIANT_VIOLATION,
                f"{event_type.value} event {name} must be a {value_type.__name__}.",
            )


# Per type, in wire (sorted) order: (field, wire name, whether it needs converting: a datetime
# or a value object with ``to_wire``; the other fields are already plain JSON).
_CONVERTED = frozenset({"run_at", "source", "delivery", "lease", "failure"})
_WIRE_FIELDS: dict[RunEventType, tuple[tuple[str, str, bool], ...]] = {
    event_type: tuple((name, _WIRE_NAMES[name], name in _CONVERTED) for name in sorted(allowed))
    for event_type, allowed in _ALLOWED.items()
}


# Copy every ``RunEvent`` field (``RunEventRecord.of``, ``to_event``) without re-validating.
_copy_event_fields = slot_copier(RunEvent, _EVENT_FIELDS)
_set_record_id = slot_setter(RunEventRecord, "id")
_set_record_sequence = slot_setter(RunEventRecord, "sequence")
