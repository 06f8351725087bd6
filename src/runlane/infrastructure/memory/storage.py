"""``InMemoryStorage``: the whole storage contract in process memory (the local lane's storage).

Every method runs to completion under one lock and never awaits in the middle of a mutation, so
each command is atomic for concurrent asyncio tasks (and threads). Multi-run commands
(``claim_due_runs``, ``reserve_dispatch``) validate every plan before committing any of them.
State is reachable only through this instance: two instances share nothing.
"""

import threading
from datetime import datetime

from runlane.domain.errors import (
    RunlaneError,
    capability_unsupported,
    invariant_violation,
    storage_conflict,
    validation_failed,
)
from runlane.domain.pages import Page
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.timestamps import add_ms
from runlane.domain.values import Environment
from runlane.domain.vocabulary import (
    LEASED_RUN_STATUSES,
    RUNNABLE_RUN_STATUSES,
    ErrorCode,
    RunEventType,
    StorageConflictKind,
)
from runlane.infrastructure.memory.capacity import CapacityLedger, Partition, Reservation, partition_of
from runlane.infrastructure.memory.operator_reads import list_run_events, list_runs, select_prunable
from runlane.infrastructure.memory.outbox_store import OutboxStore
from runlane.infrastructure.memory.ownership import (
    OccurrenceRecord,
    OwnershipTable,
    idempotency_key_of,
    retains_idempotency_key,
    singleton_key_of,
)
from runlane.infrastructure.memory.run_store import RunStore
from runlane.infrastructure.memory.staging import (
    StagedAppend,
    stage_append,
    stage_plan,
    takes_lease,
)
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
    ScheduleOccurrenceClaim,
)
from runlane.ports.storage_rules import check_limit, heartbeated, sequence_conflict

LOCAL_STORAGE_CAPABILITIES = StorageCapabilities(
    claims_schedule_occurrences=True,
    durable_state=False,
    enforces_idempotency=True,
    enforces_queue_concurrency=True,
    enforces_singleton=True,
    leases_runs=True,
    persists_outbox=True,
    process_local_state=True,
    prunes_runs=True,
    reads_run_history=True,
)


class InMemoryStorage:
    """Process-local storage; reports ``durable_state=False`` and ``process_local_state=True``."""

    name = "local"
    capabilities = LOCAL_STORAGE_CAPABILITIES

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._runs = RunStore()
        self._capacity = CapacityLedger()
        self._outbox = OutboxStore()
        self._idempotency = OwnershipTable()
        self._singletons = OwnershipTable()
        self._occurrences: dict[tuple[str, str], OccurrenceRecord] = {}

    async def start(self) -> None:
        """Nothing to connect to; state lives as long as this instance."""

    async def close(self) -> None:
        """Keeps the state: a lane may be started again and must find its runs."""

    # -- writes -------------------------------------------------------------------------------

    async def append_many_run_events(self, command: AppendManyRunEvents) -> AppendManyRunEventsResult:
        """Each item is its own atomic append, in input order; conflicts are returned per item."""
        # Checked before anything is applied, so a malformed batch writes nothing.
        for item in command.commands:
            if item.environment != command.environment or item.transaction is not None:
                raise invariant_violation(
                    "append_many_run_events items must share the environment, no transaction."
                )
        results: list[AppendRunEventsResult | RunlaneError] = []
        for item in command.commands:
            try:
                results.append(await self.append_run_events(item))
            except RunlaneError as exc:
                if exc.code is not ErrorCode.STORAGE_CONFLICT:
                    raise
                results.append(exc)
        return AppendManyRunEventsResult(results=tuple(results))

    async def append_run_events(self, command: AppendRunEvents) -> AppendRunEventsResult:
        if command.transaction is not None:
            # Writing now would commit the run whatever the caller's transaction does later.
            raise capability_unsupported(
                "transaction",
                "The in-memory storage cannot join a caller's transaction (trigger(..., connection=...)); "
                "use the Postgres storage, or trigger after your transaction commits.",
            )
        with self._lock:
            environment = command.environment
            old = self._runs.get(environment.name, command.run_id)
            if command.expected_sequence == 0:
                created = command.events[0] if command.events else None
                if created is None or created.type is not RunEventType.CREATED:
                    raise invariant_violation(
                        "A new run's first event must be run.created.", run_id=command.run_id
                    )
                owner = self._live_owner(environment.name, created, command.now)
                if owner is not None:
                    return AppendRunEventsResult(run=owner, returned_existing=True)
                if old is not None:
                    raise sequence_conflict(command.run_id, command.expected_sequence, old.event_sequence)
            elif old is None or old.event_sequence != command.expected_sequence:
                actual = None if old is None else old.event_sequence
                raise sequence_conflict(command.run_id, command.expected_sequence, actual)
            occurrence = self._stage_occurrence(environment, command.schedule_occurrence, command.run_id)
            staged = stage_append(
                environment=environment,
                run_id=command.run_id,
                old=old,
                expected_sequence=command.expected_sequence,
                events=command.events,
                run=command.run,
                now=command.now,
                occurrence=occurrence,
                claim_outbox=command.claim_outbox,
            )
            if (
                command.concurrency_limit is not None
                and takes_lease(old, staged.new)
                and not self._has_capacity(old, staged.new, command.concurrency_limit, command.now)
            ):
                raise storage_conflict(
                    StorageConflictKind.QUEUE_CAPACITY,
                    f"Queue {staged.new.queue!r} has no free slot (limit {command.concurrency_limit}).",
                    {"run_id": command.run_id, "queue": staged.new.queue},
                )
            self._commit(staged)
            return AppendRunEventsResult(
                run=staged.new,
                events=staged.records,
                outbox_message_ids=tuple(row.id for row in staged.outbox),
                claimed_outbox=staged.claimed_outbox,
            )

    async def claim_due_runs(self, command: ClaimDueRuns) -> tuple[ClaimedRun, ...]:
        with self._lock:
            limit = check_limit(command.limit)
            env = command.environment.name
            queues = None if command.queues is None else frozenset(command.queues)
            task_ids = None if command.task_ids is None else frozenset(command.task_ids)
            occupancy: dict[Partition, int] = {}
            staged: list[StagedAppend] = []
            for run in self._runs.by_availability(env, RUNNABLE_RUN_STATUSES):
                if len(staged) >= limit or run.available_at > command.now:
                    break
                if queues is not None and run.queue not in queues:
                    continue
                if task_ids is not None and run.task_id not in task_ids:
                    continue
                queue_limit = command.concurrency_limits.get(run.queue)
                reserved = self._capacity.live_reservation(env, run.id, command.now) is not None
                partition = partition_of(run)
                if queue_limit is not None and not reserved:
                    used = occupancy.setdefault(partition, self._capacity.occupancy(partition, command.now))
                    if used >= queue_limit:
                        continue
                plan = command.plan(run)
                if plan is None:
                    continue
                item = stage_plan(command.environment, run, plan, command.now)
                if queue_limit is not None and not reserved and takes_lease(run, item.new):
                    occupancy[partition] += 1
                staged.append(item)
            for item in staged:
                self._commit(item)
            return tuple(ClaimedRun(run=item.new, events=item.records) for item in staged)

    async def heartbeat_run_lease(self, command: HeartbeatRunLease) -> RunRecord:
        with self._lock:
            env = command.environment.name
            run = self._runs.get(env, command.run_id)
            updated = heartbeated(run, command)
            assert run is not None
            self._runs.replace_projection(env, run, updated)
            return updated

    async def reset_idempotency_key(self, command: ResetIdempotencyKey) -> bool:
        with self._lock:
            key = (command.environment.name, command.task_id, command.key)
            owner_id = self._idempotency.owner_id(key)
            if owner_id is None:
                return False
            owner = self._runs.get(command.environment.name, owner_id)
            if owner is not None and owner.is_active:
                raise storage_conflict(
                    StorageConflictKind.IDEMPOTENCY_OWNER,
                    f"Idempotency key is owned by active run {owner.id}; it cannot be reset.",
                    {"run_id": owner.id},
                )
            self._idempotency.release(key)
            return owner is not None and retains_idempotency_key(owner, command.now)

    async def reserve_dispatch(self, command: ReserveDispatch) -> tuple[ClaimedRun, ...]:
        with self._lock:
            limit = check_limit(command.limit)
            if isinstance(command.concurrency_limit, bool) or command.concurrency_limit < 1:
                raise validation_failed("concurrency_limit must be a positive integer.")
            env = command.environment.name
            expires_at = (
                None
                if command.dispatch_timeout_ms is None
                else add_ms(command.now, command.dispatch_timeout_ms)
            )
            free: dict[Partition, int] = {}
            staged: list[tuple[StagedAppend, Reservation | None]] = []
            for run in self._runs.by_availability(env, RUNNABLE_RUN_STATUSES):
                if len(staged) >= limit or run.available_at > command.now:
                    break
                if run.queue != command.queue or self._capacity.live_reservation(env, run.id, command.now):
                    continue
                partition = partition_of(run)
                slots = free.setdefault(
                    partition, command.concurrency_limit - self._capacity.occupancy(partition, command.now)
                )
                if slots <= 0:
                    continue
                plan = command.plan(run)
                if plan is None:
                    continue
                item = stage_plan(command.environment, run, plan, command.now)
                reservation = None
                if item.new.status in RUNNABLE_RUN_STATUSES:
                    reservation = Reservation(
                        run_id=run.id, partition=partition, reserved_at=command.now, expires_at=expires_at
                    )
                    free[partition] -= 1
                staged.append((item, reservation))
            for item, reservation in staged:
                self._commit(item)
                if reservation is not None:
                    self._capacity.reserve(reservation)
            return tuple(ClaimedRun(run=item.new, events=item.records) for item, _ in staged)

    async def release_expired_reservations(self, command: ReleaseExpiredReservations) -> int:
        with self._lock:
            limit = check_limit(command.limit)
            return self._capacity.release_expired(command.environment.name, command.now, limit)

    async def claim_outbox_messages(self, command: ClaimOutboxMessages) -> tuple[OutboxMessage, ...]:
        with self._lock:
            limit = check_limit(command.limit)
            timeout = check_limit(command.claim_timeout_ms, "claim_timeout_ms")
            return self._outbox.claim(
                command.environment.name,
                now=command.now,
                limit=limit,
                claim_timeout_ms=timeout,
                ids=command.ids,
            )

    async def complete_outbox_messages(self, command: CompleteOutboxMessages) -> int:
        with self._lock:
            return self._outbox.complete(command.environment.name, command.completions)

    async def prune_runs(self, command: PruneRuns) -> PruneRunsResult:
        with self._lock:
            check_limit(command.limit)
            chosen, next_cursor = select_prunable(self._runs, command)
            env = command.environment.name
            for run in chosen:
                self._runs.delete(env, run)
                self._capacity.on_run_deleted(run)
                self._outbox.delete_for_run(env, run.id)
                idempotency_key = idempotency_key_of(run)
                if idempotency_key is not None:
                    self._idempotency.release(idempotency_key, run.id)
                singleton_key = singleton_key_of(run)
                if singleton_key is not None:
                    self._singletons.release(singleton_key, run.id)
                # Schedule occurrences stay claimed: a once-schedule's past fire time stays "latest
                # due" forever, and forgetting it would materialise the occurrence a second time.
            return PruneRunsResult(deleted=len(chosen), next_cursor=next_cursor)

    # -- reads --------------------------------------------------------------------------------

    async def get_run(self, query: GetRun) -> RunRecord | None:
        with self._lock:
            return self._runs.get(query.environment.name, query.run_id)

    async def get_run_by_idempotency_key(self, query: GetRunByIdempotencyKey) -> RunRecord | None:
        with self._lock:
            key = (query.environment.name, query.task_id, query.key)
            owner_id = self._idempotency.owner_id(key)
            owner = None if owner_id is None else self._runs.get(query.environment.name, owner_id)
            return owner if owner is not None and retains_idempotency_key(owner, query.now) else None

    async def list_runs(self, query: ListRuns) -> Page[RunRecord]:
        with self._lock:
            return list_runs(self._runs, query)

    async def list_run_events(self, query: ListRunEvents) -> Page[RunEventRecord]:
        with self._lock:
            return list_run_events(self._runs, query)

    async def list_due_runs(self, query: ListDueRuns) -> tuple[RunRecord, ...]:
        with self._lock:
            limit = check_limit(query.limit)
            queues = None if query.queues is None else frozenset(query.queues)
            excluded = frozenset(query.exclude_queues)
            due: list[RunRecord] = []
            for run in self._runs.by_availability(query.environment.name, query.statuses):
                if len(due) >= limit or run.available_at > query.now:
                    break
                if (queues is None or run.queue in queues) and run.queue not in excluded:
                    due.append(run)
            return tuple(due)

    async def list_expired_leases(self, query: ListExpiredLeases) -> tuple[RunRecord, ...]:
        with self._lock:
            limit = check_limit(query.limit)
            expired = [
                run
                for run in self._runs.in_statuses(query.environment.name, LEASED_RUN_STATUSES)
                if run.lease is not None and run.lease.expires_at <= query.now
            ]
            expired.sort(key=lambda run: (run.lease.expires_at if run.lease else query.now, run.id))
            return tuple(expired[:limit])

    async def list_outbox_messages(self, query: ListOutboxMessages) -> tuple[OutboxMessage, ...]:
        with self._lock:
            limit = check_limit(query.limit)
            return self._outbox.list(
                query.environment.name, run_id=query.run_id, statuses=query.statuses, limit=limit
            )

    # -- internals ----------------------------------------------------------------------------

    def _live_owner(self, env: str, created: RunEvent, now: datetime) -> RunRecord | None:
        """The run that still owns the created event's idempotency or singleton key, if any."""
        assert created.task_id is not None
        if created.idempotency_key is not None:
            owner_id = self._idempotency.owner_id((env, created.task_id, created.idempotency_key))
            owner = None if owner_id is None else self._runs.get(env, owner_id)
            if owner is not None and retains_idempotency_key(owner, now):
                return owner
        if created.singleton_key is not None:
            owner_id = self._singletons.owner_id((env, created.task_id, created.singleton_key))
            owner = None if owner_id is None else self._runs.get(env, owner_id)
            if owner is not None and owner.is_active:
                return owner
        return None

    def _stage_occurrence(
        self, environment: Environment, claim: ScheduleOccurrenceClaim | None, run_id: str
    ) -> OccurrenceRecord | None:
        if claim is None:
            return None
        if (environment.name, claim.occurrence_id) in self._occurrences:
            raise storage_conflict(
                StorageConflictKind.SCHEDULE_OCCURRENCE,
                f"Schedule occurrence {claim.occurrence_id!r} was already claimed.",
                {"schedule_id": claim.schedule_id, "occurrence_id": claim.occurrence_id},
            )
        return OccurrenceRecord(
            schedule_id=claim.schedule_id,
            occurrence_id=claim.occurrence_id,
            fire_time=claim.fire_time,
            task_id=claim.task_id,
            run_id=run_id,
        )

    def _commit(self, staged: StagedAppend) -> None:
        env = staged.environment.name
        self._runs.put(env, staged.old, staged.new, staged.records)
        self._capacity.on_run_changed(staged.old, staged.new)
        for row in staged.outbox:
            self._outbox.add(row)
        if staged.old is None:
            idempotency_key = idempotency_key_of(staged.new)
            if idempotency_key is not None:
                self._idempotency.take(idempotency_key, staged.new.id)
            singleton_key = singleton_key_of(staged.new)
            if singleton_key is not None:
                self._singletons.take(singleton_key, staged.new.id)
        if staged.occurrence is not None:
            self._occurrences[(env, staged.occurrence.occurrence_id)] = staged.occurrence

    def _has_capacity(self, old: RunRecord | None, new: RunRecord, limit: int, now: datetime) -> bool:
        if old is not None and self._capacity.live_reservation(new.environment.name, old.id, now) is not None:
            return True
        return self._capacity.occupancy(partition_of(new), now) < limit
