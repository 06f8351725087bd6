"""UTC millisecond timestamps: the only time shape on the wire and in storage.

JavaScript ``Date`` has millisecond precision; truncating here keeps every round trip exact.
"""

from datetime import UTC, datetime, timedelta

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def utc_ms(
    value: datetime, *, field: str = "datetime", code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> datetime:
    """Return ``value`` in UTC truncated to milliseconds; naive datetimes are rejected."""
    if type(value) is datetime and value.tzinfo is UTC and value.microsecond % 1000 == 0:
        return value  # already normalised: the hot path on every event and record
    if not isinstance(value, datetime):
        raise RunlaneError(
            code, f"{field} must be a datetime, got {type(value).__name__}.", meta={"field": field}
        )
    if value.tzinfo is None or value.tzinfo.utcoffset(value) is None:
        raise RunlaneError(code, f"{field} must be timezone-aware.", meta={"field": field})
    value = value.astimezone(UTC)
    return value.replace(microsecond=value.microsecond - value.microsecond % 1000)


def to_wire_time(value: datetime) -> str:
    """``2025-01-02T03:04:05.678Z`` (JavaScript ``toISOString()``)."""
    value = utc_ms(value)
    # Not strftime("%Y"): it does not zero-pad years below 1000, and toISOString() does.
    return (
        f"{value.year:04d}-{value.month:02d}-{value.day:02d}T"
        f"{value.hour:02d}:{value.minute:02d}:{value.second:02d}.{value.microsecond // 1000:03d}Z"
    )


def from_wire_time(
    value: object, *, field: str = "datetime", code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> datetime:
    if isinstance(value, datetime):
        return utc_ms(value, field=field, code=code)
    if not isinstance(value, str) or not value:
        raise RunlaneError(code, f"{field} must be an ISO-8601 string.", meta={"field": field})
    text = value[:-1] + "+00:00" if value.endswith("Z") else value
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RunlaneError(
            code, f"{field} {value[:40]!r} is not an ISO-8601 datetime.", meta={"field": field}
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return utc_ms(parsed, field=field, code=code)


def to_epoch_ms(value: datetime) -> int:
    return (utc_ms(value) - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(milliseconds: int) -> datetime:
    return EPOCH + timedelta(milliseconds=milliseconds)


def add_ms(value: datetime, milliseconds: int) -> datetime:
    return value + timedelta(milliseconds=milliseconds)
