"""Parse command-line values (durations, times, JSON) into runlane values with flag-named errors."""

import json
from datetime import UTC, datetime
from pathlib import Path

from runlane.domain.durations import DurationValue, parse_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.json_values import JsonValue
from runlane.domain.vocabulary import ErrorCode


def _invalid(message: str) -> RunlaneError:
    return RunlaneError(ErrorCode.VALIDATION_FAILED, message)


def duration_option(value: str, flag: str) -> DurationValue:
    try:
        return parse_duration(value, field=flag)
    except RunlaneError:
        raise _invalid(f"{flag}: must be a duration like 500ms, 30s, 5m, 1h or 7d (got {value!r})") from None


def time_option(value: str, flag: str, now: datetime) -> datetime:
    """An ISO 8601 time (UTC when no offset is given) or a duration meaning that long ago."""
    try:
        return now - parse_duration(value).to_timedelta()
    except RunlaneError:
        pass
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(
            f"{flag}: must be an ISO 8601 time (2025-01-31T12:00:00Z) "
            f"or a duration ago like 2h (got {value!r})"
        ) from None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def json_option(value: str | None, flag: str) -> JsonValue:
    """JSON text, or ``@path`` to read it from a file; ``None`` stays ``None``."""
    if value is None:
        return None
    text = value
    if value.startswith("@"):
        try:
            text = Path(value[1:]).read_text(encoding="utf-8")
        except OSError as exc:
            raise _invalid(f"{flag}: cannot read {value[1:]!r} ({exc.strerror})") from None
    try:
        parsed: JsonValue = json.loads(text)
    except ValueError as exc:
        raise _invalid(f"{flag}: not valid JSON ({exc})") from None
    return parsed


def name_list(values: list[str] | None) -> tuple[str, ...]:
    """``--status a,b --status c`` -> ``('a', 'b', 'c')``."""
    names: list[str] = []
    for value in values or ():
        names.extend(part.strip() for part in value.split(",") if part.strip())
    return tuple(names)
