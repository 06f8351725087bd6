"""Ownership rows: idempotency keys, singleton keys and schedule occurrences.

Owners are stored as run ids; whether an owner still holds its key is decided from the owner's
current projection at the time of the question (``owner_is_retained`` for idempotency, "still
active" for singletons), so no row ever needs a background sweep.
"""

from dataclasses import dataclass
from datetime import datetime

from runlane.domain.idempotency import owner_is_retained
from runlane.domain.run_record import RunRecord

OwnerKey = tuple[str, str, str]  # (environment, task id, key)


@dataclass(frozen=True, slots=True, kw_only=True)
class OccurrenceRecord:
    schedule_id: str
    occurrence_id: str
    fire_time: datetime
    task_id: str
    run_id: str


def idempotency_key_of(run: RunRecord) -> OwnerKey | None:
    if run.idempotency_key is None:
        return None
    return (run.environment.name, run.task_id, run.idempotency_key)


def singleton_key_of(run: RunRecord) -> OwnerKey | None:
    if run.singleton_key is None:
        return None
    return (run.environment.name, run.task_id, run.singleton_key)


def retains_idempotency_key(run: RunRecord, now: datetime) -> bool:
    return owner_is_retained(
        status=run.status, created_at=run.created_at, ttl=run.idempotency_key_ttl, now=now
    )


class OwnershipTable:
    """Maps a key to the run that last took it; callers judge whether that run still owns it."""

    def __init__(self) -> None:
        self._owners: dict[OwnerKey, str] = {}

    def owner_id(self, key: OwnerKey) -> str | None:
        return self._owners.get(key)

    def take(self, key: OwnerKey, run_id: str) -> None:
        self._owners[key] = run_id

    def release(self, key: OwnerKey, run_id: str | None = None) -> None:
        """Drop the row; with ``run_id`` only when that run is still the recorded owner."""
        if run_id is None or self._owners.get(key) == run_id:
            self._owners.pop(key, None)
