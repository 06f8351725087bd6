"""Capability flags: promises adapters make, which core uses to allow or refuse features."""

from dataclasses import asdict, dataclass
from typing import Any

from runlane.domain.errors import configuration_invalid


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageCapabilities:
    claims_schedule_occurrences: bool
    durable_state: bool
    enforces_idempotency: bool
    enforces_queue_concurrency: bool
    enforces_singleton: bool
    leases_runs: bool
    persists_outbox: bool
    process_local_state: bool
    prunes_runs: bool
    reads_run_history: bool

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, bool):
                raise configuration_invalid(f"storage capability {name} must be a bool.")

    def to_wire(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class TransportCapabilities:
    durable_delivery: bool
    message_grouping: bool
    native_delay: bool
    ordered_delivery: bool

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if not isinstance(value, bool):
                raise configuration_invalid(f"transport capability {name} must be a bool.")

    def to_wire(self) -> dict[str, Any]:
        return {_camel(k): v for k, v in asdict(self).items()}


@dataclass(frozen=True, slots=True, kw_only=True)
class LaneCapabilities:
    operator_reads: bool
    production_durable: bool
    storage: StorageCapabilities
    transport: TransportCapabilities

    def to_wire(self) -> dict[str, Any]:
        return {
            "operatorReads": self.operator_reads,
            "productionDurable": self.production_durable,
            "storage": self.storage.to_wire(),
            "transport": self.transport.to_wire(),
        }


ALL_STORAGE_CAPABILITIES = StorageCapabilities(
    claims_schedule_occurrences=True,
    durable_state=True,
    enforces_idempotency=True,
    enforces_queue_concurrency=True,
    enforces_singleton=True,
    leases_runs=True,
    persists_outbox=True,
    process_local_state=False,
    prunes_runs=True,
    reads_run_history=True,
)
