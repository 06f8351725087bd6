"""Every persisted/wire string, written out literally from shared/spec (vocabulary.md, python-mapping.md §2).

The expected sets are typed here by hand on purpose: a test that derived them from the enums would
pass whatever the enums said.
"""

from enum import StrEnum

import pytest

from runlane.domain import vocabulary as v

SPEC_VALUES: dict[type[StrEnum], dict[str, str]] = {
    v.RunStatus: {
        "QUEUED": "queued",
        "SCHEDULED": "scheduled",
        "RUNNING": "running",
        "RETRYING": "retrying",
        "RELEASED": "released",
        "CANCELLATION_REQUESTED": "cancellation_requested",
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "CANCELLED": "cancelled",
    },
    v.RunStatusClassification: {"ACTIVE": "active", "TERMINAL": "terminal"},
    v.RunEventType: {
        "CREATED": "run.created",
        "DELIVERY_REQUESTED": "run.delivery_requested",
        "SUCCEEDED": "run.succeeded",
        "FAILED": "run.failed",
        "RETRY_SCHEDULED": "run.retry_scheduled",
        "RELEASED": "run.released",
        "CANCELLED": "run.cancelled",
        "CANCELLATION_REQUESTED": "run.cancellation_requested",
        "LEASE_CLAIMED": "run.lease_claimed",
        "LEASE_EXPIRED": "run.lease_expired",
    },
    v.RunSourceType: {
        "TRIGGER": "trigger",
        "SCHEDULE": "schedule",
        "RERUN": "rerun",
        "MANUAL_RETRY": "manual_retry",
    },
    v.TriggerOutcomeType: {"CREATED": "created", "RETURNED_EXISTING": "returned_existing"},
    v.ErrorCode: {
        "ADAPTER_CONTRACT_VIOLATION": "adapter_contract_violation",
        "CAPABILITY_UNSUPPORTED": "capability_unsupported",
        "CONFIGURATION_INVALID": "configuration_invalid",
        "INTERNAL_ERROR": "internal_error",
        "INVARIANT_VIOLATION": "invariant_violation",
        "OPERATION_CANCELLED": "operation_cancelled",
        "RUN_NOT_FOUND": "run_not_found",
        "SCHEDULE_NOT_FOUND": "schedule_not_found",
        "STORAGE_CONFLICT": "storage_conflict",
        "TASK_FAILED": "task_failed",
        "TASK_NOT_FOUND": "task_not_found",
        "TRANSPORT_PUBLISH_FAILED": "transport_publish_failed",
        "TRANSPORT_UNAVAILABLE": "transport_unavailable",
        "VALIDATION_FAILED": "validation_failed",
    },
    v.StorageConflictKind: {
        "SEQUENCE": "sequence",
        "IDEMPOTENCY_OWNER": "idempotency_owner",
        "SINGLETON_OWNER": "singleton_owner",
        "LEASE": "lease",
        "SCHEDULE_OCCURRENCE": "schedule_occurrence",
        "OUTBOX_CLAIM": "outbox_claim",
        "QUEUE_CAPACITY": "queue_capacity",
    },
    v.TriggerDispatchMode: {"EAGER": "eager", "DEFERRED": "deferred"},
    v.WakeupPublishOutcomeType: {"PUBLISHED": "published", "FAILED": "failed"},
    v.OutboxMessageStatus: {
        "PENDING": "pending",
        "CLAIMED": "claimed",
        "PUBLISHED": "published",
        "FAILED": "failed",
        "DEAD_LETTERED": "dead_lettered",
    },
    v.ScheduleType: {"ONCE": "once", "INTERVAL": "interval", "CRON": "cron"},
    v.ScheduleOccurrenceStatus: {"CLAIMED": "claimed", "MATERIALIZED": "materialized"},
    v.RetryBackoffType: {"EXPONENTIAL": "exponential", "FIXED": "fixed"},
    v.ActorType: {"SYSTEM": "system", "OPERATOR": "operator", "USER": "user"},
    v.WorkerMode: {"POLL": "poll", "DRAIN": "drain"},
    v.DeliveryResultType: {"EXECUTED": "executed", "IGNORED": "ignored"},
    v.DeliveryIgnoredReason: {
        "RUN_NOT_FOUND": "run_not_found",
        "TERMINAL": "terminal",
        "NOT_DUE": "not_due",
        "WRONG_QUEUE": "wrong_queue",
        "ALREADY_LEASED": "already_leased",
        "CLAIM_LOST": "claim_lost",
        "NOT_RUNNABLE": "not_runnable",
    },
    v.RunAttemptStatus: {
        "RUNNING": "running",
        "SUCCEEDED": "succeeded",
        "FAILED": "failed",
        "RETRY_SCHEDULED": "retry_scheduled",
        "RELEASED": "released",
        "CANCELLED": "cancelled",
        "LEASE_EXPIRED": "lease_expired",
    },
    v.RunEventSortField: {"SEQUENCE": "sequence"},
    v.RunSortField: {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at"},
    v.SortDirection: {"ASC": "asc", "DESC": "desc"},
    v.SqsFifoMessageGroup: {"QUEUE": "queue", "RUN": "run"},
    v.SqsFifoDeduplication: {"CONTENT_BASED": "content_based", "OUTBOX": "outbox"},
    v.SqsQueueSourceType: {"QUEUE_NAME": "queue_name", "QUEUE_URL": "queue_url"},
    v.SqsDeliveryFailurePhase: {
        "DELETE": "delete",
        "EXECUTE": "execute",
        "MESSAGE": "message",
        "PARSE": "parse",
    },
}


@pytest.mark.parametrize("enum", list(SPEC_VALUES), ids=lambda enum: enum.__name__)
def test_enum_members_and_values_match_the_spec_exactly(enum: type[StrEnum]) -> None:
    assert {member.name: member.value for member in enum} == SPEC_VALUES[enum]


@pytest.mark.parametrize("enum", list(SPEC_VALUES), ids=lambda enum: enum.__name__)
def test_enum_members_are_their_own_wire_strings(enum: type[StrEnum]) -> None:
    for name, value in SPEC_VALUES[enum].items():
        member = enum(value)
        assert member is enum[name]
        assert member == value
        assert str(member) == value
        assert f"{member}" == value


def test_every_public_enum_of_the_vocabulary_module_is_covered() -> None:
    public_enums = {
        obj
        for name, obj in vars(v).items()
        if not name.startswith("_")
        and isinstance(obj, type)
        and issubclass(obj, StrEnum)
        and obj is not StrEnum
    }
    assert public_enums == set(SPEC_VALUES)


def test_exactly_three_terminal_statuses_and_six_active() -> None:
    assert {status.value for status in v.TERMINAL_RUN_STATUSES} == {"succeeded", "failed", "cancelled"}
    assert {status.value for status in v.ACTIVE_RUN_STATUSES} == {
        "queued",
        "scheduled",
        "running",
        "retrying",
        "released",
        "cancellation_requested",
    }


def test_runnable_and_leased_status_groups() -> None:
    assert {status.value for status in v.RUNNABLE_RUN_STATUSES} == {
        "queued",
        "scheduled",
        "released",
        "retrying",
    }
    # cancellation_requested is active but never a runnable candidate.
    assert {status.value for status in v.LEASED_RUN_STATUSES} == {"running", "cancellation_requested"}
    assert v.RunStatus.CANCELLATION_REQUESTED not in v.RUNNABLE_RUN_STATUSES


@pytest.mark.parametrize("status", list(v.RunStatus))
def test_classification_helpers_agree(status: v.RunStatus) -> None:
    terminal = status.value in {"succeeded", "failed", "cancelled"}
    assert v.is_terminal(status) is terminal
    assert v.is_active(status) is not terminal
    assert v.is_terminal(status.value) is terminal
    expected = v.RunStatusClassification.TERMINAL if terminal else v.RunStatusClassification.ACTIVE
    assert v.classify_status(status) is expected
