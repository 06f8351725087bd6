"""The transport port: publish tiny wakeups; never decide state, never carry payloads."""

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from runlane.domain.errors import RunlaneError
from runlane.domain.queues import QueueDefinition
from runlane.domain.values import DeliveryMessage, OutboxFailureRecord
from runlane.domain.vocabulary import ErrorCode, WakeupPublishOutcomeType
from runlane.ports.capabilities import TransportCapabilities


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishWakeupAttempt:
    outbox_message_id: str
    message: DeliveryMessage


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishWakeups:
    attempts: tuple[PublishWakeupAttempt, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedWakeup:
    published_at: datetime
    provider_message_id: str | None = None
    type: Literal[WakeupPublishOutcomeType.PUBLISHED] = WakeupPublishOutcomeType.PUBLISHED


@dataclass(frozen=True, slots=True, kw_only=True)
class FailedWakeupPublish:
    error: OutboxFailureRecord
    type: Literal[WakeupPublishOutcomeType.FAILED] = WakeupPublishOutcomeType.FAILED


WakeupPublishOutcome = PublishedWakeup | FailedWakeupPublish


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishWakeupsResult:
    """Exactly one outcome per attempt, in order: ``outcomes[i]`` belongs to ``attempts[i]``."""

    outcomes: tuple[WakeupPublishOutcome, ...]


WakeupCallback = Callable[[DeliveryMessage], None]


@runtime_checkable
class WakeupSubscription(Protocol):
    async def close(self) -> None: ...


@runtime_checkable
class WakeupSource(Protocol):
    """Optional transport capability: push wakeups to in-process listeners (LISTEN/NOTIFY, local).

    Workers use it only to stop waiting early; they still claim from storage, so a lost wakeup
    costs latency (one poll interval), never a run. The callback runs on the listener's event loop
    and must not block.
    """

    async def listen(self, queues: tuple[str, ...] | None, on_wakeup: WakeupCallback) -> WakeupSubscription:
        """Start listening for wakeups of ``queues`` (every queue when ``None``)."""
        ...


@runtime_checkable
class TransportAdapter(Protocol):
    name: str
    capabilities: TransportCapabilities

    @property
    def queues(self) -> tuple[QueueDefinition, ...] | None:
        """Queues this transport can publish to; ``None`` means any queue."""
        ...

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def publish_wakeups(self, command: PublishWakeups) -> PublishWakeupsResult:
        """Publish each attempt; a whole-call exception means nothing is known for any attempt."""
        ...


def validate_publish_command(command: object) -> PublishWakeups:
    """Adapters call this first: a malformed command is an ``adapter_contract_violation``."""
    if not isinstance(command, PublishWakeups) or not isinstance(command.attempts, tuple):
        raise RunlaneError(ErrorCode.ADAPTER_CONTRACT_VIOLATION, "Transport publish command is invalid.")
    seen: set[str] = set()
    for attempt in command.attempts:
        if (
            not isinstance(attempt, PublishWakeupAttempt)
            or not isinstance(attempt.outbox_message_id, str)
            or not attempt.outbox_message_id
            or not isinstance(attempt.message, DeliveryMessage)
            or attempt.outbox_message_id in seen
        ):
            raise RunlaneError(ErrorCode.ADAPTER_CONTRACT_VIOLATION, "Transport publish command is invalid.")
        seen.add(attempt.outbox_message_id)
    return command


def validate_publish_result(command: PublishWakeups, result: object) -> PublishWakeupsResult:
    """Core checks what an adapter returned: one well-formed outcome per attempt."""
    outcomes: Sequence[object] | None = getattr(result, "outcomes", None)
    if (
        not isinstance(result, PublishWakeupsResult)
        or outcomes is None
        or len(outcomes) != len(command.attempts)
        or not all(isinstance(o, PublishedWakeup | FailedWakeupPublish) for o in outcomes)
    ):
        raise RunlaneError(
            ErrorCode.ADAPTER_CONTRACT_VIOLATION,
            "Transport returned a publish result that does not have exactly one outcome per attempt.",
        )
    return result
