"""Every persisted or wire string of runlane, in one place.

The values are byte-identical to the original Runlane vocabulary (see shared/spec/vocabulary.md).
Members marked *decision* fill gaps in the sources (GAPS.md); keeping them here means a correction
touches one file.
"""

from enum import StrEnum


class RunStatus(StrEnum):
    QUEUED = "queued"
    SCHEDULED = "scheduled"
    RUNNING = "running"
    RETRYING = "retrying"
    RELEASED = "released"
    CANCELLATION_REQUESTED = "cancellation_requested"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunStatusClassification(StrEnum):
    ACTIVE = "active"
    TERMINAL = "terminal"


TERMINAL_RUN_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED}
)
ACTIVE_RUN_STATUSES: frozenset[RunStatus] = frozenset(set(RunStatus) - TERMINAL_RUN_STATUSES)
# Statuses a worker may lease once the run's availability time is due.
RUNNABLE_RUN_STATUSES: frozenset[RunStatus] = frozenset(
    {RunStatus.QUEUED, RunStatus.SCHEDULED, RunStatus.RELEASED, RunStatus.RETRYING}
)
# Statuses that hold a lease (and so occupy bounded-queue capacity).
LEASED_RUN_STATUSES: frozenset[RunStatus] = frozenset({RunStatus.RUNNING, RunStatus.CANCELLATION_REQUESTED})


def is_terminal(status: RunStatus | str) -> bool:
    return RunStatus(status) in TERMINAL_RUN_STATUSES


def is_active(status: RunStatus | str) -> bool:
    return RunStatus(status) in ACTIVE_RUN_STATUSES


def classify_status(status: RunStatus | str) -> RunStatusClassification:
    if is_terminal(status):
        return RunStatusClassification.TERMINAL
    return RunStatusClassification.ACTIVE


class RunEventType(StrEnum):
    CREATED = "run.created"
    DELIVERY_REQUESTED = "run.delivery_requested"
    SUCCEEDED = "run.succeeded"
    FAILED = "run.failed"
    RETRY_SCHEDULED = "run.retry_scheduled"
    RELEASED = "run.released"
    CANCELLED = "run.cancelled"
    CANCELLATION_REQUESTED = "run.cancellation_requested"
    LEASE_CLAIMED = "run.lease_claimed"  # decision (GAPS #1)
    LEASE_EXPIRED = "run.lease_expired"  # decision (GAPS #1)


class RunSourceType(StrEnum):
    TRIGGER = "trigger"  # decision (GAPS #2): trigger() and run_now()
    SCHEDULE = "schedule"
    RERUN = "rerun"
    MANUAL_RETRY = "manual_retry"


class TriggerOutcomeType(StrEnum):
    CREATED = "created"
    RETURNED_EXISTING = "returned_existing"


class ErrorCode(StrEnum):
    ADAPTER_CONTRACT_VIOLATION = "adapter_contract_violation"
    CAPABILITY_UNSUPPORTED = "capability_unsupported"
    CONFIGURATION_INVALID = "configuration_invalid"
    INTERNAL_ERROR = "internal_error"
    INVARIANT_VIOLATION = "invariant_violation"
    OPERATION_CANCELLED = "operation_cancelled"
    RUN_NOT_FOUND = "run_not_found"
    SCHEDULE_NOT_FOUND = "schedule_not_found"
    STORAGE_CONFLICT = "storage_conflict"
    TASK_FAILED = "task_failed"
    TASK_NOT_FOUND = "task_not_found"
    TRANSPORT_PUBLISH_FAILED = "transport_publish_failed"
    TRANSPORT_UNAVAILABLE = "transport_unavailable"
    VALIDATION_FAILED = "validation_failed"


class StorageConflictKind(StrEnum):  # decision (GAPS #4)
    SEQUENCE = "sequence"
    IDEMPOTENCY_OWNER = "idempotency_owner"
    SINGLETON_OWNER = "singleton_owner"
    LEASE = "lease"
    SCHEDULE_OCCURRENCE = "schedule_occurrence"
    OUTBOX_CLAIM = "outbox_claim"
    QUEUE_CAPACITY = "queue_capacity"


class TriggerDispatchMode(StrEnum):
    EAGER = "eager"
    DEFERRED = "deferred"


class WakeupPublishOutcomeType(StrEnum):
    PUBLISHED = "published"
    FAILED = "failed"


class OutboxMessageStatus(StrEnum):
    PENDING = "pending"
    CLAIMED = "claimed"
    PUBLISHED = "published"
    FAILED = "failed"
    DEAD_LETTERED = "dead_lettered"


class ScheduleType(StrEnum):
    ONCE = "once"
    INTERVAL = "interval"
    CRON = "cron"


class ScheduleOccurrenceStatus(StrEnum):  # decision (GAPS #5)
    CLAIMED = "claimed"
    MATERIALIZED = "materialized"


class RetryBackoffType(StrEnum):
    EXPONENTIAL = "exponential"
    FIXED = "fixed"


class ActorType(StrEnum):
    SYSTEM = "system"
    OPERATOR = "operator"
    USER = "user"  # decision (GAPS #6)


class WorkerMode(StrEnum):
    POLL = "poll"
    DRAIN = "drain"


class DeliveryResultType(StrEnum):  # decision (GAPS #7)
    EXECUTED = "executed"
    IGNORED = "ignored"


class DeliveryIgnoredReason(StrEnum):  # decision (GAPS #7)
    RUN_NOT_FOUND = "run_not_found"
    TERMINAL = "terminal"
    NOT_DUE = "not_due"
    WRONG_QUEUE = "wrong_queue"
    ALREADY_LEASED = "already_leased"
    CLAIM_LOST = "claim_lost"
    NOT_RUNNABLE = "not_runnable"


class RunAttemptStatus(StrEnum):  # decision (GAPS #8)
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RETRY_SCHEDULED = "retry_scheduled"
    RELEASED = "released"
    CANCELLED = "cancelled"
    LEASE_EXPIRED = "lease_expired"


class RunEventSortField(StrEnum):
    SEQUENCE = "sequence"


class RunSortField(StrEnum):  # decision
    CREATED_AT = "created_at"
    UPDATED_AT = "updated_at"


class SortDirection(StrEnum):
    ASC = "asc"
    DESC = "desc"


class SqsFifoMessageGroup(StrEnum):
    QUEUE = "queue"
    RUN = "run"


class SqsFifoDeduplication(StrEnum):
    CONTENT_BASED = "content_based"
    OUTBOX = "outbox"


class SqsQueueSourceType(StrEnum):
    QUEUE_NAME = "queue_name"
    QUEUE_URL = "queue_url"


class SqsDeliveryFailurePhase(StrEnum):
    DELETE = "delete"
    EXECUTE = "execute"
    MESSAGE = "message"
    PARSE = "parse"
