"""What a handler receives next to its payload: the abort signal, release(), and lease controls."""

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from runlane.application.signal import AbortSignal
from runlane.domain.durations import DurationValue
from runlane.domain.json_values import JsonValue
from runlane.domain.release import TaskRelease, release
from runlane.domain.run_record import RunRecord


class AttemptHandle:
    """In-process view of one running attempt, so a local cancel reaches it without waiting."""

    def __init__(self, run_id: str, signal: AbortSignal) -> None:
        self.run_id = run_id
        self.signal = signal
        self.cancellation_requested = False
        self.lease_lost = False

    def notify_cancellation(self) -> None:
        self.cancellation_requested = True
        self.signal.abort("cancellation_requested")

    def notify_lease_lost(self) -> None:
        self.lease_lost = True
        self.signal.abort("lease_lost")


class TaskContext:
    """Passed to every handler; ``release(...)`` must be *returned*, it is not raised."""

    def __init__(
        self,
        *,
        run: RunRecord,
        handle: AttemptHandle,
        heartbeat: Callable[[], Awaitable[None]],
    ) -> None:
        self._run = run
        self._handle = handle
        self._heartbeat = heartbeat

    @property
    def run(self) -> RunRecord:
        """The leased run as this attempt started."""
        return self._run

    @property
    def attempt(self) -> int:
        return self._run.attempts

    @property
    def signal(self) -> AbortSignal:
        return self._handle.signal

    def is_cancellation_requested(self) -> bool:
        return self._handle.cancellation_requested

    def release(
        self,
        delay: str | DurationValue | datetime | Any,
        *,
        reason: str | None = None,
        meta: dict[str, JsonValue] | None = None,
    ) -> TaskRelease:
        """Continue this same run later (not a failure, no retry budget used)."""
        return release(delay, reason=reason, meta=meta)

    async def heartbeat(self) -> None:
        """Extend the lease now (automatic heartbeats also run while the handler executes)."""
        await self._heartbeat()
