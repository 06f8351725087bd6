"""Schedules: once / interval / cron entries that ``tick`` materialises into ordinary runs."""

from dataclasses import dataclass
from datetime import datetime
from typing import cast

from runlane.domain.cron import latest_cron_fire, next_cron_fire, validate_cron, validate_time_zone
from runlane.domain.durations import DurationValue, to_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.ids import IdKind, as_id
from runlane.domain.json_values import JsonValue
from runlane.domain.queues import QueueDefinition
from runlane.domain.timestamps import from_epoch_ms, to_epoch_ms, utc_ms
from runlane.domain.vocabulary import ErrorCode, ScheduleType

_CONFIG = ErrorCode.CONFIGURATION_INVALID


@dataclass(frozen=True, slots=True, kw_only=True)
class Schedule:
    """Exactly one of ``run_at`` (once), ``every`` (interval) or ``cron`` chooses the kind."""

    id: str
    run_at: datetime | None = None
    every: DurationValue | str | None = None
    cron: str | None = None
    time_zone: str | None = None
    queue: QueueDefinition | None = None
    enabled: bool = True
    payload: JsonValue = None

    def __post_init__(self) -> None:
        as_id(IdKind.SCHEDULE, self.id, code=_CONFIG)
        chosen = [name for name in ("run_at", "every", "cron") if getattr(self, name) is not None]
        if len(chosen) != 1:
            raise RunlaneError(
                _CONFIG,
                f"schedule {self.id!r} needs exactly one of run_at, every or cron "
                f"(got {', '.join(chosen) or 'none'}).",
            )
        if self.run_at is not None:
            object.__setattr__(self, "run_at", utc_ms(self.run_at, field="schedule run_at", code=_CONFIG))
        if self.every is not None:
            object.__setattr__(self, "every", to_duration(self.every, code=_CONFIG, field="schedule every"))
        if self.cron is not None:
            validate_cron(self.cron)
        if self.time_zone is not None:
            if self.cron is None:
                raise RunlaneError(
                    _CONFIG, f"schedule {self.id!r}: time_zone applies to cron schedules only."
                )
            validate_time_zone(self.time_zone)
        if self.queue is not None and not isinstance(self.queue, QueueDefinition):
            raise RunlaneError(_CONFIG, f"schedule {self.id!r}: queue must be a queue definition.")
        if not isinstance(self.enabled, bool):
            raise RunlaneError(_CONFIG, f"schedule {self.id!r}: enabled must be a bool.")

    @property
    def every_value(self) -> DurationValue:
        return cast(DurationValue, self.every)

    @property
    def type(self) -> ScheduleType:
        if self.run_at is not None:
            return ScheduleType.ONCE
        if self.every is not None:
            return ScheduleType.INTERVAL
        return ScheduleType.CRON

    def latest_due_fire(self, now: datetime) -> datetime | None:
        """The latest occurrence at or before ``now`` (missed ones are not back-filled)."""
        if self.run_at is not None:
            return self.run_at if self.run_at <= now else None
        if self.every is not None:
            step = self.every_value.milliseconds
            return from_epoch_ms(to_epoch_ms(now) // step * step)
        assert self.cron is not None
        return latest_cron_fire(self.cron, self.time_zone, now)

    def next_fire_after(self, after: datetime) -> datetime | None:
        if self.run_at is not None:
            return self.run_at if self.run_at > after else None
        if self.every is not None:
            step = self.every_value.milliseconds
            return from_epoch_ms((to_epoch_ms(after) // step + 1) * step)
        assert self.cron is not None
        return next_cron_fire(self.cron, self.time_zone, after)


def occurrence_id(schedule_id: str, fire_time: datetime) -> str:
    """Deterministic occurrence identity, so every maintenance process computes the same key."""
    return f"{schedule_id}@{to_epoch_ms(fire_time)}"


def schedule(
    id: str,
    *,
    run_at: datetime | None = None,
    every: str | DurationValue | None = None,
    cron: str | None = None,
    time_zone: str | None = None,
    queue: QueueDefinition | None = None,
    enabled: bool = True,
    payload: JsonValue = None,
) -> Schedule:
    return Schedule(
        id=id,
        run_at=run_at,
        every=None if every is None else to_duration(every, code=_CONFIG, field="schedule every"),
        cron=cron,
        time_zone=time_zone,
        queue=queue,
        enabled=enabled,
        payload=payload,
    )
