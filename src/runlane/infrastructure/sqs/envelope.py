"""The versioned ``runlane.wakeup`` SQS body: one delivery message per SQS message, nothing else.

The body is byte-identical to the TypeScript adapter's ``JSON.stringify`` output, so Python and
TypeScript producers and consumers can share a queue.
"""

import json
from typing import Any, NoReturn

from runlane.domain.errors import RunlaneError
from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.sqs.js_json import js_json_stringify

WAKEUP_TYPE = "runlane.wakeup"
WAKEUP_VERSION = 1
_TOP_LEVEL_KEYS = ("message", "type", "version")
_OPTIONAL_MESSAGE_KEYS = ("requestedAt", "traceCarrier")


def _fail(message: str, *, cause: BaseException | None = None, **meta: Any) -> NoReturn:
    raise RunlaneError(ErrorCode.ADAPTER_CONTRACT_VIOLATION, message, meta=meta or None, cause=cause)


def _revalidated(message: object) -> DeliveryMessage:
    """Rebuild the message through its constructor: a frozen value can still be forced invalid."""
    if not isinstance(message, DeliveryMessage) or not isinstance(message.environment, Environment):
        raise TypeError("not a DeliveryMessage")
    return DeliveryMessage(
        environment=Environment(message.environment.name),
        run_id=message.run_id,
        queue=message.queue,
        requested_at=message.requested_at,
        trace_carrier=message.trace_carrier,
    )


def create_sqs_wakeup_body(message: DeliveryMessage) -> str:
    """Serialize one wakeup: ``{"message":{...},"type":"runlane.wakeup","version":1}``, compact."""
    try:
        checked = _revalidated(message)
    except (RunlaneError, TypeError, ValueError, AttributeError) as exc:
        _fail("SQS wakeup delivery message is invalid.", cause=exc)
    return js_json_stringify({"message": checked.to_wire(), "type": WAKEUP_TYPE, "version": WAKEUP_VERSION})


def _reject_constant(name: str) -> NoReturn:
    # Python's json accepts NaN and Infinity; JSON.parse does not.
    raise ValueError(f"{name} is not JSON")


def parse_sqs_wakeup_body(body: object) -> DeliveryMessage:
    """Parse a wakeup body strictly; anything unexpected is an ``adapter_contract_violation``."""
    if not isinstance(body, str):
        _fail("SQS wakeup body must be a string.")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except (ValueError, RecursionError) as exc:
        _fail("SQS wakeup body is not valid JSON.", cause=exc)
    if not isinstance(data, dict):
        _fail("SQS wakeup body must be a JSON object.")
    for key in data:
        if key not in _TOP_LEVEL_KEYS:
            _fail(f'SQS wakeup field "{key}" is not supported.', field=key)
    if data.get("type") != WAKEUP_TYPE:
        _fail(f'SQS wakeup type must be "{WAKEUP_TYPE}".', field="type")
    version = data.get("version")
    # JSON has one number type: 1.0 is the number 1, but true is not.
    if isinstance(version, bool) or not isinstance(version, int | float) or version != WAKEUP_VERSION:
        _fail(f"SQS wakeup version must be {WAKEUP_VERSION}.", field="version")
    if "message" not in data:
        _fail("SQS wakeup message is missing.", field="message")
    message = data["message"]
    if isinstance(message, dict):
        for key in _OPTIONAL_MESSAGE_KEYS:
            if key in message and message[key] is None:
                _fail(f"Delivery message {key} must be omitted, not null.", field=key)
    return DeliveryMessage.from_wire(message, code=ErrorCode.ADAPTER_CONTRACT_VIOLATION)
