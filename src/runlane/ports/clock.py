"""The clock port: core never reads the wall clock directly, so tests can control time."""

from datetime import UTC, datetime
from typing import Protocol, runtime_checkable

from runlane.domain.timestamps import utc_ms


@runtime_checkable
class Clock(Protocol):
    def now(self) -> datetime:
        """Current time, timezone-aware UTC."""
        ...


class SystemClock:
    """Wall-clock time truncated to milliseconds (the precision everything persists)."""

    def now(self) -> datetime:
        return utc_ms(datetime.now(UTC))


SYSTEM_CLOCK = SystemClock()
