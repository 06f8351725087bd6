"""Bounded-queue capacity: leased runs and dispatch reservations per partition.

A partition is (environment, queue, concurrency key). Its occupancy is the number of runs holding
a lease (``running`` / ``cancellation_requested``) plus the unexpired reservations of runnable runs
(GAPS #32). A reservation ends when its run leaves the runnable statuses or when maintenance
releases it after ``expires_at``.
"""

from dataclasses import dataclass
from datetime import datetime

from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import LEASED_RUN_STATUSES, RUNNABLE_RUN_STATUSES

Partition = tuple[str, str, str | None]


def partition_of(run: RunRecord) -> Partition:
    return (run.environment.name, run.queue, run.concurrency_key)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reservation:
    run_id: str
    partition: Partition
    reserved_at: datetime
    expires_at: datetime | None

    def is_live(self, now: datetime) -> bool:
        return self.expires_at is None or self.expires_at > now


class CapacityLedger:
    def __init__(self) -> None:
        self._leased: dict[Partition, set[str]] = {}
        self._by_partition: dict[Partition, dict[str, Reservation]] = {}
        self._by_environment: dict[str, dict[str, Reservation]] = {}

    def occupancy(self, partition: Partition, now: datetime) -> int:
        leased = len(self._leased.get(partition, ()))
        reserved = sum(1 for r in self._by_partition.get(partition, {}).values() if r.is_live(now))
        return leased + reserved

    def live_reservation(self, environment: str, run_id: str, now: datetime) -> Reservation | None:
        reservation = self._by_environment.get(environment, {}).get(run_id)
        return reservation if reservation is not None and reservation.is_live(now) else None

    def reserve(self, reservation: Reservation) -> None:
        environment = reservation.partition[0]
        self._drop(environment, reservation.run_id)
        self._by_partition.setdefault(reservation.partition, {})[reservation.run_id] = reservation
        self._by_environment.setdefault(environment, {})[reservation.run_id] = reservation

    def on_run_changed(self, old: RunRecord | None, new: RunRecord) -> None:
        if old is not None and old.status in LEASED_RUN_STATUSES:
            self._leased.get(partition_of(old), set()).discard(old.id)
        if new.status in LEASED_RUN_STATUSES:
            self._leased.setdefault(partition_of(new), set()).add(new.id)
        if new.status not in RUNNABLE_RUN_STATUSES:
            self._drop(new.environment.name, new.id)

    def on_run_deleted(self, run: RunRecord) -> None:
        self._leased.get(partition_of(run), set()).discard(run.id)
        self._drop(run.environment.name, run.id)

    def release_expired(self, environment: str, now: datetime, limit: int) -> int:
        expired = sorted(
            (r for r in self._by_environment.get(environment, {}).values() if not r.is_live(now)),
            key=lambda r: (r.expires_at or now, r.run_id),
        )[:limit]
        for reservation in expired:
            self._drop(environment, reservation.run_id)
        return len(expired)

    def _drop(self, environment: str, run_id: str) -> None:
        reservation = self._by_environment.get(environment, {}).pop(run_id, None)
        if reservation is not None:
            self._by_partition.get(reservation.partition, {}).pop(run_id, None)
