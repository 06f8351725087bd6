"""The per-message pipeline shared by the Lambda handler and the long-running consumer.

verify signature -> parse body -> ``execute_delivery(message, **options)``. A normal return, even an
ignored or stale result, is a success: core already re-read storage and decided. Anything else is a
failure that leaves the message to SQS for redelivery.
"""

import inspect
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.values import DeliveryMessage
from runlane.domain.vocabulary import ErrorCode, SqsDeliveryFailurePhase
from runlane.infrastructure.sqs.envelope import parse_sqs_wakeup_body
from runlane.infrastructure.sqs.signing import SIGNATURE_ATTRIBUTES, WakeupVerifier

logger = logging.getLogger("runlane.sqs")

ExecuteDelivery = Callable[..., Awaitable[object] | object]


@dataclass(frozen=True, slots=True, kw_only=True)
class SqsDeliveryFailure:
    """One message that was not delivered; handed to ``on_delivery_failure``.

    ``delivery_message`` is set once the body parsed; ``queue_url`` for the consumer,
    ``event_source_arn`` for Lambda records.
    """

    cause: BaseException
    phase: SqsDeliveryFailurePhase
    provider_message_id: str | None
    delivery_message: DeliveryMessage | None = None
    queue_url: str | None = None
    event_source_arn: str | None = None


OnDeliveryFailure = Callable[[SqsDeliveryFailure], Awaitable[object] | object]


def check_callable(value: object, name: str, *, optional: bool = False) -> None:
    if (value is None and optional) or callable(value):
        return
    raise configuration_invalid(f"{name} must be callable.")


def check_flag(value: object, name: str) -> bool:
    if not isinstance(value, bool):
        raise configuration_invalid(f"{name} must be a bool.")
    return value


def string_attributes(raw: object, value_key: str) -> dict[str, str]:
    """The runlane signature attributes of an SQS message, as plain strings.

    ``ReceiveMessage`` spells the value ``StringValue``; Lambda events spell it ``stringValue``.
    """
    if not isinstance(raw, Mapping):
        return {}
    found: dict[str, str] = {}
    for name in SIGNATURE_ATTRIBUTES:
        attribute = raw.get(name)
        value = attribute.get(value_key) if isinstance(attribute, Mapping) else None
        if isinstance(value, str):
            found[name] = value
    return found


class WakeupDelivery:
    """Runs one SQS message through verify, parse and ``execute_delivery``."""

    def __init__(
        self,
        *,
        execute_delivery: ExecuteDelivery,
        delivery_options: Mapping[str, Any],
        verifier: WakeupVerifier | None,
        on_delivery_failure: OnDeliveryFailure | None,
    ) -> None:
        self._execute = execute_delivery
        self._options = dict(delivery_options)
        self._verifier = verifier
        self._on_failure = on_delivery_failure

    async def deliver(
        self,
        *,
        body: object,
        attributes: Mapping[str, str],
        provider_message_id: str | None,
        queue_url: str | None = None,
        event_source_arn: str | None = None,
    ) -> DeliveryMessage | SqsDeliveryFailure:
        """The delivered message, or the failure (not yet reported)."""

        def failed(
            cause: BaseException, phase: SqsDeliveryFailurePhase, message: DeliveryMessage | None = None
        ) -> SqsDeliveryFailure:
            return SqsDeliveryFailure(
                cause=cause,
                phase=phase,
                provider_message_id=provider_message_id,
                delivery_message=message,
                queue_url=queue_url,
                event_source_arn=event_source_arn,
            )

        if not isinstance(body, str):
            cause = RunlaneError(ErrorCode.ADAPTER_CONTRACT_VIOLATION, "SQS message body must be a string.")
            return failed(cause, SqsDeliveryFailurePhase.MESSAGE)
        if self._verifier is not None:
            # Before parsing and long before execute_delivery reads storage.
            try:
                self._verifier.verify(body, attributes)
            except RunlaneError as exc:
                return failed(exc, SqsDeliveryFailurePhase.MESSAGE)
        try:
            message = parse_sqs_wakeup_body(body)
        except RunlaneError as exc:
            return failed(exc, SqsDeliveryFailurePhase.PARSE)
        try:
            result = self._execute(message, **self._options)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            return failed(exc, SqsDeliveryFailurePhase.EXECUTE, message)
        return message

    async def report(self, failure: SqsDeliveryFailure) -> None:
        """Tell ``on_delivery_failure``; its own errors are logged, never raised into the batch."""
        if self._on_failure is None:
            return
        try:
            outcome = self._on_failure(failure)
            if inspect.isawaitable(outcome):
                await outcome
        except Exception:
            logger.exception(
                "on_delivery_failure raised for SQS message %s (phase %s)",
                failure.provider_message_id,
                failure.phase.value,
            )
