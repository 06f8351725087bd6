"""Duration strings (``500ms``, ``30s``, ``5m``, ``1h``, ``7d``) resolved to whole milliseconds."""

import re
from dataclasses import dataclass
from datetime import timedelta

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

_GRAMMAR = re.compile(r"^(0|[1-9][0-9]*)(ms|s|m|h|d)$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
MAX_SAFE_INTEGER = 2**53 - 1


@dataclass(frozen=True, slots=True)
class DurationValue:
    """A parsed duration: the original string and its positive millisecond value."""

    duration: str
    milliseconds: int

    def to_timedelta(self) -> timedelta:
        return timedelta(milliseconds=self.milliseconds)

    def __str__(self) -> str:
        return self.duration


DurationInput = str | timedelta | DurationValue


def parse_duration(
    value: object, *, code: ErrorCode = ErrorCode.VALIDATION_FAILED, field: str = "duration"
) -> DurationValue:
    """Parse a duration string with the documented grammar; anything else raises ``RunlaneError``."""
    if not isinstance(value, str):
        raise RunlaneError(
            code,
            f"{field} must be a duration string like '500ms', '30s', '5m', '1h' or '7d', "
            f"got {type(value).__name__}.",
            meta={"field": field},
        )
    # fullmatch: with match(), '$' would also accept a trailing newline ('5s\n').
    match = _GRAMMAR.fullmatch(value)
    if match is None:
        raise RunlaneError(
            code,
            f"{field} {value[:40]!r} is not a duration: use an integer and one unit of ms, s, m, h, d "
            "(for example '500ms', '30s', '5m', '1h', '7d').",
            meta={"field": field},
        )
    milliseconds = int(match.group(1)) * _UNIT_MS[match.group(2)]
    if milliseconds <= 0:
        raise RunlaneError(code, f"{field} must be greater than zero, got {value!r}.", meta={"field": field})
    if milliseconds > MAX_SAFE_INTEGER:
        raise RunlaneError(code, f"{field} {value!r} is too large.", meta={"field": field})
    return DurationValue(duration=value, milliseconds=milliseconds)


def to_duration(
    value: object, *, code: ErrorCode = ErrorCode.VALIDATION_FAILED, field: str = "duration"
) -> DurationValue:
    """Accept a duration string, a positive ``timedelta`` (whole milliseconds) or a ``DurationValue``."""
    if isinstance(value, DurationValue):
        return value
    if isinstance(value, timedelta):
        milliseconds, remainder = divmod(value // timedelta(microseconds=1), 1_000)
        if remainder or milliseconds <= 0 or milliseconds > MAX_SAFE_INTEGER:
            raise RunlaneError(
                code,
                f"{field} must be a positive whole number of milliseconds, got {value!r}.",
                meta={"field": field},
            )
        return DurationValue(duration=f"{milliseconds}ms", milliseconds=milliseconds)
    return parse_duration(value, code=code, field=field)


def format_milliseconds(milliseconds: int) -> str:
    """The largest exact unit, e.g. ``90000`` -> ``'90s'``, ``300000`` -> ``'5m'``."""
    for unit in ("d", "h", "m", "s"):
        if milliseconds % _UNIT_MS[unit] == 0:
            return f"{milliseconds // _UNIT_MS[unit]}{unit}"
    return f"{milliseconds}ms"
