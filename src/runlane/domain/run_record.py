"""The run projection: what the reducer folds events into and storage persists next to them."""

from collections.abc import Mapping
from dataclasses import dataclass, fields
from datetime import datetime
from typing import Any

from runlane.domain.json_values import JsonValue
from runlane.domain.slot_init import slot_init
from runlane.domain.timestamps import from_wire_time, to_wire_time
from runlane.domain.values import Environment, Lease, RunFailure, RunSource
from runlane.domain.vocabulary import (
    LEASED_RUN_STATUSES,
    RUNNABLE_RUN_STATUSES,
    RunStatus,
    is_active,
    is_terminal,
)
from runlane.domain.wire import (
    parse_enum,
    parse_time_or_none,
    require,
    require_mapping,
)


@slot_init
@dataclass(frozen=True, slots=True, kw_only=True)
class RunSummary:
    """A run as operator lists show it: the record without its payload (GAPS #34)."""

    id: str
    environment: Environment
    task_id: str
    queue: str
    status: RunStatus
    event_sequence: int
    created_at: datetime
    updated_at: datetime
    run_at: datetime | None = None
    source: RunSource = RunSource()
    attempts: int = 0
    failures: int = 0
    retries: int = 0
    releases: int = 0
    failure: RunFailure | None = None
    lease: Lease | None = None
    idempotency_key: str | None = None
    idempotency_key_ttl: str | None = None
    singleton_key: str | None = None
    concurrency_key: str | None = None
    trace_carrier: dict[str, str] | None = None
    meta: dict[str, JsonValue] | None = None

    @property
    def is_terminal(self) -> bool:
        return is_terminal(self.status)

    @property
    def is_active(self) -> bool:
        return is_active(self.status)

    @property
    def is_runnable_status(self) -> bool:
        return self.status in RUNNABLE_RUN_STATUSES

    @property
    def holds_lease(self) -> bool:
        return self.status in LEASED_RUN_STATUSES and self.lease is not None

    @property
    def available_at(self) -> datetime:
        """When a runnable run becomes due: ``run_at``, falling back to ``updated_at``."""
        return self.run_at if self.run_at is not None else self.updated_at

    def is_due(self, now: datetime) -> bool:
        return self.is_runnable_status and self.available_at <= now

    def to_wire(self) -> dict[str, Any]:
        return _summary_wire(self)

    @classmethod
    def from_wire(cls, data: object) -> "RunSummary":
        return cls(**_summary_kwargs(require_mapping(data, "run")))


def _summary_wire(run: RunSummary) -> dict[str, Any]:
    """The wire mapping, built in one pass; an absent (``None``) field is left out, as ``compact``
    would (the always-set fields included, so even an invalid run encodes as it always did)."""
    wire: dict[str, Any] = {}
    if run.id is not None:
        wire["id"] = run.id
    wire["environment"] = run.environment.to_wire()
    if run.task_id is not None:
        wire["taskId"] = run.task_id
    if run.queue is not None:
        wire["queue"] = run.queue
    wire["status"] = run.status._value_
    if run.event_sequence is not None:
        wire["eventSequence"] = run.event_sequence
    wire["createdAt"] = to_wire_time(run.created_at)
    wire["updatedAt"] = to_wire_time(run.updated_at)
    if run.run_at is not None:
        wire["runAt"] = to_wire_time(run.run_at)
    wire["source"] = run.source.to_wire()
    if run.attempts is not None:
        wire["attempts"] = run.attempts
    if run.failures is not None:
        wire["failures"] = run.failures
    if run.retries is not None:
        wire["retries"] = run.retries
    if run.releases is not None:
        wire["releases"] = run.releases
    if run.failure is not None:
        wire["failure"] = run.failure.to_wire()
    if run.lease is not None:
        wire["lease"] = run.lease.to_wire()
    if run.idempotency_key is not None:
        wire["idempotencyKey"] = run.idempotency_key
    if run.idempotency_key_ttl is not None:
        wire["idempotencyKeyTTL"] = run.idempotency_key_ttl
    if run.singleton_key is not None:
        wire["singletonKey"] = run.singleton_key
    if run.concurrency_key is not None:
        wire["concurrencyKey"] = run.concurrency_key
    if run.trace_carrier is not None:
        wire["traceCarrier"] = run.trace_carrier
    if run.meta is not None:
        wire["meta"] = run.meta
    return wire


def _summary_kwargs(m: Mapping[str, Any]) -> dict[str, Any]:
    """The ``RunSummary`` fields of a wire run (parsed and checked as ``from_wire`` promises)."""
    return {
        "id": require(m, "id", "run"),
        "environment": Environment.from_wire(require(m, "environment", "run")),
        "task_id": require(m, "taskId", "run"),
        "queue": require(m, "queue", "run"),
        "status": parse_enum(RunStatus, require(m, "status", "run"), "status"),
        "event_sequence": int(require(m, "eventSequence", "run")),
        "created_at": from_wire_time(require(m, "createdAt", "run"), field="createdAt"),
        "updated_at": from_wire_time(require(m, "updatedAt", "run"), field="updatedAt"),
        "run_at": parse_time_or_none(m.get("runAt"), "runAt"),
        "source": RunSource.from_wire(m["source"]) if m.get("source") is not None else RunSource(),
        "attempts": int(m.get("attempts", 0)),
        "failures": int(m.get("failures", 0)),
        "retries": int(m.get("retries", 0)),
        "releases": int(m.get("releases", 0)),
        "failure": RunFailure.from_wire(m["failure"]) if m.get("failure") is not None else None,
        "lease": Lease.from_wire(m["lease"]) if m.get("lease") is not None else None,
        "idempotency_key": m.get("idempotencyKey"),
        "idempotency_key_ttl": m.get("idempotencyKeyTTL"),
        "singleton_key": m.get("singletonKey"),
        "concurrency_key": m.get("concurrencyKey"),
        "trace_carrier": m.get("traceCarrier"),
        "meta": m.get("meta"),
    }


@slot_init
@dataclass(frozen=True, slots=True, kw_only=True)
class RunRecord(RunSummary):
    """The full projection of one run, payload included."""

    payload: JsonValue = None

    def to_wire(self) -> dict[str, Any]:
        wire = _summary_wire(self)
        wire["payload"] = self.payload
        return wire

    @classmethod
    def from_wire(cls, data: object) -> "RunRecord":
        m = require_mapping(data, "run")
        return cls(**_summary_kwargs(m), payload=m.get("payload"))

    def summary(self) -> RunSummary:
        return RunSummary(**summary_fields(self))


_SUMMARY_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(RunSummary))


def summary_fields(run: RunSummary) -> dict[str, Any]:
    return {name: getattr(run, name) for name in _SUMMARY_FIELDS}
