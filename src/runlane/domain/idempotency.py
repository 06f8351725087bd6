"""Idempotency retention: which terminal owners keep a key, and for how long."""

from dataclasses import dataclass
from datetime import datetime

from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.durations import DurationValue, to_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.timestamps import add_ms
from runlane.domain.vocabulary import ErrorCode, RunStatus, is_active

ACTIVE_TTL = "active"


@dataclass(frozen=True, slots=True)
class IdempotencyTtl:
    """A finite duration, or ``'active'`` (ownership ends at any terminal status)."""

    value: str
    duration: DurationValue | None

    @property
    def is_active_only(self) -> bool:
        return self.duration is None


def parse_idempotency_ttl(value: object, *, code: ErrorCode = ErrorCode.VALIDATION_FAILED) -> IdempotencyTtl:
    if value is None:
        value = CONTRACT_DEFAULTS.idempotency.ttl
    if value == ACTIVE_TTL:
        return IdempotencyTtl(value=ACTIVE_TTL, duration=None)
    try:
        duration = to_duration(value, code=code, field="idempotency_key_ttl")
    except RunlaneError as exc:
        raise RunlaneError(
            code, f"idempotency_key_ttl must be a duration string or 'active': {exc.message}", meta=exc.meta
        ) from exc
    return IdempotencyTtl(value=duration.duration, duration=duration)


def owner_is_retained(*, status: RunStatus, created_at: datetime, ttl: str | None, now: datetime) -> bool:
    """Whether a run still owns its idempotency key at ``now``.

    Active owners always do. Failed owners release at once; ``'active'`` TTLs release at any terminal
    status; succeeded and cancelled owners are kept until ``created_at + ttl`` (GAPS #13 anchor).
    """
    if is_active(status):
        return True
    if status is RunStatus.FAILED:
        return False
    parsed = parse_idempotency_ttl(ttl)
    if parsed.duration is None:
        return False
    return now < add_ms(created_at, parsed.duration.milliseconds)
