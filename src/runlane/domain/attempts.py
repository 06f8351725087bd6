"""Attempt summaries derived from history (``runs.attempts``): one per lease claim."""

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from runlane.domain.run_events import RunEvent
from runlane.domain.values import RunFailure
from runlane.domain.vocabulary import RunAttemptStatus, RunEventType
from runlane.domain.wire import compact, time_or_none

_OUTCOMES = {
    RunEventType.SUCCEEDED: RunAttemptStatus.SUCCEEDED,
    RunEventType.FAILED: RunAttemptStatus.FAILED,
    RunEventType.RETRY_SCHEDULED: RunAttemptStatus.RETRY_SCHEDULED,
    RunEventType.RELEASED: RunAttemptStatus.RELEASED,
    RunEventType.CANCELLED: RunAttemptStatus.CANCELLED,
    RunEventType.LEASE_EXPIRED: RunAttemptStatus.LEASE_EXPIRED,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class RunAttemptSummary:
    attempt: int
    status: RunAttemptStatus
    started_at: datetime
    finished_at: datetime | None = None
    worker_id: str | None = None
    failure: RunFailure | None = None

    def to_wire(self) -> dict[str, Any]:
        return compact(
            {
                "attempt": self.attempt,
                "status": self.status.value,
                "startedAt": time_or_none(self.started_at),
                "finishedAt": time_or_none(self.finished_at),
                "workerId": self.worker_id,
                "failure": None if self.failure is None else self.failure.to_wire(),
            }
        )


def summarize_attempts(events: Iterable[RunEvent]) -> tuple[RunAttemptSummary, ...]:
    """Fold events (in sequence order) into one summary per attempt."""
    attempts: list[RunAttemptSummary] = []
    for event in events:
        if event.type is RunEventType.LEASE_CLAIMED:
            assert event.lease is not None
            attempts.append(
                RunAttemptSummary(
                    attempt=len(attempts) + 1,
                    status=RunAttemptStatus.RUNNING,
                    started_at=event.occurred_at,
                    worker_id=event.lease.worker_id,
                )
            )
            continue
        outcome = _OUTCOMES.get(event.type)
        if outcome is None or not attempts or attempts[-1].finished_at is not None:
            continue
        attempts[-1] = replace(
            attempts[-1], status=outcome, finished_at=event.occurred_at, failure=event.failure
        )
    return tuple(attempts)
