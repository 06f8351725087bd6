"""One error type for the whole runtime; callers branch on ``code``, never on the message."""

from collections.abc import Mapping
from typing import Any

from runlane.domain.vocabulary import ErrorCode, StorageConflictKind

TASK_FAILED_MESSAGE = "Task failed"


class RunlaneError(Exception):
    """A classified runlane failure.

    ``retryable`` is independent of ``code`` (spec: never derived from it). ``meta`` holds JSON-safe
    detail (provider codes, offending field names); ``cause`` is diagnostic only and never persisted.
    """

    code: ErrorCode
    message: str
    retryable: bool
    meta: dict[str, Any] | None
    cause: BaseException | None
    conflict_kind: StorageConflictKind | None

    def __init__(
        self,
        code: ErrorCode | str,
        message: str,
        *,
        retryable: bool = False,
        meta: Mapping[str, Any] | None = None,
        cause: BaseException | None = None,
    ) -> None:
        super().__init__(message)
        self.code = ErrorCode(code)
        self.message = message
        self.retryable = retryable
        self.meta = dict(meta) if meta is not None else None
        self.cause = cause
        if cause is not None:
            self.__cause__ = cause
        kind = (self.meta or {}).get("kind") if self.code is ErrorCode.STORAGE_CONFLICT else None
        self.conflict_kind = StorageConflictKind(kind) if kind is not None else None

    def __str__(self) -> str:
        return f"[{self.code.value}] {self.message}"

    def __repr__(self) -> str:
        return f"RunlaneError(code={self.code.value!r}, message={self.message!r}, retryable={self.retryable})"


def storage_conflict(
    kind: StorageConflictKind,
    message: str | None = None,
    meta: Mapping[str, Any] | None = None,
    *,
    retryable: bool = True,
) -> RunlaneError:
    """Build the conflict error storage raises when a compare-and-write loses (nothing was written)."""
    merged: dict[str, Any] = dict(meta or {})
    merged["kind"] = kind.value
    return RunlaneError(
        ErrorCode.STORAGE_CONFLICT,
        message or f"Storage conflict ({kind.value}).",
        retryable=retryable,
        meta=merged,
    )


def is_conflict(error: BaseException, kind: StorageConflictKind | None = None) -> bool:
    if not isinstance(error, RunlaneError) or error.code is not ErrorCode.STORAGE_CONFLICT:
        return False
    return kind is None or error.conflict_kind is kind


def validation_failed(message: str, **meta: Any) -> RunlaneError:
    return RunlaneError(ErrorCode.VALIDATION_FAILED, message, meta=meta or None)


def configuration_invalid(message: str, **meta: Any) -> RunlaneError:
    return RunlaneError(ErrorCode.CONFIGURATION_INVALID, message, meta=meta or None)


def invariant_violation(message: str, **meta: Any) -> RunlaneError:
    return RunlaneError(ErrorCode.INVARIANT_VIOLATION, message, meta=meta or None)


def capability_unsupported(capability: str, message: str | None = None) -> RunlaneError:
    return RunlaneError(
        ErrorCode.CAPABILITY_UNSUPPORTED,
        message or f"The lane does not support {capability}.",
        meta={"capability": capability},
    )
