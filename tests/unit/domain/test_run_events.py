"""RunEvent: per-type required and allowed fields, validation, and the camelCase wire shape."""

import json
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.values import (
    OPERATOR_ACTOR,
    SYSTEM_ACTOR,
    Actor,
    DeliveryIntent,
    Environment,
    RunSource,
)
from runlane.domain.vocabulary import ErrorCode, RunEventType, RunSourceType
from tests.unit.domain.builders import (
    ENV,
    OTHER_ENV,
    RUN_ID,
    T0,
    at,
    cancellation_requested,
    cancelled,
    created,
    delivery_requested,
    failed,
    failure,
    lease,
    lease_claimed,
    lease_expired,
    raises_code,
    released,
    retry_scheduled,
    succeeded,
)
from tests.unit.domain.strategies import (
    PROPERTY_SETTINGS,
    actors,
    ids,
    json_objects,
    json_values,
    start_times,
    trace_carriers,
)

E = RunEventType
INVARIANT = ErrorCode.INVARIANT_VIOLATION

# Type-specific fields every event type needs (model-and-reducer.md §2 and python-mapping.md §4).
REQUIRED_FIELDS: dict[RunEventType, tuple[str, ...]] = {
    E.CREATED: ("task_id", "queue"),
    E.DELIVERY_REQUESTED: ("delivery",),
    E.LEASE_CLAIMED: ("lease",),
    E.SUCCEEDED: (),
    E.RETRY_SCHEDULED: ("failure", "run_at"),
    E.FAILED: ("failure",),
    E.RELEASED: ("run_at",),
    E.CANCELLATION_REQUESTED: (),
    E.CANCELLED: (),
    E.LEASE_EXPIRED: ("failure",),
}

# A valid example of every type, later re-used with fields added or removed.
EXAMPLES: dict[RunEventType, RunEvent] = {
    E.CREATED: created(run_at=at(60), idempotency_key="k", meta={"a": 1}, trace_carrier={"traceparent": "t"}),
    E.DELIVERY_REQUESTED: delivery_requested(occurred_at=at(1), available_at=at(30)),
    E.LEASE_CLAIMED: lease_claimed(occurred_at=at(1)),
    E.SUCCEEDED: succeeded(occurred_at=at(2)),
    E.RETRY_SCHEDULED: retry_scheduled(occurred_at=at(2), run_at=at(32)),
    E.FAILED: failed(occurred_at=at(2)),
    E.RELEASED: released(occurred_at=at(2), run_at=at(62), reason="waiting_for_export"),
    E.CANCELLATION_REQUESTED: cancellation_requested(occurred_at=at(2)),
    E.CANCELLED: cancelled(occurred_at=at(2)),
    E.LEASE_EXPIRED: lease_expired(occurred_at=at(40), run_at=at(70)),
}

# One value per type-specific field, to try it on event types that do not carry it.
FOREIGN_VALUES: dict[str, Any] = {
    "task_id": "emails.welcome",
    "queue": "default",
    "source": RunSource(),
    "idempotency_key": "k",
    "idempotency_key_ttl": "30d",
    "singleton_key": "s",
    "concurrency_key": "c",
    "run_at": at(100),
    "trace_carrier": {"traceparent": "t"},
    "meta": {"a": 1},
    "delivery": DeliveryIntent(RUN_ID, ENV, "default", at(1), at(1)),
    "lease": lease(at(1)),
    "failure": failure(),
    "reason": "because",
    "payload": {"x": 1},
}
ALLOWED_FIELDS: dict[RunEventType, set[str]] = {
    E.CREATED: {
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
    },
    E.DELIVERY_REQUESTED: {"delivery"},
    E.LEASE_CLAIMED: {"lease"},
    E.SUCCEEDED: set(),
    E.RETRY_SCHEDULED: {"failure", "run_at"},
    E.FAILED: {"failure"},
    E.RELEASED: {"run_at", "reason", "meta"},
    E.CANCELLATION_REQUESTED: {"reason", "trace_carrier", "meta"},
    E.CANCELLED: {"reason", "trace_carrier", "meta"},
    E.LEASE_EXPIRED: {"failure", "run_at"},
}


def kwargs_of(event: RunEvent) -> dict[str, Any]:
    return {name: getattr(event, name) for name in RunEvent.__dataclass_fields__}


def test_every_event_type_has_an_example() -> None:
    assert set(EXAMPLES) == set(RunEventType)


@pytest.mark.parametrize(
    ("event_type", "field"),
    [(event_type, name) for event_type, names in REQUIRED_FIELDS.items() for name in names],
)
def test_missing_type_specific_fields_are_rejected(event_type: RunEventType, field: str) -> None:
    kwargs = kwargs_of(EXAMPLES[event_type])
    kwargs[field] = None
    error = raises_code(INVARIANT, RunEvent, **kwargs)
    assert field in error.message


@pytest.mark.parametrize(
    ("event_type", "field"),
    [
        (event_type, name)
        for event_type in RunEventType
        for name in FOREIGN_VALUES
        if name not in ALLOWED_FIELDS[event_type]
    ],
)
def test_fields_a_type_does_not_carry_are_rejected(event_type: RunEventType, field: str) -> None:
    kwargs = kwargs_of(EXAMPLES[event_type])
    kwargs[field] = FOREIGN_VALUES[field]
    error = raises_code(INVARIANT, RunEvent, **kwargs)
    assert field in error.message


@pytest.mark.parametrize("event_type", list(RunEventType))
def test_optional_allowed_fields_may_be_set(event_type: RunEventType) -> None:
    kwargs = kwargs_of(EXAMPLES[event_type])
    for name in ALLOWED_FIELDS[event_type]:
        if kwargs[name] is None and name in FOREIGN_VALUES:
            kwargs[name] = FOREIGN_VALUES[name]
    assert RunEvent(**kwargs).type is event_type


def test_string_types_are_normalised_and_unknown_types_rejected() -> None:
    event = RunEvent(type="run.succeeded", run_id=RUN_ID, environment=ENV, occurred_at=T0)  # type: ignore[arg-type]
    assert event.type is E.SUCCEEDED
    raises_code(INVARIANT, RunEvent, type="run.exploded", run_id=RUN_ID, environment=ENV, occurred_at=T0)


@pytest.mark.parametrize("run_id", ["", "run:1", None, 1])
def test_run_ids_are_validated(run_id: Any) -> None:
    raises_code(INVARIANT, RunEvent, type=E.SUCCEEDED, run_id=run_id, environment=ENV, occurred_at=T0)


def test_times_must_be_aware_and_are_truncated_to_milliseconds() -> None:
    raises_code(
        INVARIANT,
        RunEvent,
        type=E.SUCCEEDED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=datetime(2025, 1, 1),
    )
    raises_code(INVARIANT, released, occurred_at=T0, run_at=datetime(2025, 1, 1))
    event = released(occurred_at=T0 + timedelta(microseconds=1_999), run_at=T0 + timedelta(microseconds=999))
    assert event.occurred_at == T0 + timedelta(milliseconds=1)
    assert event.run_at == T0


@pytest.mark.parametrize(
    "fields",
    [
        {"task_id": "emails:welcome"},
        {"task_id": ""},
        {"queue": "a:b"},
        {"idempotency_key": "user:1"},
        {"singleton_key": ""},
        {"concurrency_key": "a:b"},
        {"payload": {"x": float("nan")}},
        {"payload": {1, 2}},
        {"meta": ["not", "an", "object"]},
        {"meta": {"x": object()}},
        {"trace_carrier": {"traceparent": 1}},
        {"idempotency_key_ttl": 30},
        {"source": "trigger"},
    ],
)
def test_created_event_values_are_validated(fields: dict[str, Any]) -> None:
    raises_code(INVARIANT, created, **fields)


def test_created_payload_is_normalised_json() -> None:
    event = created(payload={"items": (1, 2)})
    assert event.payload == {"items": [1, 2]}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("environment", "default"),
        ("environment", None),
        ("actor", "system"),
        ("actor", None),
        ("reason", 5),
    ],
)
def test_common_value_types_are_checked(field: str, value: Any) -> None:
    kwargs = kwargs_of(EXAMPLES[E.CANCELLED])
    kwargs[field] = value
    raises_code(INVARIANT, RunEvent, **kwargs)


@pytest.mark.parametrize(
    ("event_type", "field", "value"),
    [
        (E.LEASE_CLAIMED, "lease", {"workerId": "w"}),
        (E.FAILED, "failure", "boom"),
        (E.DELIVERY_REQUESTED, "delivery", {"runId": RUN_ID}),
    ],
)
def test_type_specific_value_types_are_checked(event_type: RunEventType, field: str, value: Any) -> None:
    kwargs = kwargs_of(EXAMPLES[event_type])
    kwargs[field] = value
    raises_code(INVARIANT, RunEvent, **kwargs)


def test_delivery_must_belong_to_the_same_run_and_environment() -> None:
    intent = DeliveryIntent("run_2", ENV, "default", T0, T0)
    raises_code(
        INVARIANT,
        RunEvent,
        type=E.DELIVERY_REQUESTED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=T0,
        delivery=intent,
    )
    other_env = DeliveryIntent(RUN_ID, OTHER_ENV, "default", T0, T0)
    raises_code(
        INVARIANT,
        RunEvent,
        type=E.DELIVERY_REQUESTED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=T0,
        delivery=other_env,
    )


# --- wire ------------------------------------------------------------------------------------------


def test_created_event_wire_shape() -> None:
    event = created(
        occurred_at=at(0),
        payload={"userId": "u1"},
        source=RunSource(RunSourceType.SCHEDULE, schedule_id="nightly", occurrence_id="nightly@1"),
        idempotency_key="emails.welcome.u1",
        idempotency_key_ttl="active",
        singleton_key="s",
        concurrency_key="c",
        run_at=at(60),
        trace_carrier={"traceparent": "t"},
        meta={"origin": "api"},
    )
    assert event.to_wire() == {
        "type": "run.created",
        "runId": "run_1",
        "environment": {"name": "default"},
        "occurredAt": "2025-01-01T12:00:00.000Z",
        "actor": {"type": "system"},
        "taskId": "emails.welcome",
        "queue": "default",
        "payload": {"userId": "u1"},
        "source": {"type": "schedule", "scheduleId": "nightly", "occurrenceId": "nightly@1"},
        "idempotencyKey": "emails.welcome.u1",
        "idempotencyKeyTTL": "active",
        "singletonKey": "s",
        "concurrencyKey": "c",
        "runAt": "2025-01-01T12:01:00.000Z",
        "traceCarrier": {"traceparent": "t"},
        "meta": {"origin": "api"},
    }


def test_created_event_always_carries_its_payload_even_when_null() -> None:
    wire = created(payload=None).to_wire()
    assert wire["payload"] is None
    assert "payload" not in succeeded(occurred_at=T0).to_wire()


def test_minimal_events_omit_absent_fields() -> None:
    assert succeeded(occurred_at=T0).to_wire() == {
        "type": "run.succeeded",
        "runId": "run_1",
        "environment": {"name": "default"},
        "occurredAt": "2025-01-01T12:00:00.000Z",
        "actor": {"type": "system"},
    }


def test_delivery_requested_wire_shape() -> None:
    wire = delivery_requested(occurred_at=at(0), available_at=at(30)).to_wire()
    assert wire["delivery"] == {
        "availableAt": "2025-01-01T12:00:30.000Z",
        "environment": {"name": "default"},
        "queue": "default",
        "requestedAt": "2025-01-01T12:00:00.000Z",
        "runId": "run_1",
    }


def test_cancellation_wire_keeps_actor_reason_trace_and_meta() -> None:
    event = RunEvent(
        type=E.CANCELLED,
        run_id=RUN_ID,
        environment=ENV,
        occurred_at=T0,
        actor=OPERATOR_ACTOR,
        reason="duplicate",
        trace_carrier={"traceparent": "t"},
        meta={"ticket": 7},
    )
    wire = event.to_wire()
    assert wire["actor"] == {"type": "operator"}
    assert wire["reason"] == "duplicate"
    assert wire["traceCarrier"] == {"traceparent": "t"}
    assert wire["meta"] == {"ticket": 7}


@pytest.mark.parametrize("event_type", list(RunEventType))
def test_every_example_round_trips_through_json(event_type: RunEventType) -> None:
    event = EXAMPLES[event_type]
    wire = json.loads(json.dumps(event.to_wire()))
    assert RunEvent.from_wire(wire) == event
    record = RunEventRecord.of(event, id="evt_1", sequence=3)
    assert RunEventRecord.from_wire(json.loads(json.dumps(record.to_wire()))) == record


def test_missing_actor_on_the_wire_means_system() -> None:
    wire = succeeded(occurred_at=T0).to_wire()
    del wire["actor"]
    assert RunEvent.from_wire(wire).actor == SYSTEM_ACTOR


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda w: w.update(type="run.exploded"), INVARIANT),
        (lambda w: w.pop("type"), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.pop("runId"), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.pop("environment"), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.update(occurredAt="yesterday"), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.update(actor={"type": "robot"}), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.update(failure={"code": "nope", "message": "x"}), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.pop("failure"), INVARIANT),
        (lambda w: w.update(lease={"workerId": "w"}), ErrorCode.VALIDATION_FAILED),
    ],
)
def test_from_wire_rejects_malformed_events(mutate: Any, code: ErrorCode) -> None:
    wire = EXAMPLES[E.FAILED].to_wire()
    mutate(wire)
    raises_code(code, RunEvent.from_wire, wire)


@pytest.mark.parametrize("data", [None, [], "run.created"])
def test_from_wire_needs_an_object(data: Any) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, RunEvent.from_wire, data)


# --- records ---------------------------------------------------------------------------------------


def test_records_add_identity_and_convert_back() -> None:
    event = EXAMPLES[E.RELEASED]
    record = RunEventRecord.of(event, id="evt_9", sequence=4)
    assert record.id == "evt_9"
    assert record.sequence == 4
    assert record.to_event() == event
    assert RunEventRecord.of(event, id="evt_9", sequence=4) == record
    wire = record.to_wire()
    assert list(wire)[:2] == ["id", "sequence"]
    assert wire["sequence"] == 4


@pytest.mark.parametrize(
    ("id_", "sequence"), [("", 1), ("evt_1", 0), ("evt_1", -1), ("evt_1", True), ("evt_1", "1")]
)
def test_records_need_an_id_and_a_positive_integer_sequence(id_: str, sequence: Any) -> None:
    raises_code(INVARIANT, RunEventRecord.of, EXAMPLES[E.SUCCEEDED], id=id_, sequence=sequence)


def test_records_are_validated_like_events() -> None:
    kwargs = kwargs_of(EXAMPLES[E.SUCCEEDED])
    raises_code(INVARIANT, RunEventRecord, **{**kwargs, "failure": failure()}, id="evt_1", sequence=1)


def test_events_are_immutable() -> None:
    event = EXAMPLES[E.SUCCEEDED]
    with pytest.raises(AttributeError):
        event.run_id = "run_2"  # type: ignore[misc]
    assert replace(event, environment=Environment("x")).environment == Environment("x")


@PROPERTY_SETTINGS
@given(
    payload=json_values,
    meta=st.none() | json_objects,
    trace_carrier=st.none() | trace_carriers,
    keys=st.tuples(ids, st.none() | ids, st.none() | ids, st.none() | ids),
    actor=actors,
    occurred_at=start_times,
)
def test_created_events_with_any_json_round_trip_through_the_wire(
    payload: Any,
    meta: Any,
    trace_carrier: dict[str, str] | None,
    keys: tuple[str, str | None, str | None, str | None],
    actor: Actor,
    occurred_at: datetime,
) -> None:
    task_id, idempotency_key, singleton_key, concurrency_key = keys
    event = RunEvent(
        type=E.CREATED,
        run_id=f"run_{task_id}",
        environment=Environment(task_id),
        occurred_at=occurred_at,
        actor=actor,
        task_id=task_id,
        queue=task_id,
        payload=payload,
        idempotency_key=idempotency_key,
        singleton_key=singleton_key,
        concurrency_key=concurrency_key,
        trace_carrier=trace_carrier,
        meta=meta,
    )
    record = RunEventRecord.of(event, id="evt_1", sequence=1)
    assert RunEventRecord.from_wire(json.loads(json.dumps(record.to_wire(), allow_nan=False))) == record
