"""Scenario 8, SQS part: malformed and tampered wakeup envelopes through the SQS Lambda handler.

Every malformed body must fail in phase ``parse`` and every tampered signature in phase ``message``,
both with ``adapter_contract_violation``, before ``execute_delivery`` is called; the run the
envelopes name must not change. A correctly signed wakeup for the same run is then executed, so
the pipeline is shown to reject the bad ones, not everything.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runlane import DeliveryMessage, DeliveryResultType, ErrorCode, Runlane, RunlaneError
from runlane.infrastructure.sqs import (
    ALGORITHM_ATTRIBUTE,
    EXPIRES_ATTRIBUTE,
    KEY_ID_ATTRIBUTE,
    SIGNATURE_ATTRIBUTE,
    HmacSha256Key,
    SqsDeliveryFailure,
    WakeupSigner,
    WakeupVerifier,
    create_sqs_lambda_handler,
    create_sqs_wakeup_body,
)
from runlane.testing import ControlledClock

_ARN = "arn:aws:sqs:us-east-1:000000000000:faults"


def _mutations(valid: dict[str, Any]) -> list[Any]:
    """Envelopes that are each wrong in exactly one way (strings are sent as they are).

    A date-only ``requestedAt`` is not here: the contract asks for "a parseable date string" (as
    JavaScript's ``Date.parse`` would take), so ``"2025-01-01"`` is a valid wakeup.
    """
    message = valid["message"]

    def top(**changes: Any) -> dict[str, Any]:
        return {**valid, **changes}

    def inner(**changes: Any) -> dict[str, Any]:
        return {**valid, "message": {**message, **changes}}

    def without(key: str) -> dict[str, Any]:
        return {**valid, "message": {k: v for k, v in message.items() if k != key}}

    return [
        [valid],
        None,
        1,
        "runlane.wakeup",
        top(type="runlane.wakeup2"),
        top(version="1"),
        top(version=2),
        top(version=True),
        top(version=1.5),
        top(version=None),
        top(extra="field"),
        {k: v for k, v in valid.items() if k != "message"},
        top(message=None),
        top(message=[message]),
        inner(runId=""),
        inner(runId="run:with:colons"),
        inner(runId=5),
        without("runId"),
        inner(queue=""),
        without("queue"),
        without("environment"),
        inner(environment={"name": ""}),
        inner(environment="faults"),
        inner(requestedAt=None),
        inner(requestedAt="yesterday"),
        inner(traceCarrier=None),
        inner(traceCarrier={"traceparent": 1}),
        inner(unexpected=True),
        '{"message":' + "[" * 100_000 + "]" * 100_000 + ',"type":"runlane.wakeup","version":1}',
        json.dumps(valid).replace('"version": 1', '"version": NaN'),
        json.dumps(valid)[:-1],
        '{"type":"runlane.wakeup","type":"other"' + json.dumps(valid)[1:],
    ]


@dataclass
class EnvelopeTally:
    cases: int = 0
    rejected: int = 0
    codes: Counter[str] = field(default_factory=Counter)
    reasons: Counter[str] = field(default_factory=Counter)
    crashes: list[str] = field(default_factory=list)
    state_changes: int = 0
    problems: list[str] = field(default_factory=list)


async def check_envelopes(runtime: Runlane, examples: int) -> EnvelopeTally:
    tally = EnvelopeTally()
    run = (await runtime.trigger("hostile.echo", {"envelope": True})).run
    message = DeliveryMessage(
        environment=runtime.environment, run_id=run.id, queue=run.queue, requested_at=datetime.now(UTC)
    )
    body = create_sqs_wakeup_body(message)
    key = HmacSha256Key(key_id="faults-1", secret=b"k" * 32)
    attributes = WakeupSigner(key=key).sign(body)
    past = ControlledClock(datetime.now(UTC) - timedelta(days=10))
    expired = WakeupSigner(key=key, ttl="1d", clock=past).sign(body)
    executed: list[DeliveryMessage] = []
    failures: list[SqsDeliveryFailure] = []

    async def execute(delivered: DeliveryMessage, **options: Any) -> object:
        executed.append(delivered)
        return await runtime.execute_delivery(delivered, **options)

    plain = create_sqs_lambda_handler(execute_delivery=execute, on_delivery_failure=failures.append)
    signed = create_sqs_lambda_handler(
        execute_delivery=execute, on_delivery_failure=failures.append, verifier=WakeupVerifier(key=key)
    )
    before = (await runtime.runs.get(run.id)).event_sequence  # type: ignore[union-attr]

    async def send(handler: Any, text: object, attrs: dict[str, str], phase: str, label: str) -> None:
        tally.cases += 1
        failures.clear()
        record = {
            "messageId": f"m{tally.cases}",
            "body": text,
            "eventSourceARN": _ARN,
            "messageAttributes": {k: {"stringValue": v, "dataType": "String"} for k, v in attrs.items()},
        }
        try:
            response = await handler({"Records": [record]})
        except Exception as exc:
            tally.crashes.append(f"{label}: {type(exc).__name__}: {str(exc)[:100]}")
            return
        if response["batchItemFailures"] != [{"itemIdentifier": record["messageId"]}] or len(failures) != 1:
            tally.problems.append(f"{label}: was not refused ({response})")
            return
        failure = failures[0]
        cause = failure.cause
        if not isinstance(cause, RunlaneError):
            tally.crashes.append(f"{label}: {type(cause).__name__}: {str(cause)[:100]}")
            return
        tally.rejected += 1
        tally.codes[cause.code.value] += 1
        tally.reasons[(cause.meta or {}).get("reason") or failure.phase.value] += 1
        if cause.code is not ErrorCode.ADAPTER_CONTRACT_VIOLATION or failure.phase.value != phase:
            tally.problems.append(f"{label}: {failure.phase.value}/{cause.code.value}, expected {phase}")

    valid = json.loads(body)
    for index, mutation in enumerate(_mutations(valid)):
        text = mutation if isinstance(mutation, str) and index > 2 else json.dumps(mutation)
        await send(plain, text, {}, "parse", f"mutation {index}")
    await send(plain, None, {}, "message", "body not a string")
    await send(plain, b"bytes body", {}, "message", "body as bytes")

    junk = st.one_of(
        st.text(max_size=300),
        st.binary(max_size=300).map(lambda raw: raw.decode("latin-1")),
        st.dictionaries(st.text(max_size=10), st.integers() | st.text(max_size=10), max_size=5).map(
            json.dumps
        ),
    )
    pending: list[str] = []

    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(junk)
    def collect(text: str) -> None:
        pending.append(text)

    collect()
    for number, text in enumerate(pending):
        await send(plain, text, {}, "parse", f"junk {number}: {text[:40]!r}")

    flipped = attributes[SIGNATURE_ATTRIBUTE]
    flipped = ("A" if flipped[0] != "A" else "B") + flipped[1:]
    tampered = {
        "body changed": (body.replace('"version":1', '"version":1.0'), attributes),
        "body with trailing space": (body + " ", attributes),
        "signature altered": (body, {**attributes, SIGNATURE_ATTRIBUTE: flipped}),
        "key id swapped": (body, {**attributes, KEY_ID_ATTRIBUTE: "faults-2"}),
        "algorithm swapped": (body, {**attributes, ALGORITHM_ATTRIBUTE: "ed25519"}),
        "unknown algorithm": (body, {**attributes, ALGORITHM_ATTRIBUTE: "none"}),
        "expiry extended": (body, {**attributes, EXPIRES_ATTRIBUTE: "2999-01-01T00:00:00.000Z"}),
        "expired": (body, expired),
        "unsigned": (body, {}),
    }
    for label, (text, attrs) in tampered.items():
        await send(signed, text, attrs, "message", label)

    after = (await runtime.runs.get(run.id)).event_sequence  # type: ignore[union-attr]
    tally.state_changes += int(after != before) + len(executed)
    response = await signed(
        {
            "Records": [
                {
                    "messageId": "good",
                    "body": body,
                    "messageAttributes": {
                        k: {"stringValue": v, "dataType": "String"} for k, v in attributes.items()
                    },
                }
            ]
        }
    )
    final = await runtime.runs.get(run.id)
    if (
        response["batchItemFailures"]
        or len(executed) != 1
        or final is None
        or final.status.value != "succeeded"
    ):
        tally.problems.append(f"the correctly signed wakeup was not executed ({response}, {final})")
    result = await runtime.execute_delivery(message)
    if result.type is not DeliveryResultType.IGNORED:
        tally.problems.append("a second delivery of the same wakeup executed again")
    return tally
