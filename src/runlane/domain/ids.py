"""Opaque ids and keys: non-empty strings without ``:`` (storage reserves it for composite keys)."""

import os
from enum import StrEnum

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode


class IdKind(StrEnum):
    RUN = "run"
    TASK = "task"
    QUEUE = "queue"
    SCHEDULE = "schedule"
    WORKER = "worker"
    IDEMPOTENCY_KEY = "idempotency_key"
    SINGLETON_KEY = "singleton_key"
    CONCURRENCY_KEY = "concurrency_key"
    ENVIRONMENT = "environment"
    LANE = "lane"
    OUTBOX_MESSAGE = "outbox_message"


def as_id(kind: IdKind | str, value: object, *, code: ErrorCode = ErrorCode.VALIDATION_FAILED) -> str:
    """Validate ``value`` as a runlane id of ``kind`` and return it unchanged.

    Definition-time callers pass ``code=CONFIGURATION_INVALID``; call-time callers keep the default.
    """
    if type(value) is str and value and ":" not in value:
        return value  # valid: the hot path on every event, record and delivery
    label = IdKind(kind).value if kind in IdKind._value2member_map_ else str(kind)
    if not isinstance(value, str):
        raise RunlaneError(
            code,
            f"{label} must be a string, got {type(value).__name__}.",
            meta={"kind": label},
        )
    if value == "":
        raise RunlaneError(code, f"{label} must not be empty.", meta={"kind": label})
    if ":" in value:
        raise RunlaneError(
            code,
            f"{label} {value[:80]!r} must not contain ':' (reserved for storage keys); "
            "use dots or underscores for structure.",
            meta={"kind": label},
        )
    return value


def as_optional_id(
    kind: IdKind | str, value: object, *, code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> str | None:
    return None if value is None else as_id(kind, value, code=code)


def _uuid4_hex() -> str:
    """``uuid.uuid4().hex`` without building a ``UUID`` (same random bits, version and variant)."""
    value = int.from_bytes(os.urandom(16), "big")
    value = (value & ~(0xC000 << 48)) | (0x8000 << 48)  # RFC 4122 variant
    value = (value & ~(0xF000 << 64)) | (4 << 76)  # version 4
    return f"{value:032x}"


def new_run_id() -> str:
    return f"run_{_uuid4_hex()}"


def new_worker_id() -> str:
    return f"worker_{_uuid4_hex()}"


def new_event_id() -> str:
    return f"evt_{_uuid4_hex()}"


def new_outbox_message_id() -> str:
    return f"outbox_{_uuid4_hex()}"
