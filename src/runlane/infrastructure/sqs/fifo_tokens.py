"""Deterministic FIFO group and deduplication ids, identical to the original TypeScript adapter."""

import base64
import hashlib
from collections.abc import Sequence

from runlane.domain.errors import RunlaneError
from runlane.domain.values import DeliveryMessage
from runlane.domain.vocabulary import ErrorCode, SqsFifoMessageGroup
from runlane.infrastructure.sqs.js_json import well_formed

TOKEN_PREFIX = "runlane_"


def fifo_token(parts: Sequence[str]) -> str:
    """``runlane_`` + unpadded base64url SHA-256 of the parts joined with NUL.

    Hashing goes through UTF-8 like JavaScript's ``TextEncoder``: lone surrogates become U+FFFD, so
    both runtimes derive the same token from the same string. The result (51 characters from
    ``[A-Za-z0-9_-]``) fits SQS's 128-character limit for group and deduplication ids.
    """
    if isinstance(parts, str) or not all(isinstance(part, str) for part in parts):
        raise RunlaneError(ErrorCode.ADAPTER_CONTRACT_VIOLATION, "FIFO token parts must be strings.")
    digest = hashlib.sha256(well_formed("\u0000".join(parts)).encode("utf-8")).digest()
    return TOKEN_PREFIX + base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def message_group_id(message: DeliveryMessage, group: SqsFifoMessageGroup) -> str:
    if group is SqsFifoMessageGroup.QUEUE:
        return fifo_token(["queue", message.environment.name, message.queue])
    return fifo_token(["run", message.environment.name, message.run_id])


def deduplication_id(outbox_message_id: str) -> str:
    return fifo_token(["outbox", outbox_message_id])
