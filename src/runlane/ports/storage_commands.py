"""Frozen commands and typed results of the storage port: one command in, one result out."""

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from datetime import datetime

from runlane.domain.errors import RunlaneError
from runlane.domain.pages import PaginationParams
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.slot_init import slot_copier, slot_init, slot_setter
from runlane.domain.values import DeliveryMessage, Environment, OutboxFailureRecord
from runlane.domain.vocabulary import OutboxMessageStatus, RunSortField, RunStatus, SortDirection


@dataclass(frozen=True, slots=True, kw_only=True)
class ScheduleOccurrenceClaim:
    """Claimed in the same atomic write as the run it materialises (exactly once per occurrence id)."""

    schedule_id: str
    occurrence_id: str
    fire_time: datetime
    task_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendRunEvents:
    """Compare-and-append: ``events`` and the projected ``run`` replace the run at ``expected_sequence``.

    For a new run (``expected_sequence == 0``, first event ``run.created``) storage also resolves
    idempotency and singleton ownership from the created event (using ``now`` for TTL retention) and
    claims ``schedule_occurrence`` if given. Every ``run.delivery_requested`` event derives one pending
    outbox row. ``concurrency_limit`` makes storage check bounded-queue capacity when the projection
    takes a lease. All of it commits atomically, or nothing does.

    ``transaction`` is an adapter-specific handle of a caller-owned transaction (for Postgres, the
    caller's SQLAlchemy ``AsyncConnection``): the write joins it and is committed by the caller.
    Adapters that cannot join external transactions raise ``capability_unsupported``.

    ``claim_outbox`` (eager dispatch): the derived outbox rows that are already due (``available_at
    <= now``) are written claimed by this append, exactly as ``ClaimOutboxMessages(ids=...)`` right
    after the commit would leave them (fresh ``claim_token``, ``attempts`` 1, ``claimed_at = now``),
    and come back in ``AppendRunEventsResult.claimed_outbox``. It saves the publisher a claim
    round trip; a publisher that dies before completing them leaves rows that are recovered as
    stranded claims, like any other.

    A storage whose database is also the lane's wakeup transport (Postgres storage in
    ``create_postgres_lane``: ``NOTIFY``) may instead publish those rows' wakeups in the same
    commit. Such rows are written ``published`` (``attempts`` 1, ``published_at = now``), their
    wakeups are delivered exactly when the write commits (and never when it does not), and they
    come back in ``AppendRunEventsResult.published_outbox``: the publisher has nothing left to do
    for them. Rows it cannot publish that way stay in ``claimed_outbox``.

    With ``transaction`` nobody may publish before the caller commits, so ``claim_outbox`` then
    asks only for wakeups sent by that commit: a storage that cannot send them writes the rows
    ``pending`` (``tick`` publishes them once they are visible), never claimed.
    """

    environment: Environment
    run_id: str
    expected_sequence: int
    events: tuple[RunEvent, ...]
    run: RunRecord
    now: datetime
    schedule_occurrence: ScheduleOccurrenceClaim | None = None
    concurrency_limit: int | None = None
    transaction: object | None = None
    claim_outbox: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendRunEventsResult:
    """``returned_existing``: a create converged on an ownership owner and wrote nothing.

    ``claimed_outbox`` / ``published_outbox``: the rows a ``claim_outbox`` append wrote claimed for
    the caller to publish, or already published in its own commit (see ``AppendRunEvents``).
    """

    run: RunRecord
    events: tuple[RunEventRecord, ...] = ()
    outbox_message_ids: tuple[str, ...] = ()
    returned_existing: bool = False
    claimed_outbox: tuple["OutboxMessage", ...] = ()
    published_outbox: tuple["OutboxMessage", ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendManyRunEvents:
    """Several independent compare-and-appends in one round trip (batched creates and outcomes).

    Each item keeps every rule of ``AppendRunEvents`` and succeeds or fails on its own: a conflict
    on one item writes nothing for that item and does not affect the others. All commands must share
    ``environment``; a caller ``transaction`` is not supported here.
    """

    environment: Environment
    commands: tuple[AppendRunEvents, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendManyRunEventsResult:
    """``results[i]`` belongs to ``commands[i]``: the append's result, or the conflict it lost with."""

    results: tuple["AppendRunEventsResult | RunlaneError", ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendPlan:
    """What core decided for one run inside a storage-driven batch: events plus the projection."""

    events: tuple[RunEvent, ...]
    run: RunRecord


# Core's pure projection, called by storage for each candidate it locked. ``None`` skips the run.
PlanFn = Callable[[RunRecord], AppendPlan | None]


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimDueRuns:
    """Lease up to ``limit`` due runs in one atomic step (``FOR UPDATE SKIP LOCKED`` on SQL).

    Candidates: runnable statuses whose availability (``run_at`` or ``updated_at``) is ``<= now``,
    in ``queues`` (all queues when ``None``), ordered by availability then id. Runs of bounded queues
    (``concurrency_limits``) are claimable only while they hold a reservation or their partition
    (environment, queue, concurrency key) has a free slot. ``plan`` builds the lease-claim events.
    """

    environment: Environment
    now: datetime
    limit: int
    plan: PlanFn
    queues: tuple[str, ...] | None = None
    concurrency_limits: Mapping[str, int] = field(default_factory=dict)
    # Only runs of these tasks (the worker's registered catalog); ``None`` claims any task.
    task_ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimedRun:
    run: RunRecord
    events: tuple[RunEventRecord, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeartbeatRunLease:
    """Extend the lease of ``worker_id`` (no event). Conflicts if the sequence moved or the holder differs."""

    environment: Environment
    run_id: str
    worker_id: str
    expected_sequence: int
    heartbeat_at: datetime
    expires_at: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRun:
    environment: Environment
    run_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class GetRunByIdempotencyKey:
    environment: Environment
    task_id: str
    key: str
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class ResetIdempotencyKey:
    environment: Environment
    task_id: str
    key: str
    now: datetime


@dataclass(frozen=True, slots=True, kw_only=True)
class RunFilter:
    environment: Environment
    statuses: tuple[RunStatus, ...] | None = None
    task_ids: tuple[str, ...] | None = None
    queues: tuple[str, ...] | None = None
    idempotency_key: str | None = None
    singleton_key: str | None = None
    created_after: datetime | None = None
    created_before: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class ListRuns:
    """Keyset pagination on (sort field, id): pages stay stable while new runs are inserted."""

    filter: RunFilter
    pagination: PaginationParams = PaginationParams()
    sort_by: RunSortField = RunSortField.CREATED_AT
    sort_direction: SortDirection = SortDirection.DESC


@dataclass(frozen=True, slots=True, kw_only=True)
class ListRunEvents:
    environment: Environment
    run_id: str
    pagination: PaginationParams = PaginationParams()
    sort_direction: SortDirection = SortDirection.ASC


@dataclass(frozen=True, slots=True, kw_only=True)
class ListDueRuns:
    """Runs in ``statuses`` due at ``now`` (read only; callers append with a sequence check)."""

    environment: Environment
    now: datetime
    limit: int
    statuses: tuple[RunStatus, ...]
    queues: tuple[str, ...] | None = None
    exclude_queues: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ListExpiredLeases:
    """``running`` / ``cancellation_requested`` runs whose lease ``expires_at <= now``."""

    environment: Environment
    now: datetime
    limit: int


@dataclass(frozen=True, slots=True, kw_only=True)
class ReserveDispatch:
    """Reserve bounded-queue capacity and request delivery, atomically per run.

    Candidates: runs of ``queue`` in runnable statuses, due at ``now``, holding no reservation. Each
    partition (environment, queue, concurrency key) gets at most ``concurrency_limit`` minus its
    occupancy (leased runs plus unexpired reservations). A reservation expires at
    ``now + dispatch_timeout_ms`` (never when ``None``) and ends when its run leaves the runnable
    statuses. ``plan`` builds the ``run.delivery_requested`` event (storage derives the outbox row).
    """

    environment: Environment
    queue: str
    concurrency_limit: int
    dispatch_timeout_ms: int | None
    now: datetime
    limit: int
    plan: PlanFn


@dataclass(frozen=True, slots=True, kw_only=True)
class ReleaseExpiredReservations:
    environment: Environment
    now: datetime
    limit: int


@slot_init
@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxMessage:
    id: str
    environment: Environment
    run_id: str
    queue: str
    message: DeliveryMessage
    status: OutboxMessageStatus
    attempts: int
    available_at: datetime
    created_at: datetime
    updated_at: datetime
    claim_token: str | None = None
    claimed_at: datetime | None = None
    published_at: datetime | None = None
    provider_message_id: str | None = None
    last_error: OutboxFailureRecord | None = None

    def claimed_at_append(self, now: datetime) -> "OutboxMessage":
        """This freshly derived row as an append with ``claim_outbox`` writes it (see ``AppendRunEvents``)."""
        return _attempted(
            self, OutboxMessageStatus.CLAIMED, now, claim_token=uuid.uuid4().hex, claimed_at=now
        )

    def published_at_append(self, now: datetime) -> "OutboxMessage":
        """This freshly derived row as an append that publishes its wakeup in its own commit writes it.

        What a claim and a successful publish at ``now`` would leave, without the publisher's claim.
        """
        return _attempted(self, OutboxMessageStatus.PUBLISHED, now, published_at=now)


_OUTBOX_FIELDS = tuple(f.name for f in fields(OutboxMessage))
_copy_outbox = slot_copier(OutboxMessage, _OUTBOX_FIELDS)
_set_outbox = {name: slot_setter(OutboxMessage, name) for name in _OUTBOX_FIELDS}


def _attempted(
    row: OutboxMessage, status: OutboxMessageStatus, now: datetime, **more: object
) -> OutboxMessage:
    """``replace(row, status=status, attempts=row.attempts + 1, updated_at=now, **more)``, copied
    slot by slot (``slot_copier``): a third of ``replace``'s cost, once per eager trigger."""
    new = object.__new__(OutboxMessage)
    _copy_outbox(row, new)
    _set_outbox["status"](new, status)
    _set_outbox["attempts"](new, row.attempts + 1)
    _set_outbox["updated_at"](new, now)
    for name, value in more.items():
        _set_outbox[name](new, value)
    return new


@dataclass(frozen=True, slots=True, kw_only=True)
class ClaimOutboxMessages:
    """Claim due ``pending``/``failed`` rows and ``claimed`` rows stranded for ``claim_timeout_ms``.

    Claimed rows get a fresh ``claim_token`` and ``attempts + 1``; only ``ids`` when given (eager
    dispatch of the rows one trigger created). Exclusive: two claimers never get the same row.
    """

    environment: Environment
    now: datetime
    limit: int
    claim_timeout_ms: int
    ids: tuple[str, ...] | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class OutboxCompletion:
    id: str
    claim_token: str
    status: OutboxMessageStatus  # published | failed | dead_lettered
    at: datetime
    provider_message_id: str | None = None
    error: OutboxFailureRecord | None = None
    next_attempt_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CompleteOutboxMessages:
    """Record publish outcomes; a completion whose claim token no longer matches is ignored."""

    environment: Environment
    completions: tuple[OutboxCompletion, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ListOutboxMessages:
    environment: Environment
    run_id: str | None = None
    statuses: tuple[OutboxMessageStatus, ...] | None = None
    limit: int = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneRuns:
    """Delete terminal runs in ``statuses`` with ``updated_at < older_than`` (events, owners, outbox too)."""

    environment: Environment
    older_than: datetime
    statuses: tuple[RunStatus, ...]
    limit: int
    cursor: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneRunsResult:
    deleted: int
    next_cursor: str | None = None
