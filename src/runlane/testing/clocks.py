"""Deterministic clocks for tests: time moves only when the test says so."""

from datetime import UTC, datetime, timedelta

from runlane.domain.durations import DurationInput, to_duration
from runlane.domain.timestamps import add_ms, utc_ms

DEFAULT_START = datetime(2025, 1, 1, tzinfo=UTC)


class ControlledClock:
    """A clock that stands still until ``set()`` or ``advance()`` moves it (millisecond precision)."""

    def __init__(self, start: datetime = DEFAULT_START) -> None:
        self._now = utc_ms(start, field="clock start")

    def now(self) -> datetime:
        return self._now

    def set(self, value: datetime) -> datetime:
        """Jump to ``value`` (backwards too: tests of clock skew need it)."""
        self._now = utc_ms(value, field="clock time")
        return self._now

    def advance(self, duration: DurationInput) -> datetime:
        """Move forward by a duration string (``'30s'``), ``timedelta`` or ``DurationValue``."""
        self._now = add_ms(self._now, to_duration(duration, field="clock advance").milliseconds)
        return self._now


class StepClock:
    """Returns ``start`` on the first read and moves forward by ``step`` after every read."""

    def __init__(self, start: datetime = DEFAULT_START, step: DurationInput = "1ms") -> None:
        self._next = utc_ms(start, field="clock start")
        self._step = timedelta(milliseconds=to_duration(step, field="clock step").milliseconds)

    def now(self) -> datetime:
        current = self._next
        self._next = current + self._step
        return current

    def peek(self) -> datetime:
        """The time the next ``now()`` returns, without advancing."""
        return self._next


def create_controlled_clock(start: datetime = DEFAULT_START) -> ControlledClock:
    return ControlledClock(start)


def create_step_clock(start: datetime = DEFAULT_START, step: DurationInput = "1ms") -> StepClock:
    return StepClock(start, step)
