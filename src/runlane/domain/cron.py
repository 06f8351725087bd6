"""Cron fire times via croniter: the one place the domain uses a third-party package."""

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import croniter

from runlane.domain.errors import RunlaneError
from runlane.domain.timestamps import utc_ms
from runlane.domain.vocabulary import ErrorCode

_UTC_NAME = "UTC"


def validate_cron(expression: object, *, code: ErrorCode = ErrorCode.CONFIGURATION_INVALID) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise RunlaneError(code, "cron must be a non-empty cron expression such as '0 9 * * *'.")
    # Five fields only: croniter would read a sixth as seconds, which Runlane does not document.
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise RunlaneError(code, f"cron {expression[:60]!r} is not a valid five-field cron expression.")
    return expression


def validate_time_zone(name: object, *, code: ErrorCode = ErrorCode.CONFIGURATION_INVALID) -> str:
    if not isinstance(name, str) or not name:
        raise RunlaneError(code, "time_zone must be an IANA zone name such as 'America/New_York'.")
    try:
        ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise RunlaneError(code, f"time_zone {name[:60]!r} is not a known IANA time zone.") from exc
    return name


def latest_cron_fire(expression: str, time_zone: str | None, now: datetime) -> datetime:
    """The latest fire time at or before ``now`` (UTC, milliseconds)."""
    zone = ZoneInfo(time_zone or _UTC_NAME)
    local_now = now.astimezone(zone)
    iterator = croniter(expression, local_now + timedelta(seconds=1))
    fire: datetime = iterator.get_prev(datetime)
    while fire > local_now:
        fire = iterator.get_prev(datetime)
    return utc_ms(fire)


def next_cron_fire(expression: str, time_zone: str | None, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (UTC, milliseconds)."""
    zone = ZoneInfo(time_zone or _UTC_NAME)
    fire: datetime = croniter(expression, after.astimezone(zone)).get_next(datetime)
    return utc_ms(fire)
