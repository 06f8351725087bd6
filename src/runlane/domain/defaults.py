"""``contractDefaults``: one immutable object of shared defaults (PROP values: shared/spec/defaults.md)."""

from dataclasses import dataclass, field

from runlane.domain.vocabulary import ActorType, RetryBackoffType, TriggerDispatchMode


@dataclass(frozen=True, slots=True)
class DispatchDefaults:
    on_trigger: TriggerDispatchMode = TriggerDispatchMode.EAGER


@dataclass(frozen=True, slots=True)
class RunDefaults:
    new_event_sequence: int = 0


@dataclass(frozen=True, slots=True)
class ActorDefaults:
    system: ActorType = ActorType.SYSTEM
    operator: ActorType = ActorType.OPERATOR


@dataclass(frozen=True, slots=True)
class RetryDefaults:
    backoff_type: RetryBackoffType = RetryBackoffType.EXPONENTIAL
    backoff_delay: str = "30s"
    backoff_max_delay: str = "5m"


@dataclass(frozen=True, slots=True)
class LeaseDefaults:
    duration: str = "30s"
    # Heartbeats run every third of the lease so two can be missed before it expires.
    heartbeat_divisor: int = 3


@dataclass(frozen=True, slots=True)
class MaintenanceDefaults:
    per_phase_limit: int = 100
    # A claimed outbox row whose publisher vanished is reclaimable after this long.
    outbox_claim_timeout: str = "1m"
    outbox_max_publish_attempts: int = 10
    outbox_retry_delay: str = "1s"
    outbox_retry_max_delay: str = "5m"


@dataclass(frozen=True, slots=True)
class PruningDefaults:
    batch_limit: int = 500


@dataclass(frozen=True, slots=True)
class PaginationDefaults:
    limit: int = 50
    max_limit: int = 500


@dataclass(frozen=True, slots=True)
class IdempotencyDefaults:
    ttl: str = "30d"


@dataclass(frozen=True, slots=True)
class WorkerDefaults:
    concurrency: int = 1
    poll_interval: str = "1s"
    # Runs claimed per storage round trip (capped by free slots).
    batch_size: int = 100


@dataclass(frozen=True, slots=True)
class ContractDefaults:
    dispatch: DispatchDefaults = field(default_factory=DispatchDefaults)
    run: RunDefaults = field(default_factory=RunDefaults)
    actor: ActorDefaults = field(default_factory=ActorDefaults)
    queue: str = "default"
    retry: RetryDefaults = field(default_factory=RetryDefaults)
    lease: LeaseDefaults = field(default_factory=LeaseDefaults)
    maintenance: MaintenanceDefaults = field(default_factory=MaintenanceDefaults)
    pruning: PruningDefaults = field(default_factory=PruningDefaults)
    pagination: PaginationDefaults = field(default_factory=PaginationDefaults)
    idempotency: IdempotencyDefaults = field(default_factory=IdempotencyDefaults)
    worker: WorkerDefaults = field(default_factory=WorkerDefaults)
    environment: str = "default"


CONTRACT_DEFAULTS = ContractDefaults()
