"""The storage port: storage owns durable truth and every cross-process concurrency decision.

Core computes events and projections with the pure reducer; storage verifies and commits them
atomically with the rows it owns (ownership, reservations, occurrences, outbox). A method whose
capability flag is false raises ``RunlaneError(capability_unsupported)``; it never fakes success.
Conflicts raise ``storage_conflict`` (see ``runlane.domain.errors.storage_conflict``) and write nothing.
"""

from typing import Protocol, runtime_checkable

from runlane.domain.pages import Page
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.ports.capabilities import StorageCapabilities
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    AppendManyRunEventsResult,
    AppendRunEvents,
    AppendRunEventsResult,
    ClaimDueRuns,
    ClaimedRun,
    ClaimOutboxMessages,
    CompleteOutboxMessages,
    GetRun,
    GetRunByIdempotencyKey,
    HeartbeatRunLease,
    ListDueRuns,
    ListExpiredLeases,
    ListOutboxMessages,
    ListRunEvents,
    ListRuns,
    OutboxMessage,
    PruneRuns,
    PruneRunsResult,
    ReleaseExpiredReservations,
    ReserveDispatch,
    ResetIdempotencyKey,
)


@runtime_checkable
class StorageAdapter(Protocol):
    name: str
    capabilities: StorageCapabilities

    async def start(self) -> None:
        """Connect and verify (e.g. probe migrated tables); ``configuration_invalid`` if unusable."""
        ...

    async def close(self) -> None: ...

    async def append_run_events(self, command: AppendRunEvents) -> AppendRunEventsResult:
        """Atomic compare-and-append.

        Conflicts: ``sequence`` when the stored sequence differs from ``expected_sequence`` (or the run
        exists on create); ``schedule_occurrence`` when the occurrence was already claimed;
        ``queue_capacity`` when a lease would exceed ``concurrency_limit``. A create whose idempotency
        or singleton key has a live owner returns that owner with ``returned_existing=True``.
        """
        ...

    async def append_many_run_events(self, command: AppendManyRunEvents) -> AppendManyRunEventsResult:
        """Apply independent appends in one round trip; per-item conflicts are returned, not raised.

        Only ``storage_conflict`` errors are returned per item; any other failure raises for the call.
        """
        ...

    async def claim_due_runs(self, command: ClaimDueRuns) -> tuple[ClaimedRun, ...]:
        """Lease up to ``limit`` due runs at once; concurrent claimers never get the same run."""
        ...

    async def heartbeat_run_lease(self, command: HeartbeatRunLease) -> RunRecord:
        """Extend a held lease. Conflicts: ``sequence`` if the run changed, ``lease`` if not the holder."""
        ...

    async def get_run(self, query: GetRun) -> RunRecord | None: ...

    async def get_run_by_idempotency_key(self, query: GetRunByIdempotencyKey) -> RunRecord | None:
        """The active owner, or the retained terminal owner (succeeded/cancelled within TTL)."""
        ...

    async def reset_idempotency_key(self, command: ResetIdempotencyKey) -> bool:
        """Clear retained ownership of one key; ``idempotency_owner`` conflict if the owner is active."""
        ...

    async def list_runs(self, query: ListRuns) -> Page[RunRecord]: ...

    async def list_run_events(self, query: ListRunEvents) -> Page[RunEventRecord]: ...

    async def list_due_runs(self, query: ListDueRuns) -> tuple[RunRecord, ...]: ...

    async def list_expired_leases(self, query: ListExpiredLeases) -> tuple[RunRecord, ...]: ...

    async def reserve_dispatch(self, command: ReserveDispatch) -> tuple[ClaimedRun, ...]:
        """Reserve bounded-queue capacity and append the planned delivery requests, per run atomically."""
        ...

    async def release_expired_reservations(self, command: ReleaseExpiredReservations) -> int: ...

    async def claim_outbox_messages(self, command: ClaimOutboxMessages) -> tuple[OutboxMessage, ...]: ...

    async def complete_outbox_messages(self, command: CompleteOutboxMessages) -> int:
        """Apply outcomes whose claim token still matches; returns how many were applied."""
        ...

    async def list_outbox_messages(self, query: ListOutboxMessages) -> tuple[OutboxMessage, ...]: ...

    async def prune_runs(self, command: PruneRuns) -> PruneRunsResult: ...
