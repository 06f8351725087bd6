"""UTC millisecond timestamps: the only time shape on the wire and in storage.

JavaScript ``Date`` has millisecond precision; truncating here keeps every round trip exact.
"""

from datetime import UTC, datetime, timedelta

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# Formatting and parsing memos: a batch of runs shares a handful of instants (``now``, lease
# expiries), and every record and event is written and read in wire form. Only successful
# conversions are kept; equal aware datetimes are the same instant, hence the same wire text.
_MEMO_LIMIT = 4096
_WIRE_TEXT: dict[datetime, str] = {}
_PARSED: dict[str, datetime] = {}


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
    exact = type(value) is datetime
    if exact:
        text = _WIRE_TEXT.get(value)
        if text is not None:
            return text
    normalised = utc_ms(value)
    # isoformat() zero-pads years below 1000 as toISOString() does (strftime("%Y") does not);
    # a UTC datetime always ends in "+00:00".
    text = normalised.isoformat(timespec="milliseconds")[:-6] + "Z"
    if exact:
        if len(_WIRE_TEXT) >= _MEMO_LIMIT:
            _WIRE_TEXT.clear()
        _WIRE_TEXT[value] = text
    return text


def from_wire_time(
    value: object, *, field: str = "datetime", code: ErrorCode = ErrorCode.VALIDATION_FAILED
) -> datetime:
    if type(value) is str:
        parsed = _PARSED.get(value)
        if parsed is not None:
            return parsed
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
    parsed = utc_ms(parsed, field=field, code=code)
    if type(value) is str:
        if len(_PARSED) >= _MEMO_LIMIT:
            _PARSED.clear()
        _PARSED[value] = parsed
    return parsed


def to_epoch_ms(value: datetime) -> int:
    return (utc_ms(value) - EPOCH) // timedelta(milliseconds=1)


def from_epoch_ms(milliseconds: int) -> datetime:
    return EPOCH + timedelta(milliseconds=milliseconds)


def add_ms(value: datetime, milliseconds: int) -> datetime:
    return value + timedelta(milliseconds=milliseconds)
