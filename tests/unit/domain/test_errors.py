"""RunlaneError: a stable code, independent retryability, JSON meta, and conflict kinds."""

import pytest

from runlane.domain.errors import (
    TASK_FAILED_MESSAGE,
    RunlaneError,
    capability_unsupported,
    configuration_invalid,
    invariant_violation,
    is_conflict,
    storage_conflict,
    validation_failed,
)
from runlane.domain.vocabulary import ErrorCode, StorageConflictKind


def test_defaults_are_not_retryable_and_carry_no_meta() -> None:
    error = RunlaneError(ErrorCode.INTERNAL_ERROR, "boom")
    assert error.code is ErrorCode.INTERNAL_ERROR
    assert error.message == "boom"
    assert error.retryable is False
    assert error.meta is None
    assert error.cause is None
    assert error.conflict_kind is None
    assert isinstance(error, Exception)


def test_string_codes_are_normalised_to_the_enum() -> None:
    error = RunlaneError("task_failed", TASK_FAILED_MESSAGE)
    assert error.code is ErrorCode.TASK_FAILED
    assert TASK_FAILED_MESSAGE == "Task failed"


def test_retryable_is_independent_of_the_code() -> None:
    assert RunlaneError(ErrorCode.VALIDATION_FAILED, "x", retryable=True).retryable is True
    assert RunlaneError(ErrorCode.TRANSPORT_UNAVAILABLE, "x").retryable is False


def test_str_and_repr_name_the_code() -> None:
    error = RunlaneError(ErrorCode.RUN_NOT_FOUND, "Run run_1 was not found.")
    assert str(error) == "[run_not_found] Run run_1 was not found."
    assert "run_not_found" in repr(error)


def test_meta_is_copied_so_callers_cannot_mutate_it_later() -> None:
    meta = {"provider": "sqs"}
    error = RunlaneError(ErrorCode.TRANSPORT_PUBLISH_FAILED, "x", meta=meta)
    meta["provider"] = "changed"
    assert error.meta == {"provider": "sqs"}


def test_cause_is_chained() -> None:
    cause = ValueError("low level")
    error = RunlaneError(ErrorCode.INTERNAL_ERROR, "wrapped", cause=cause)
    assert error.cause is cause
    assert error.__cause__ is cause


def test_unknown_code_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="not_a_code"):
        RunlaneError("not_a_code", "x")


@pytest.mark.parametrize("kind", list(StorageConflictKind))
def test_storage_conflict_is_retryable_and_names_its_kind(kind: StorageConflictKind) -> None:
    error = storage_conflict(kind, meta={"run_id": "run_1"})
    assert error.code is ErrorCode.STORAGE_CONFLICT
    assert error.retryable is True
    assert error.conflict_kind is kind
    assert error.meta == {"run_id": "run_1", "kind": kind.value}
    assert kind.value in error.message
    assert is_conflict(error)
    assert is_conflict(error, kind)
    other = next(k for k in StorageConflictKind if k is not kind)
    assert not is_conflict(error, other)


def test_storage_conflict_can_be_marked_not_retryable_and_keep_a_message() -> None:
    error = storage_conflict(StorageConflictKind.SEQUENCE, "stale", retryable=False)
    assert error.retryable is False
    assert error.message == "stale"


def test_conflict_kind_is_only_read_for_storage_conflicts() -> None:
    error = RunlaneError(ErrorCode.VALIDATION_FAILED, "x", meta={"kind": "run"})
    assert error.conflict_kind is None
    assert not is_conflict(error)
    assert not is_conflict(ValueError("x"))


def test_a_hand_built_storage_conflict_exposes_its_kind() -> None:
    error = RunlaneError(ErrorCode.STORAGE_CONFLICT, "x", retryable=True, meta={"kind": "lease"})
    assert error.conflict_kind is StorageConflictKind.LEASE
    assert is_conflict(error, StorageConflictKind.LEASE)


@pytest.mark.parametrize(
    ("factory", "code"),
    [
        (validation_failed, ErrorCode.VALIDATION_FAILED),
        (configuration_invalid, ErrorCode.CONFIGURATION_INVALID),
        (invariant_violation, ErrorCode.INVARIANT_VIOLATION),
    ],
)
def test_helpers_build_non_retryable_errors_with_meta(factory: object, code: ErrorCode) -> None:
    assert callable(factory)
    error = factory("bad", field="x")
    assert error.code is code
    assert error.retryable is False
    assert error.meta == {"field": "x"}
    assert factory("bad").meta is None


def test_capability_unsupported_names_the_capability() -> None:
    error = capability_unsupported("operator_reads")
    assert error.code is ErrorCode.CAPABILITY_UNSUPPORTED
    assert error.meta == {"capability": "operator_reads"}
    assert "operator_reads" in error.message
    assert capability_unsupported("x", "custom").message == "custom"
