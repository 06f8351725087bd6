"""Release is business waiting: the handler returns one to continue the same run later."""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from runlane.domain.durations import DurationValue, to_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.json_values import JsonValue, ensure_json_object
from runlane.domain.timestamps import add_ms, utc_ms
from runlane.domain.vocabulary import ErrorCode


@dataclass(frozen=True, slots=True)
class TaskRelease:
    """Exactly one of ``delay`` or ``run_at``; ``reason``/``meta`` are open vocabulary kept in history."""

    delay: DurationValue | None = None
    run_at: datetime | None = None
    reason: str | None = None
    meta: dict[str, JsonValue] | None = None

    def __post_init__(self) -> None:
        if (self.delay is None) == (self.run_at is None):
            raise RunlaneError(
                ErrorCode.VALIDATION_FAILED, "A release needs exactly one of a delay or a time."
            )
        if self.delay is not None:
            # Normalise so resolve_run_at never meets a raw string (or accepts a non-duration).
            object.__setattr__(self, "delay", to_duration(self.delay, field="release delay"))
        if self.run_at is not None:
            object.__setattr__(self, "run_at", utc_ms(self.run_at, field="release time"))
        if self.reason is not None and (not isinstance(self.reason, str) or not self.reason):
            raise RunlaneError(ErrorCode.VALIDATION_FAILED, "release reason must be a non-empty string.")
        if self.meta is not None:
            object.__setattr__(self, "meta", ensure_json_object(self.meta, field="release meta"))

    def resolve_run_at(self, now: datetime) -> datetime:
        if self.run_at is not None:
            return max(self.run_at, now)
        assert self.delay is not None
        return add_ms(now, self.delay.milliseconds)


def release(
    delay: str | DurationValue | datetime | Any,
    *,
    reason: str | None = None,
    meta: dict[str, JsonValue] | None = None,
) -> TaskRelease:
    """Build a release from a duration string, ``timedelta`` or an aware datetime."""
    if isinstance(delay, datetime):
        return TaskRelease(run_at=delay, reason=reason, meta=meta)
    return TaskRelease(delay=to_duration(delay, field="release delay"), reason=reason, meta=meta)
