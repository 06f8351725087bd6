"""NOTIFY channels and payloads of the Postgres wakeup transport.

Channels. Queue names are arbitrary strings, and a channel is an identifier (at most 63 bytes,
longer ones are silently truncated), so a channel is a hash: ``runlane_q_<32 hex>`` for one queue
of one schema (BLAKE2b-128 of the length-prefixed schema and queue) and ``runlane_a_<32 hex>`` for
every queue of the schema. Every wakeup is sent on both, so a listener of given queues LISTENs to
their channels and a listener of every queue (``queues=None``) LISTENs to one channel, however
many queues exist. Environments sharing a schema share its channels; the payload names the
environment.

Payloads. The wakeup's wire JSON (``DeliveryMessage.to_wire()``) as ``schema.dumps_json`` writes
every stored document: compact and ASCII-escaped, so any server encoding carries it. NOTIFY refuses
payloads of 8000 bytes or more; a wakeup whose trace carrier makes it that long is sent without
``requestedAt`` and ``traceCarrier`` (both optional).
"""

import hashlib
import json
from functools import lru_cache

from runlane.domain.errors import RunlaneError
from runlane.domain.values import DeliveryMessage
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres.schema import dumps_json

QUEUE_CHANNEL_PREFIX = "runlane_q_"
ALL_QUEUES_CHANNEL_PREFIX = "runlane_a_"
# "The payload must be shorter than 8000 bytes" in the default configuration (NOTIFY docs).
MAX_PAYLOAD_BYTES = 7999


def _digest(*parts: str) -> str:
    """BLAKE2b-128 of length-prefixed parts: no two different (schema, queue) pairs share an input."""
    digest = hashlib.blake2b(digest_size=16)
    for part in parts:
        data = part.encode("utf-8")
        digest.update(b"%d:" % len(data))
        digest.update(data)
    return digest.hexdigest()


@lru_cache(maxsize=1024)  # every wakeup of a trigger or batch names its queue's channel again
def queue_channel(schema: str, queue: str) -> str:
    """The channel of ``queue`` in ``schema`` (42 ASCII bytes, a valid identifier)."""
    return QUEUE_CHANNEL_PREFIX + _digest("queue", schema, queue)


@lru_cache(maxsize=64)
def all_queues_channel(schema: str) -> str:
    """The channel every wakeup of ``schema`` is also sent on (for listeners of every queue)."""
    return ALL_QUEUES_CHANNEL_PREFIX + _digest("all", schema)


def encode_wakeup(message: DeliveryMessage) -> str | None:
    """The NOTIFY payload of ``message``, minimal when the full form is too long; ``None`` if even that is."""
    full = dumps_json(message.to_wire())
    if len(full) <= MAX_PAYLOAD_BYTES:  # ASCII: characters are bytes
        return full
    minimal = dumps_json(
        DeliveryMessage(environment=message.environment, run_id=message.run_id, queue=message.queue).to_wire()
    )
    return minimal if len(minimal) <= MAX_PAYLOAD_BYTES else None


def decode_wakeup(payload: str) -> DeliveryMessage:
    """Parse a payload; anything that is not a wakeup is an ``adapter_contract_violation``."""
    try:
        wire = json.loads(payload)
    except ValueError as exc:
        raise RunlaneError(
            ErrorCode.ADAPTER_CONTRACT_VIOLATION, "Postgres wakeup payload is not JSON."
        ) from exc
    return DeliveryMessage.from_wire(wire, code=ErrorCode.ADAPTER_CONTRACT_VIOLATION)
