"""Received messages and their SQS visibility: keep running ones hidden, hand unstarted ones back."""

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from runlane.domain.values import DeliveryMessage

logger = logging.getLogger("runlane.sqs")


@dataclass(slots=True)
class ReceivedMessage:
    """One message of a received batch and where it stands.

    ``settled`` means its visibility no longer needs extending: it failed (SQS will redeliver it) or
    its delete was attempted.
    """

    index: int
    raw: Mapping[str, Any]
    receipt_handle: str | None
    message_id: str | None
    settled: bool = False
    started: bool = False
    delivered: DeliveryMessage | None = None


async def _set_visibility(client: Any, queue_url: str, message: ReceivedMessage, seconds: int) -> None:
    try:
        await asyncio.to_thread(
            client.change_message_visibility,
            QueueUrl=queue_url,
            ReceiptHandle=message.receipt_handle,
            VisibilityTimeout=seconds,
        )
    except Exception as exc:  # the worst case is a duplicate or later wakeup, which core tolerates
        logger.warning(
            "SQS consumer could not set visibility of %s to %ss: %s", message.message_id, seconds, exc
        )


async def keep_invisible(
    client: Any, queue_url: str, batch: Sequence[ReceivedMessage], visibility: int
) -> None:
    """Every half visibility timeout, reset the timeout of messages not yet settled (until cancelled)."""
    while True:
        await asyncio.sleep(visibility / 2)
        for message in batch:
            if not message.settled and message.receipt_handle is not None:
                await _set_visibility(client, queue_url, message, visibility)


async def release(client: Any, queue_url: str, unstarted: Sequence[ReceivedMessage]) -> None:
    """On stop, make messages that never started visible at once instead of after their timeout."""
    if not callable(getattr(client, "change_message_visibility", None)):
        return
    for message in unstarted:
        if message.receipt_handle is not None:
            await _set_visibility(client, queue_url, message, 0)
