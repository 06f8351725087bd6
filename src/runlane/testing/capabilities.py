"""A storage wrapper with overridden capability flags, for core's capability-gating tests.

Disabled capabilities are enforced, not just advertised: the methods (and command shapes) that
need a disabled flag raise ``capability_unsupported`` exactly as an adapter lacking them must.
"""

from dataclasses import asdict, replace

from runlane.domain.errors import capability_unsupported
from runlane.domain.pages import Page
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import RunEventType
from runlane.ports.capabilities import StorageCapabilities
from runlane.ports.storage import StorageAdapter
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


class CapabilityOverrideStorage:
    """Delegates to ``inner`` after checking the (overridden) capability flags."""

    def __init__(self, inner: StorageAdapter, capabilities: StorageCapabilities) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = capabilities

    def _require(self, flag: str) -> None:
        if not getattr(self.capabilities, flag):
            raise capability_unsupported(flag, f"Storage {self.name!r} does not support {flag}.")

    async def start(self) -> None:
        start = getattr(self.inner, "start", None)
        if start is not None:
            await start()

    async def close(self) -> None:
        close = getattr(self.inner, "close", None)
        if close is not None:
            await close()

    async def append_run_events(self, command: AppendRunEvents) -> AppendRunEventsResult:
        self._check_append(command)
        return await self.inner.append_run_events(command)

    async def append_many_run_events(self, command: AppendManyRunEvents) -> AppendManyRunEventsResult:
        for item in command.commands:
            self._check_append(item)
        return await self.inner.append_many_run_events(command)

    def _check_append(self, command: AppendRunEvents) -> None:
        types = {event.type for event in command.events}
        if command.schedule_occurrence is not None:
            self._require("claims_schedule_occurrences")
        if RunEventType.DELIVERY_REQUESTED in types:
            self._require("persists_outbox")
        if RunEventType.LEASE_CLAIMED in types:
            self._require("leases_runs")
        if command.concurrency_limit is not None:
            self._require("enforces_queue_concurrency")
        created = next((e for e in command.events if e.type is RunEventType.CREATED), None)
        if created is not None and created.idempotency_key is not None:
            self._require("enforces_idempotency")
        if created is not None and created.singleton_key is not None:
            self._require("enforces_singleton")

    async def claim_due_runs(self, command: ClaimDueRuns) -> tuple[ClaimedRun, ...]:
        self._require("leases_runs")
        if command.concurrency_limits:
            self._require("enforces_queue_concurrency")
        return await self.inner.claim_due_runs(command)

    async def heartbeat_run_lease(self, command: HeartbeatRunLease) -> RunRecord:
        self._require("leases_runs")
        return await self.inner.heartbeat_run_lease(command)

    async def get_run(self, query: GetRun) -> RunRecord | None:
        return await self.inner.get_run(query)

    async def get_run_by_idempotency_key(self, query: GetRunByIdempotencyKey) -> RunRecord | None:
        self._require("enforces_idempotency")
        return await self.inner.get_run_by_idempotency_key(query)

    async def reset_idempotency_key(self, command: ResetIdempotencyKey) -> bool:
        self._require("enforces_idempotency")
        return await self.inner.reset_idempotency_key(command)

    async def list_runs(self, query: ListRuns) -> Page[RunRecord]:
        self._require("reads_run_history")
        return await self.inner.list_runs(query)

    async def list_run_events(self, query: ListRunEvents) -> Page[RunEventRecord]:
        self._require("reads_run_history")
        return await self.inner.list_run_events(query)

    async def list_due_runs(self, query: ListDueRuns) -> tuple[RunRecord, ...]:
        return await self.inner.list_due_runs(query)

    async def list_expired_leases(self, query: ListExpiredLeases) -> tuple[RunRecord, ...]:
        self._require("leases_runs")
        return await self.inner.list_expired_leases(query)

    async def reserve_dispatch(self, command: ReserveDispatch) -> tuple[ClaimedRun, ...]:
        self._require("enforces_queue_concurrency")
        return await self.inner.reserve_dispatch(command)

    async def release_expired_reservations(self, command: ReleaseExpiredReservations) -> int:
        self._require("enforces_queue_concurrency")
        return await self.inner.release_expired_reservations(command)

    async def claim_outbox_messages(self, command: ClaimOutboxMessages) -> tuple[OutboxMessage, ...]:
        self._require("persists_outbox")
        return await self.inner.claim_outbox_messages(command)

    async def complete_outbox_messages(self, command: CompleteOutboxMessages) -> int:
        self._require("persists_outbox")
        return await self.inner.complete_outbox_messages(command)

    async def list_outbox_messages(self, query: ListOutboxMessages) -> tuple[OutboxMessage, ...]:
        self._require("persists_outbox")
        return await self.inner.list_outbox_messages(query)

    async def prune_runs(self, command: PruneRuns) -> PruneRunsResult:
        self._require("prunes_runs")
        return await self.inner.prune_runs(command)


def storage_with_capabilities(storage: StorageAdapter, **overrides: bool) -> CapabilityOverrideStorage:
    """Wrap ``storage`` with some capability flags replaced (``leases_runs=False``, ...)."""
    unknown = sorted(set(overrides) - set(asdict(storage.capabilities)))
    if unknown:
        raise TypeError(f"Unknown storage capabilities: {', '.join(unknown)}.")
    return CapabilityOverrideStorage(storage, replace(storage.capabilities, **overrides))
