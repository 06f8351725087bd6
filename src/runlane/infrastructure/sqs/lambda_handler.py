"""``create_sqs_lambda_handler()``: an SQS-triggered Lambda that hands each wakeup to core.

Use it with ``ReportBatchItemFailures`` on the event source mapping: only failed records are
returned, so SQS redelivers just those. Never run ``tick()`` here; schedule it separately.
"""

import asyncio
from collections.abc import Mapping
from typing import Any

from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.sqs.delivery import (
    ExecuteDelivery,
    OnDeliveryFailure,
    SqsDeliveryFailure,
    WakeupDelivery,
    check_callable,
    check_flag,
    string_attributes,
)
from runlane.infrastructure.sqs.signing import WakeupVerifier
from runlane.ports.delivery_options import check_delivery_options

BatchResponse = dict[str, list[dict[str, str]]]


def _records(event: object) -> list[Mapping[str, Any]]:
    """The whole batch is refused (and retried by Lambda) if the event itself is malformed."""
    records = event.get("Records") if isinstance(event, Mapping) else None
    if not isinstance(records, list):
        raise RunlaneError(ErrorCode.ADAPTER_CONTRACT_VIOLATION, "SQS Lambda event must have a Records list.")
    for record in records:
        message_id = record.get("messageId") if isinstance(record, Mapping) else None
        if not isinstance(message_id, str) or not message_id:
            raise RunlaneError(
                ErrorCode.ADAPTER_CONTRACT_VIOLATION,
                "Every SQS Lambda record must have a non-empty messageId.",
            )
    return records


class SqsLambdaHandler:
    """Async callable ``(event, context=None) -> {"batchItemFailures": [...]}``; ``.sync`` for Lambda."""

    def __init__(self, *, delivery: WakeupDelivery, fifo: bool) -> None:
        self._delivery = delivery
        self._fifo = fifo
        self._runner: asyncio.Runner | None = None

    async def __call__(self, event: object, context: object = None) -> BatchResponse:
        records = _records(event)
        failed_ids: list[str] = []
        halted = False
        for record in records:
            message_id: str = record["messageId"]
            if halted:
                # FIFO: a later record must not overtake an earlier failed one in its group.
                failed_ids.append(message_id)
                continue
            source_arn = record.get("eventSourceARN")
            outcome = await self._delivery.deliver(
                body=record.get("body"),
                attributes=string_attributes(record.get("messageAttributes"), "stringValue"),
                provider_message_id=message_id,
                event_source_arn=source_arn if isinstance(source_arn, str) else None,
            )
            if isinstance(outcome, SqsDeliveryFailure):
                await self._delivery.report(outcome)
                failed_ids.append(message_id)
                halted = self._fifo
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed_ids]}

    def sync(self, event: object, context: object = None) -> BatchResponse:
        """A plain Lambda handler function.

        It keeps one event loop across warm invocations (``asyncio.Runner``), so async clients and
        connection pools created during one invocation stay usable in the next.
        """
        if self._runner is None:
            self._runner = asyncio.Runner()
        return self._runner.run(self(event, context))

    def close(self) -> None:
        """Close the event loop kept by :meth:`sync` (tests; Lambda never needs it)."""
        runner, self._runner = self._runner, None
        if runner is not None:
            runner.close()


def create_sqs_lambda_handler(
    *,
    execute_delivery: ExecuteDelivery,
    delivery_options: Mapping[str, Any] | None = None,
    fifo: bool = False,
    on_delivery_failure: OnDeliveryFailure | None = None,
    verifier: WakeupVerifier | None = None,
) -> SqsLambdaHandler:
    """Build the handler; invalid options are ``configuration_invalid`` here, not at the first event.

    ``execute_delivery`` is normally ``runtime.execute_delivery``; ``delivery_options`` are passed to
    it unchanged as keyword arguments. With ``fifo=True`` the first failed record fails every later
    record of the batch without running it. With a ``verifier`` every record must carry a valid
    signature before anything else happens.
    """
    check_callable(execute_delivery, "execute_delivery")
    check_callable(on_delivery_failure, "on_delivery_failure", optional=True)
    options = check_delivery_options(delivery_options)
    if verifier is not None and not isinstance(verifier, WakeupVerifier):
        raise configuration_invalid("SQS Lambda handler verifier must be a WakeupVerifier.")
    delivery = WakeupDelivery(
        execute_delivery=execute_delivery,
        delivery_options=options,
        verifier=verifier,
        on_delivery_failure=on_delivery_failure,
    )
    return SqsLambdaHandler(delivery=delivery, fifo=check_flag(fifo, "fifo"))
