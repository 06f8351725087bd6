"""Small values: validation on construction and exact camelCase wire shapes."""

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.values import (
    OPERATOR_ACTOR,
    SYSTEM_ACTOR,
    Actor,
    DeliveryIntent,
    DeliveryMessage,
    Environment,
    Lease,
    OutboxFailureRecord,
    RunFailure,
    RunSource,
)
from runlane.domain.vocabulary import ActorType, ErrorCode, RunSourceType
from tests.unit.domain.builders import raises_code
from tests.unit.domain.strategies import PROPERTY_SETTINGS, ids, json_objects, start_times, trace_carriers

T = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
T_WIRE = "2025-01-02T03:04:05.678Z"


def wire_copy(data: Any) -> Any:
    """What a JSON column or message body would give back."""
    return json.loads(json.dumps(data, allow_nan=False))


# --- Environment -------------------------------------------------------------------------------


def test_environment_defaults_and_wire() -> None:
    assert Environment().name == "default"
    assert Environment("prod").to_wire() == {"name": "prod"}
    assert Environment.from_wire({"name": "prod"}) == Environment("prod")


@pytest.mark.parametrize("name", ["", "prod:eu", None, 5])
def test_environment_rejects_bad_names(name: object) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, Environment, name)


@pytest.mark.parametrize("data", [None, "prod", {}, {"name": None}, {"name": 5}, {"name": ""}])
def test_environment_from_wire_rejects_bad_shapes(data: object) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, Environment.from_wire, data)


# --- Actor -------------------------------------------------------------------------------------


def test_actor_defaults_and_wire() -> None:
    assert Actor() == SYSTEM_ACTOR
    assert SYSTEM_ACTOR.to_wire() == {"type": "system"}
    assert OPERATOR_ACTOR.to_wire() == {"type": "operator"}
    actor = Actor(ActorType.OPERATOR, "ops@example.com")
    assert actor.to_wire() == {"type": "operator", "id": "ops@example.com"}
    assert Actor.from_wire(actor.to_wire()) == actor
    assert Actor("user").type is ActorType.USER  # type: ignore[arg-type]


@pytest.mark.parametrize(("type_", "id_"), [("robot", None), (5, None), ("operator", ""), ("operator", 5)])
def test_actor_rejects_bad_values(type_: Any, id_: Any) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, Actor, type_, id_)


@pytest.mark.parametrize("data", [None, {}, {"type": "robot"}, {"type": "user", "id": ""}, "system"])
def test_actor_from_wire_rejects_bad_shapes(data: object) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, Actor.from_wire, data)


# --- RunSource ---------------------------------------------------------------------------------


def test_run_source_wire() -> None:
    assert RunSource().to_wire() == {"type": "trigger"}
    source = RunSource(RunSourceType.RERUN, source_run_id="run_parent")
    assert source.to_wire() == {"type": "rerun", "sourceRunId": "run_parent"}
    scheduled = RunSource(RunSourceType.SCHEDULE, schedule_id="nightly", occurrence_id="nightly@1")
    assert scheduled.to_wire() == {"type": "schedule", "scheduleId": "nightly", "occurrenceId": "nightly@1"}
    for value in (source, scheduled):
        assert RunSource.from_wire(wire_copy(value.to_wire())) == value


@pytest.mark.parametrize(("type_", "source_run_id"), [("cron_job", None), ("rerun", "a:b"), ("rerun", "")])
def test_run_source_rejects_bad_values(type_: Any, source_run_id: Any) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, RunSource, type_, source_run_id)


@pytest.mark.parametrize("data", [None, {}, {"type": "cron_job"}, [1]])
def test_run_source_from_wire_rejects_bad_shapes(data: object) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, RunSource.from_wire, data)


# --- Lease -------------------------------------------------------------------------------------


def test_lease_wire_and_expiry() -> None:
    lease = Lease("worker_1", T, T + timedelta(seconds=30), T + timedelta(seconds=10))
    assert lease.to_wire() == {
        "workerId": "worker_1",
        "claimedAt": T_WIRE,
        "expiresAt": "2025-01-02T03:04:35.678Z",
        "heartbeatAt": "2025-01-02T03:04:15.678Z",
    }
    assert Lease.from_wire(wire_copy(lease.to_wire())) == lease
    assert not lease.is_expired(T + timedelta(seconds=29, milliseconds=999))
    assert lease.is_expired(T + timedelta(seconds=30))


def test_lease_rejects_bad_values() -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, Lease, "worker:1", T, T, T)
    raises_code(ErrorCode.VALIDATION_FAILED, Lease, "worker_1", datetime(2025, 1, 1), T, T)
    raises_code(ErrorCode.VALIDATION_FAILED, Lease, "worker_1", T, "soon", T)
    raises_code(ErrorCode.VALIDATION_FAILED, Lease.from_wire, {"workerId": "w", "claimedAt": T_WIRE})
    raises_code(
        ErrorCode.VALIDATION_FAILED,
        Lease.from_wire,
        {"workerId": "w", "claimedAt": "later", "expiresAt": T_WIRE, "heartbeatAt": T_WIRE},
    )


# --- RunFailure / OutboxFailureRecord ----------------------------------------------------------


def test_run_failure_wire() -> None:
    failure = RunFailure(ErrorCode.TASK_FAILED, "Task failed", True, meta={"provider": "x"}, occurred_at=T)
    assert failure.to_wire() == {
        "code": "task_failed",
        "message": "Task failed",
        "retryable": True,
        "meta": {"provider": "x"},
        "occurredAt": T_WIRE,
    }
    assert RunFailure.from_wire(wire_copy(failure.to_wire())) == failure
    minimal = RunFailure("internal_error", "boom", False)  # type: ignore[arg-type]
    assert minimal.code is ErrorCode.INTERNAL_ERROR
    assert minimal.to_wire() == {"code": "internal_error", "message": "boom", "retryable": False}


def test_run_failure_rejects_bad_values() -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, RunFailure, "provider_said_no", "x", False)
    raises_code(ErrorCode.VALIDATION_FAILED, RunFailure, ErrorCode.TASK_FAILED, "x", False, meta={"a": {1}})
    raises_code(ErrorCode.VALIDATION_FAILED, RunFailure, ErrorCode.TASK_FAILED, "x", False, meta=[1])
    raises_code(
        ErrorCode.VALIDATION_FAILED, RunFailure, ErrorCode.TASK_FAILED, "x", False, None, datetime(2025, 1, 1)
    )
    raises_code(ErrorCode.VALIDATION_FAILED, RunFailure.from_wire, {"code": "nope", "message": "x"})
    raises_code(ErrorCode.VALIDATION_FAILED, RunFailure.from_wire, {"message": "x"})


def test_outbox_failure_record_wire() -> None:
    record = OutboxFailureRecord(
        ErrorCode.TRANSPORT_UNAVAILABLE, "throttled", T, True, meta={"awsCode": "Throttling"}
    )
    assert record.to_wire() == {
        "code": "transport_unavailable",
        "message": "throttled",
        "meta": {"awsCode": "Throttling"},
        "occurredAt": T_WIRE,
        "retryable": True,
    }
    assert OutboxFailureRecord.from_wire(wire_copy(record.to_wire())) == record


def test_outbox_failure_record_rejects_bad_values() -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, OutboxFailureRecord, "AccessDenied", "x", T, False)
    raises_code(
        ErrorCode.VALIDATION_FAILED,
        OutboxFailureRecord,
        ErrorCode.INTERNAL_ERROR,
        "x",
        datetime(2025, 1, 1),
        False,
    )
    raises_code(
        ErrorCode.VALIDATION_FAILED, OutboxFailureRecord.from_wire, {"code": "internal_error", "message": "x"}
    )


# --- DeliveryIntent ----------------------------------------------------------------------------


def test_delivery_intent_wire_and_message() -> None:
    intent = DeliveryIntent(
        "run_1", Environment("prod"), "emails", T, T + timedelta(minutes=1), {"traceparent": "t"}
    )
    assert intent.to_wire() == {
        "availableAt": "2025-01-02T03:05:05.678Z",
        "environment": {"name": "prod"},
        "queue": "emails",
        "requestedAt": T_WIRE,
        "runId": "run_1",
        "traceCarrier": {"traceparent": "t"},
    }
    assert DeliveryIntent.from_wire(wire_copy(intent.to_wire())) == intent
    assert intent.to_message() == DeliveryMessage(
        Environment("prod"), "run_1", "emails", T, {"traceparent": "t"}
    )


def test_delivery_intent_rejects_bad_values() -> None:
    env = Environment()
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryIntent, "run:1", env, "q", T, T)
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryIntent, "run_1", env, "", T, T)
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryIntent, "run_1", env, "q", datetime(2025, 1, 1), T)
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryIntent, "run_1", env, "q", T, T, {"a": 1})
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryIntent, "run_1", "default", "q", T, T)


# --- DeliveryMessage ---------------------------------------------------------------------------

MESSAGE_WIRE = {
    "environment": {"name": "prod"},
    "queue": "emails",
    "runId": "run_1",
    "requestedAt": T_WIRE,
    "traceCarrier": {"traceparent": "00-abc-def-01"},
}


def test_delivery_message_wire_keys_and_order() -> None:
    message = DeliveryMessage(Environment("prod"), "run_1", "emails", T, {"traceparent": "00-abc-def-01"})
    wire = message.to_wire()
    assert wire == MESSAGE_WIRE
    assert list(wire) == ["environment", "queue", "runId", "requestedAt", "traceCarrier"]
    assert DeliveryMessage.from_wire(wire_copy(wire)) == message


def test_delivery_message_omits_absent_optionals() -> None:
    message = DeliveryMessage(Environment(), "run_1", "default")
    assert message.to_wire() == {"environment": {"name": "default"}, "queue": "default", "runId": "run_1"}
    assert DeliveryMessage.from_wire(message.to_wire()) == message
    assert (
        DeliveryMessage.from_wire({**message.to_wire(), "requestedAt": None, "traceCarrier": None}) == message
    )


def test_delivery_message_environment_ignores_extra_keys() -> None:
    data = {**MESSAGE_WIRE, "environment": {"name": "prod", "region": "eu"}}
    assert DeliveryMessage.from_wire(data).environment == Environment("prod")


@pytest.mark.parametrize(
    "data",
    [
        None,
        "run_1",
        [MESSAGE_WIRE],
        {**MESSAGE_WIRE, "payload": {"secret": 1}},
        {**MESSAGE_WIRE, "type": "runlane.wakeup"},
        {k: v for k, v in MESSAGE_WIRE.items() if k != "runId"},
        {k: v for k, v in MESSAGE_WIRE.items() if k != "queue"},
        {k: v for k, v in MESSAGE_WIRE.items() if k != "environment"},
        {**MESSAGE_WIRE, "environment": "prod"},
        {**MESSAGE_WIRE, "environment": {}},
        {**MESSAGE_WIRE, "environment": {"name": 1}},
        {**MESSAGE_WIRE, "environment": {"name": ""}},
        {**MESSAGE_WIRE, "runId": 1},
        {**MESSAGE_WIRE, "runId": None},
        {**MESSAGE_WIRE, "runId": "run:1"},
        {**MESSAGE_WIRE, "queue": ["emails"]},
        {**MESSAGE_WIRE, "queue": ""},
        {**MESSAGE_WIRE, "requestedAt": 1_735_689_600_000},
        {**MESSAGE_WIRE, "requestedAt": "not a date"},
        {**MESSAGE_WIRE, "traceCarrier": "traceparent"},
        {**MESSAGE_WIRE, "traceCarrier": {"traceparent": 1}},
    ],
)
def test_delivery_message_from_wire_is_strict(data: object) -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryMessage.from_wire, data)
    raises_code(
        ErrorCode.ADAPTER_CONTRACT_VIOLATION,
        DeliveryMessage.from_wire,
        data,
        code=ErrorCode.ADAPTER_CONTRACT_VIOLATION,
    )


def test_delivery_message_unknown_key_is_named() -> None:
    error = raises_code(
        ErrorCode.VALIDATION_FAILED, DeliveryMessage.from_wire, {**MESSAGE_WIRE, "payload": 1}
    )
    assert error.meta == {"field": "payload"}


def test_delivery_message_constructor_rejects_bad_values() -> None:
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryMessage, {"name": "prod"}, "run_1", "q")
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryMessage, Environment(), "", "q")
    raises_code(ErrorCode.VALIDATION_FAILED, DeliveryMessage, Environment(), "run_1", "a:b")
    raises_code(
        ErrorCode.VALIDATION_FAILED, DeliveryMessage, Environment(), "run_1", "q", datetime(2025, 1, 1)
    )


@PROPERTY_SETTINGS
@given(
    environment=ids,
    run_id=ids,
    queue=ids,
    requested_at=st.none() | start_times,
    trace_carrier=st.none() | trace_carriers,
)
def test_delivery_message_round_trip(
    environment: str,
    run_id: str,
    queue: str,
    requested_at: datetime | None,
    trace_carrier: dict[str, str] | None,
) -> None:
    message = DeliveryMessage(Environment(environment), run_id, queue, requested_at, trace_carrier)
    assert DeliveryMessage.from_wire(wire_copy(message.to_wire())) == message


@PROPERTY_SETTINGS
@given(meta=st.none() | json_objects, occurred_at=st.none() | start_times, retryable=st.booleans())
def test_run_failure_round_trip(meta: Any, occurred_at: datetime | None, retryable: bool) -> None:
    failure = RunFailure(ErrorCode.TASK_FAILED, "Task failed", retryable, meta, occurred_at)
    assert RunFailure.from_wire(wire_copy(failure.to_wire())) == failure


def test_values_are_frozen() -> None:
    with pytest.raises(AttributeError):
        Environment().name = "x"  # type: ignore[misc]
    with pytest.raises(AttributeError):
        SYSTEM_ACTOR.type = ActorType.USER  # type: ignore[misc]
