"""Cron fire times via croniter: the one place the domain uses a third-party package."""

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from croniter import CroniterError, croniter

from runlane.domain.errors import RunlaneError
from runlane.domain.timestamps import utc_ms
from runlane.domain.vocabulary import ErrorCode

_UTC_NAME = "UTC"
_VALIDATION_START = datetime(2000, 1, 1, tzinfo=UTC)


def validate_cron(expression: object, *, code: ErrorCode = ErrorCode.CONFIGURATION_INVALID) -> str:
    if not isinstance(expression, str) or not expression.strip():
        raise RunlaneError(code, "cron must be a non-empty cron expression such as '0 9 * * *'.")
    # Five fields only: croniter would read a sixth as seconds, which Runlane does not document.
    if len(expression.split()) != 5 or not croniter.is_valid(expression):
        raise RunlaneError(code, f"cron {expression[:60]!r} is not a valid five-field cron expression.")
    try:
        # Syntax alone accepts dates that never come ('0 0 30 2 *'); tick would fail on them later.
        croniter(expression, _VALIDATION_START).get_next(datetime)
    except CroniterError as exc:
        raise RunlaneError(code, f"cron {expression[:60]!r} never fires.") from exc
    return expression


def validate_time_zone(name: object, *, code: ErrorCode = ErrorCode.CONFIGURATION_INVALID) -> str:
    if not isinstance(name, str) or not name:
        raise RunlaneError(code, "time_zone must be an IANA zone name such as 'America/New_York'.")
    try:
        ZoneInfo(name)
    except (KeyError, ValueError) as exc:
        raise RunlaneError(code, f"time_zone {name[:60]!r} is not a known IANA time zone.") from exc
    return name


# Bounds for latest_cron_fire's walks; a handful of steps is always enough in practice.
_MAX_BACKWARD_STEPS = 8
_MAX_FORWARD_STEPS = 32


def latest_cron_fire(expression: str, time_zone: str | None, now: datetime) -> datetime:
    """The latest fire time at or before ``now`` (UTC, milliseconds).

    croniter's backward walk is unreliable around DST changes (it can skip a fire inside a repeated
    hour or return one after ``now``, since same-zone datetime comparisons ignore ``fold``). So it
    only supplies a lower bound; the forward walk, compared in UTC, finds the latest fire.
    """
    now = utc_ms(now)
    zone = ZoneInfo(time_zone or _UTC_NAME)
    backward = croniter(expression, now.astimezone(zone) + timedelta(seconds=1))
    fire: datetime | None = None
    for step in range(_MAX_BACKWARD_STEPS):
        candidate = utc_ms(backward.get_prev(datetime))
        if candidate <= now and (fire is None or candidate < fire):
            fire = candidate
            if step >= 2:
                break
    if fire is None:
        raise RunlaneError(
            ErrorCode.INVARIANT_VIOLATION, f"cron {expression!r} has no fire time before {now}."
        )
    for _ in range(_MAX_FORWARD_STEPS):
        following = next_cron_fire(expression, time_zone, fire)
        if following > now:
            break
        fire = following
    return fire


def next_cron_fire(expression: str, time_zone: str | None, after: datetime) -> datetime:
    """The first fire time strictly after ``after`` (UTC, milliseconds)."""
    zone = ZoneInfo(time_zone or _UTC_NAME)
    fire: datetime = croniter(expression, after.astimezone(zone)).get_next(datetime)
    return utc_ms(fire)
