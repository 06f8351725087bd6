"""runlane: a durable task runtime. Runs are event-sourced, storage owns truth, transport only wakes.

This package re-exports the domain and application surface only, so ``import runlane`` never loads
SQLAlchemy, psycopg or boto3; adapters live under ``runlane.infrastructure``.
"""

from runlane.application.app_definition import RunlaneApp
from runlane.application.execute_delivery import DeliveryResult
from runlane.application.maintenance_tick import TickResult
from runlane.application.runtime import IdempotencyKeys, Runlane, Runs, create_runlane
from runlane.application.signal import AbortSignal
from runlane.application.task_context import TaskContext
from runlane.application.task_definition import TaskDefinition, task
from runlane.application.trigger_run import TriggerRunResult
from runlane.application.worker_loop import WorkerHandle
from runlane.domain.attempts import RunAttemptSummary
from runlane.domain.defaults import CONTRACT_DEFAULTS, ContractDefaults
from runlane.domain.durations import DurationValue, parse_duration
from runlane.domain.errors import RunlaneError, storage_conflict
from runlane.domain.ids import as_id
from runlane.domain.pages import Page, PaginationParams
from runlane.domain.queues import QueueDefinition, queue
from runlane.domain.release import TaskRelease
from runlane.domain.retry_policy import RetryBackoff, RetryPolicy
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord, RunSummary
from runlane.domain.run_reducer import project_run_events
from runlane.domain.schedules import Schedule, occurrence_id
from runlane.domain.values import (
    Actor,
    DeliveryIntent,
    DeliveryMessage,
    Environment,
    Lease,
    OutboxFailureRecord,
    RunFailure,
    RunSource,
)
from runlane.domain.vocabulary import (
    ACTIVE_RUN_STATUSES,
    TERMINAL_RUN_STATUSES,
    ActorType,
    DeliveryIgnoredReason,
    DeliveryResultType,
    ErrorCode,
    OutboxMessageStatus,
    RetryBackoffType,
    RunAttemptStatus,
    RunEventSortField,
    RunEventType,
    RunSortField,
    RunSourceType,
    RunStatus,
    RunStatusClassification,
    ScheduleOccurrenceStatus,
    ScheduleType,
    SortDirection,
    SqsDeliveryFailurePhase,
    SqsFifoDeduplication,
    SqsFifoMessageGroup,
    SqsQueueSourceType,
    StorageConflictKind,
    TriggerDispatchMode,
    TriggerOutcomeType,
    WakeupPublishOutcomeType,
    WorkerMode,
    is_active,
    is_terminal,
)
from runlane.ports.capabilities import LaneCapabilities, StorageCapabilities, TransportCapabilities
from runlane.ports.clock import Clock, SystemClock
from runlane.ports.lane import Lane, create_lane

__all__ = [
    "ACTIVE_RUN_STATUSES",
    "CONTRACT_DEFAULTS",
    "TERMINAL_RUN_STATUSES",
    "AbortSignal",
    "Actor",
    "ActorType",
    "Clock",
    "ContractDefaults",
    "DeliveryIgnoredReason",
    "DeliveryIntent",
    "DeliveryMessage",
    "DeliveryResult",
    "DeliveryResultType",
    "DurationValue",
    "Environment",
    "ErrorCode",
    "IdempotencyKeys",
    "Lane",
    "LaneCapabilities",
    "Lease",
    "OutboxFailureRecord",
    "OutboxMessageStatus",
    "Page",
    "PaginationParams",
    "QueueDefinition",
    "RetryBackoff",
    "RetryBackoffType",
    "RetryPolicy",
    "RunAttemptStatus",
    "RunAttemptSummary",
    "RunEvent",
    "RunEventRecord",
    "RunEventSortField",
    "RunEventType",
    "RunFailure",
    "RunRecord",
    "RunSortField",
    "RunSource",
    "RunSourceType",
    "RunStatus",
    "RunStatusClassification",
    "RunSummary",
    "Runlane",
    "RunlaneApp",
    "RunlaneError",
    "Runs",
    "Schedule",
    "ScheduleOccurrenceStatus",
    "ScheduleType",
    "SortDirection",
    "SqsDeliveryFailurePhase",
    "SqsFifoDeduplication",
    "SqsFifoMessageGroup",
    "SqsQueueSourceType",
    "StorageCapabilities",
    "StorageConflictKind",
    "SystemClock",
    "TaskContext",
    "TaskDefinition",
    "TaskRelease",
    "TickResult",
    "TransportCapabilities",
    "TriggerDispatchMode",
    "TriggerOutcomeType",
    "TriggerRunResult",
    "WakeupPublishOutcomeType",
    "WorkerHandle",
    "WorkerMode",
    "as_id",
    "create_lane",
    "create_runlane",
    "is_active",
    "is_terminal",
    "occurrence_id",
    "parse_duration",
    "project_run_events",
    "queue",
    "storage_conflict",
    "task",
]
