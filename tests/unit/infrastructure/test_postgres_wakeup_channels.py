"""NOTIFY channel names and wakeup payloads of the Postgres wakeup transport (no server needed)."""

import json
from datetime import UTC, datetime

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres.wakeup_channels import (
    MAX_PAYLOAD_BYTES,
    all_queues_channel,
    decode_wakeup,
    encode_wakeup,
    queue_channel,
)


def _message(**fields: object) -> DeliveryMessage:
    return DeliveryMessage(environment=Environment("production"), run_id="run_1", queue="emails", **fields)  # type: ignore[arg-type]


def test_channels_are_stable_short_and_distinct() -> None:
    assert queue_channel("runlane", "emails") == queue_channel("runlane", "emails")
    names = {
        queue_channel("runlane", "emails"),
        queue_channel("runlane", "reports"),
        queue_channel("other", "emails"),
        all_queues_channel("runlane"),
        all_queues_channel("other"),
        # parts are length-prefixed: ("a", "b:c") and ("a:b", "c") stay apart
        queue_channel("a", "1:b"),
        queue_channel("a1:", "b"),
    }
    assert len(names) == 7
    for name in names:
        assert len(name) == 42
        assert name.isascii()
        assert name.startswith(("runlane_q_", "runlane_a_"))


def test_payload_is_the_compact_wire_json() -> None:
    message = _message(
        requested_at=datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
        trace_carrier={"traceparent": "00-abc-def-01"},
    )
    payload = encode_wakeup(message)
    assert payload == (
        '{"environment":{"name":"production"},"queue":"emails","runId":"run_1",'
        '"requestedAt":"2025-01-02T03:04:05.678Z","traceCarrier":{"traceparent":"00-abc-def-01"}}'
    )
    assert decode_wakeup(payload) == message


def test_non_ascii_is_escaped_and_round_trips() -> None:
    message = DeliveryMessage(environment=Environment("prod"), run_id="run_é", queue="queue 😀")
    payload = encode_wakeup(message)
    assert payload is not None
    assert payload.isascii()
    assert decode_wakeup(payload) == message


def test_a_long_wakeup_falls_back_to_the_three_required_fields() -> None:
    message = _message(trace_carrier={"tracestate": "x" * MAX_PAYLOAD_BYTES})
    payload = encode_wakeup(message)
    assert payload is not None
    assert json.loads(payload) == {"environment": {"name": "production"}, "queue": "emails", "runId": "run_1"}
    too_long = DeliveryMessage(environment=Environment("p"), run_id="r", queue="q" * MAX_PAYLOAD_BYTES)
    assert encode_wakeup(too_long) is None


@pytest.mark.parametrize(
    "payload",
    ["", "not json", "[]", '{"runId":"r"}', '{"environment":{"name":"p"},"queue":"q","runId":"r","x":1}'],
)
def test_malformed_payloads_are_contract_violations(payload: str) -> None:
    with pytest.raises(RunlaneError) as info:
        decode_wakeup(payload)
    assert info.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
