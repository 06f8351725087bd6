"""The ``runlane.wakeup`` body: byte-exact to the TypeScript adapter, strict when parsing."""

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.sqs import create_sqs_wakeup_body, parse_sqs_wakeup_body
from tests.unit.sqs.fakes import make_message

SPEC_EXAMPLE = (
    '{"message":{"environment":{"name":"production"},"queue":"emails","runId":"run_123",'
    '"requestedAt":"2025-01-02T03:04:05.678Z","traceCarrier":{"traceparent":"00-abc-def-01"}},'
    '"type":"runlane.wakeup","version":1}'
)

# Produced by Node's JSON.stringify (see test docstring); literal escapes keep the file ASCII.
NODE_STRINGIFY_VECTOR = (
    '{"message":{"environment":{"name":"prod\u00e9"},"queue":"q\u2028","runId":"run_\\ud800\\u0001\u007f'
    '\\"\\\\\\n\\t\\b\\f\\r/\U0001f600","requestedAt":"0999-01-02T03:04:05.678Z","traceCarrier":{"2":"y",'
    '"10":"x","4294967294":"big","b":"1","01":"z","4294967295":"bigger","-1":"neg","a":"\u00e9"}},'
    '"type":"runlane.wakeup","version":1}'
)


def violation(body: object) -> RunlaneError:
    with pytest.raises(RunlaneError) as caught:
        parse_sqs_wakeup_body(body)
    assert caught.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
    return caught.value


def spec_message() -> DeliveryMessage:
    return make_message(
        "run_123",
        queue="emails",
        requested_at=datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
        trace_carrier={"traceparent": "00-abc-def-01"},
    )


def test_body_matches_the_spec_example_byte_for_byte() -> None:
    body = create_sqs_wakeup_body(spec_message())
    assert body == SPEC_EXAMPLE
    assert body.encode("utf-8") == SPEC_EXAMPLE.encode("utf-8")


def test_absent_optionals_are_omitted_not_null() -> None:
    body = create_sqs_wakeup_body(make_message("run_9", queue="default", environment="default"))
    assert body == (
        '{"message":{"environment":{"name":"default"},"queue":"default","runId":"run_9"},'
        '"type":"runlane.wakeup","version":1}'
    )


def test_requested_at_is_utc_milliseconds_with_z() -> None:
    plus_two = timezone(timedelta(hours=2))
    message = make_message(requested_at=datetime(2025, 1, 2, 5, 4, 5, 678_999, tzinfo=plus_two))
    body = json.loads(create_sqs_wakeup_body(message))
    assert body["message"]["requestedAt"] == "2025-01-02T03:04:05.678Z"


def test_body_matches_javascript_json_stringify_for_awkward_strings() -> None:
    """Vector from Node 'JSON.stringify({message, type, version})' for the same message.

    It covers raw non-ASCII, U+2028, an escaped lone surrogate, control characters, an astral
    character given as a surrogate pair, a zero-padded year and integer-like trace carrier keys,
    which JavaScript orders first (ascending) before the other keys in insertion order.
    """
    message = DeliveryMessage(
        environment=Environment("prod\u00e9"),
        queue="q\u2028",
        run_id='run_\ud800\u0001\u007f"\\\n\t\b\f\r/\ud83d\ude00',
        requested_at=datetime(999, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
        trace_carrier={
            "b": "1",
            "10": "x",
            "2": "y",
            "01": "z",
            "4294967294": "big",
            "4294967295": "bigger",
            "-1": "neg",
            "a": "\u00e9",
        },
    )
    assert create_sqs_wakeup_body(message) == NODE_STRINGIFY_VECTOR
    # The body is always encodable as UTF-8, so SQS and signing can take its exact bytes.
    NODE_STRINGIFY_VECTOR.encode("utf-8")


def test_round_trip_keeps_every_field() -> None:
    message = spec_message()
    assert parse_sqs_wakeup_body(create_sqs_wakeup_body(message)) == message


def test_invalid_message_is_an_adapter_contract_violation() -> None:
    message = make_message()
    object.__setattr__(message, "run_id", "bad:id")
    with pytest.raises(RunlaneError) as caught:
        create_sqs_wakeup_body(message)
    assert caught.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
    assert caught.value.message == "SQS wakeup delivery message is invalid."
    with pytest.raises(RunlaneError) as caught:
        create_sqs_wakeup_body({"runId": "run_1"})  # type: ignore[arg-type]
    assert caught.value.message == "SQS wakeup delivery message is invalid."


def test_parse_accepts_the_spec_example() -> None:
    assert parse_sqs_wakeup_body(SPEC_EXAMPLE) == spec_message()


def test_parse_accepts_version_written_as_1_0_and_whitespace() -> None:
    body = ' { "version" : 1.0 , "type" : "runlane.wakeup", "message": {"environment": {"name": "p"},'
    body += ' "queue": "q", "runId": "run_1"} }\n'
    assert parse_sqs_wakeup_body(body) == make_message("run_1", queue="q", environment="p")


def test_parse_ignores_extra_environment_keys() -> None:
    body = json.loads(SPEC_EXAMPLE)
    body["message"]["environment"]["region"] = "eu"
    assert parse_sqs_wakeup_body(json.dumps(body)).environment == Environment("production")


def test_parse_reads_offsets_and_returns_utc() -> None:
    body = json.loads(SPEC_EXAMPLE)
    body["message"]["requestedAt"] = "2025-01-02T05:04:05.678+02:00"
    parsed = parse_sqs_wakeup_body(json.dumps(body))
    assert parsed.requested_at == datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def test_unknown_top_level_field_names_the_field() -> None:
    body = json.loads(SPEC_EXAMPLE)
    body["payload"] = {"secret": 1}
    error = violation(json.dumps(body))
    assert error.message == 'SQS wakeup field "payload" is not supported.'


@pytest.mark.parametrize(
    "body",
    [
        b"{}",
        None,
        123,
        "",
        "not json",
        "[]",
        '"text"',
        "null",
        '{"message":{},"type":"runlane.wakeup","version":1',
        SPEC_EXAMPLE.replace('"version":1', '"version":true'),
        SPEC_EXAMPLE.replace('"version":1', '"version":2'),
        SPEC_EXAMPLE.replace('"version":1', '"version":"1"'),
        SPEC_EXAMPLE.replace('"version":1', '"version":NaN'),
        SPEC_EXAMPLE.replace('"version":1', '"version":Infinity'),
        SPEC_EXAMPLE.replace(',"version":1', ""),
        SPEC_EXAMPLE.replace('"runlane.wakeup"', '"runlane.other"'),
        SPEC_EXAMPLE.replace('"type":"runlane.wakeup",', ""),
        '{"type":"runlane.wakeup","version":1}',
        '{"message":null,"type":"runlane.wakeup","version":1}',
        '{"message":[],"type":"runlane.wakeup","version":1}',
        SPEC_EXAMPLE.replace('"queue":"emails",', '"queue":"emails","payload":1,'),
        SPEC_EXAMPLE.replace('"queue":"emails",', ""),
        SPEC_EXAMPLE.replace('"runId":"run_123"', '"runId":7'),
        SPEC_EXAMPLE.replace('"runId":"run_123"', '"runId":"run:123"'),
        SPEC_EXAMPLE.replace('"runId":"run_123"', '"runId":""'),
        SPEC_EXAMPLE.replace('{"name":"production"}', '"production"'),
        SPEC_EXAMPLE.replace('{"name":"production"}', "{}"),
        SPEC_EXAMPLE.replace('"2025-01-02T03:04:05.678Z"', '"yesterday"'),
        SPEC_EXAMPLE.replace('"2025-01-02T03:04:05.678Z"', "1735787045678"),
        SPEC_EXAMPLE.replace('"2025-01-02T03:04:05.678Z"', "null"),
        SPEC_EXAMPLE.replace('{"traceparent":"00-abc-def-01"}', '{"traceparent":1}'),
        SPEC_EXAMPLE.replace('{"traceparent":"00-abc-def-01"}', "null"),
        SPEC_EXAMPLE.replace('{"traceparent":"00-abc-def-01"}', '"00-abc"'),
        "[" * 100_000 + "]" * 100_000,
    ],
)
def test_parse_rejects_anything_else(body: object) -> None:
    violation(body)
