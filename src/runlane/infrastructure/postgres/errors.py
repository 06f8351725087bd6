"""Driver errors become ``RunlaneError`` with a stable code (always ``raise ... from exc``).

* unique / foreign-key violations: ``storage_conflict`` (nothing was written: the transaction or
  savepoint is rolled back), with the kind chosen by the violated constraint;
* lost connections, timeouts (a pool checkout's included), deadlocks, serialization failures, a
  server shutting down or full: ``internal_error`` with ``retryable=True`` and ``meta.reason``
  (``storage_unavailable`` or ``storage_transient``); the runtime has no storage-specific code, and
  these are worth retrying;
* a value the server cannot hold (NUL in text, a lone surrogate, an index row over the size limit,
  any other data exception): ``validation_failed`` with ``meta.reason="value_unstorable"`` (nothing
  was written; retrying the same command cannot succeed);
* a missing schema, table or column, or missing privileges: ``configuration_invalid``;
* anything else: ``internal_error`` (not retryable).
"""

from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc

from runlane.domain.errors import RunlaneError, storage_conflict
from runlane.domain.vocabulary import ErrorCode, StorageConflictKind

MIGRATION_HINT = (
    "Apply the storage migrations first (print them with get_postgres_storage_migration_sql(schema), "
    "or run apply_postgres_storage_migrations()) and check the role's grants"
)

_CONFLICT_BY_CONSTRAINT = {
    "pk_runs": StorageConflictKind.SEQUENCE,
    "pk_run_events": StorageConflictKind.SEQUENCE,
    "uq_run_events_environment_run_id_sequence": StorageConflictKind.SEQUENCE,
    "pk_idempotency_owners": StorageConflictKind.IDEMPOTENCY_OWNER,
    "pk_singleton_owners": StorageConflictKind.SINGLETON_OWNER,
    "pk_schedule_occurrences": StorageConflictKind.SCHEDULE_OCCURRENCE,
    "pk_outbox_messages": StorageConflictKind.OUTBOX_CLAIM,
}
_UNAVAILABLE_PREFIXES = ("08", "53", "57P")  # connection exceptions, resources, operator intervention
_TRANSIENT_STATES = frozenset({"40001", "40P01", "55P03", "57014", "25006"})
# 54000 program_limit_exceeded: e.g. "index row requires 10024 bytes, maximum size is 8191".
_UNSTORABLE_STATES = frozenset({"54000"})
_CONFIGURATION_STATES = frozenset({"3F000", "42P01", "42703", "42501", "3D000", "28000", "28P01"})


def _driver_error(error: BaseException) -> BaseException:
    """psycopg's own error: wrapped by SQLAlchemy (``.orig``), or raised bare (the psycopg pool)."""
    return getattr(error, "orig", None) or error


def _sqlstate(error: BaseException) -> str | None:
    state = getattr(_driver_error(error), "sqlstate", None)
    return state if isinstance(state, str) else None


def driver_detail(error: BaseException) -> str:
    orig = _driver_error(error)
    text = str(orig).strip().splitlines()
    return text[0][:300] if text else type(orig).__name__


def translate_error(error: BaseException, *, operation: str) -> RunlaneError:
    """The ``RunlaneError`` for a SQLAlchemy/psycopg error raised while running ``operation``."""
    if isinstance(error, RunlaneError):
        return error
    if isinstance(error, UnicodeEncodeError):
        return RunlaneError(
            ErrorCode.VALIDATION_FAILED,
            f"Postgres storage cannot store a value during {operation}: it is not valid UTF-8 "
            "(a lone surrogate).",
            meta={"operation": operation, "reason": "value_unstorable"},
        )
    state = _sqlstate(error)
    detail = driver_detail(error)
    meta: dict[str, Any] = {"operation": operation}
    if state is not None:
        meta["sqlstate"] = state
    if state in ("23505", "23503"):
        constraint = getattr(getattr(_driver_error(error), "diag", None), "constraint_name", None)
        kind = _CONFLICT_BY_CONSTRAINT.get(constraint or "", StorageConflictKind.SEQUENCE)
        meta["constraint"] = constraint
        return storage_conflict(kind, f"Postgres storage conflict during {operation}: {detail}", meta)
    if isinstance(error, sa_exc.DataError) or state in _UNSTORABLE_STATES:
        # Client-side (NUL in a text parameter) or class 22 / 54000 on the server: the value itself.
        meta["reason"] = "value_unstorable"
        return RunlaneError(
            ErrorCode.VALIDATION_FAILED,
            f"Postgres storage cannot store a value during {operation}: {detail}",
            meta=meta,
            cause=error,
        )
    if state in _CONFIGURATION_STATES:
        return RunlaneError(
            ErrorCode.CONFIGURATION_INVALID,
            f"Postgres storage is not usable during {operation}: {detail}. {MIGRATION_HINT}.",
            meta=meta,
            cause=error,
        )
    unavailable = (
        isinstance(error, sa_exc.TimeoutError | sa_exc.InterfaceError)
        or (isinstance(error, sa_exc.OperationalError | psycopg.OperationalError) and state is None)
        or (state is not None and state.startswith(_UNAVAILABLE_PREFIXES) and state != "57014")
        or (isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated)
    )
    if unavailable:
        meta["reason"] = "storage_unavailable"
        return RunlaneError(
            ErrorCode.INTERNAL_ERROR,
            f"Postgres storage is unavailable during {operation}: {detail}",
            retryable=True,
            meta=meta,
            cause=error,
        )
    if state in _TRANSIENT_STATES:
        meta["reason"] = "storage_transient"
        return RunlaneError(
            ErrorCode.INTERNAL_ERROR,
            f"Postgres storage failed transiently during {operation}: {detail}",
            retryable=True,
            meta=meta,
            cause=error,
        )
    return RunlaneError(
        ErrorCode.INTERNAL_ERROR,
        f"Postgres storage failed during {operation}: {detail}",
        meta=meta,
        cause=error,
    )
