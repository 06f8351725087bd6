"""``InMemoryTransport``: the local lane's transport, an in-process inbox of wakeups.

Every message goes through its JSON wire form before it is accepted, so a serialisation bug shows
up in local tests instead of first on SQS. Nothing is durable: ``capabilities`` are all false.
It is also a ``WakeupSource``: ``listen`` callbacks run synchronously inside ``publish_wakeups``.
"""

import inspect
import itertools
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from runlane.domain.errors import RunlaneError
from runlane.domain.queues import QueueDefinition
from runlane.domain.values import DeliveryMessage, OutboxFailureRecord
from runlane.domain.vocabulary import ErrorCode
from runlane.ports.capabilities import TransportCapabilities
from runlane.ports.clock import SYSTEM_CLOCK, Clock
from runlane.ports.transport import (
    FailedWakeupPublish,
    PublishedWakeup,
    PublishWakeups,
    PublishWakeupsResult,
    WakeupCallback,
    WakeupPublishOutcome,
    validate_publish_command,
)

logger = logging.getLogger("runlane.local")

LOCAL_TRANSPORT_CAPABILITIES = TransportCapabilities(
    durable_delivery=False,
    message_grouping=False,
    native_delay=False,
    ordered_delivery=False,
)

WakeupSubscriber = Callable[[DeliveryMessage], Awaitable[None] | None]


def round_trip_wire(message: DeliveryMessage) -> DeliveryMessage:
    """Serialise to compact JSON and parse back; a mismatch is an ``adapter_contract_violation``."""
    body = json.dumps(message.to_wire(), separators=(",", ":"))
    parsed = DeliveryMessage.from_wire(json.loads(body), code=ErrorCode.ADAPTER_CONTRACT_VIOLATION)
    if parsed != message:
        raise RunlaneError(
            ErrorCode.ADAPTER_CONTRACT_VIOLATION,
            "Delivery message changed in its JSON wire round trip.",
            meta={"run_id": message.run_id, "wire": body[:500]},
        )
    return parsed


class LocalWakeupSubscription:
    """A ``listen`` registration; ``close()`` unsubscribes (idempotent)."""

    def __init__(self, unsubscribe: Callable[[], None]) -> None:
        self._unsubscribe: Callable[[], None] | None = unsubscribe

    @property
    def closed(self) -> bool:
        return self._unsubscribe is None

    async def close(self) -> None:
        unsubscribe, self._unsubscribe = self._unsubscribe, None
        if unsubscribe is not None:
            unsubscribe()


@dataclass(slots=True)
class _InjectedFailures:
    remaining: int
    retryable: bool


class InMemoryTransport:
    """Acknowledges every attempt as published unless a test injected failures."""

    name = "local"
    capabilities = LOCAL_TRANSPORT_CAPABILITIES

    def __init__(self, *, clock: Clock = SYSTEM_CLOCK) -> None:
        self._clock = clock
        self._published: list[DeliveryMessage] = []
        self._drained = 0
        self._subscribers: list[WakeupSubscriber] = []
        self._failures: list[_InjectedFailures] = []
        self._next_call_error: BaseException | None = None
        self._ids = itertools.count(1)

    @property
    def queues(self) -> tuple[QueueDefinition, ...] | None:
        """``None``: the local transport can publish to any queue."""
        return None

    @property
    def published(self) -> tuple[DeliveryMessage, ...]:
        """Every message accepted so far, in publish order (as parsed back from the wire)."""
        return tuple(self._published)

    def drain(self) -> tuple[DeliveryMessage, ...]:
        """Messages accepted since the previous ``drain()``."""
        pending = tuple(self._published[self._drained :])
        self._drained = len(self._published)
        return pending

    def subscribe(self, callback: WakeupSubscriber) -> Callable[[], None]:
        """Call ``callback`` (sync or async) with each accepted message; returns an unsubscribe function.

        Subscribers run after every outcome is decided; an exception from one propagates out of
        ``publish_wakeups`` (nothing is then known for the call, and the outbox recovers the rows).
        """
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe

    async def listen(
        self, queues: tuple[str, ...] | None, on_wakeup: WakeupCallback
    ) -> LocalWakeupSubscription:
        """``WakeupSource``: call ``on_wakeup`` for each accepted wakeup of ``queues`` (all if ``None``).

        The callback runs synchronously at publish time, after the outcomes are decided; an
        exception from it is logged and does not fail the publish (a wakeup is only a hint).
        """
        if not callable(on_wakeup):
            raise RunlaneError(ErrorCode.CONFIGURATION_INVALID, "on_wakeup must be callable.")
        wanted = None if queues is None else frozenset(queues)

        def deliver(message: DeliveryMessage) -> None:
            if wanted is not None and message.queue not in wanted:
                return
            try:
                on_wakeup(message)
            except Exception:
                logger.exception("wakeup listener callback failed")

        return LocalWakeupSubscription(self.subscribe(deliver))

    def fail_next(self, count: int, *, retryable: bool = True) -> None:
        """Answer the next ``count`` attempts with ``transport_unavailable`` failures (for tests)."""
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise RunlaneError(ErrorCode.VALIDATION_FAILED, "fail_next count must be a positive integer.")
        self._failures.append(_InjectedFailures(remaining=count, retryable=retryable))

    def raise_on_next_publish(self, error: BaseException) -> None:
        """Make the next ``publish_wakeups`` call raise ``error`` (nothing known for any attempt)."""
        self._next_call_error = error

    async def start(self) -> None:
        """Nothing to connect to."""

    async def close(self) -> None:
        """Nothing to release; accepted messages stay readable through ``published``."""

    async def publish_wakeups(self, command: PublishWakeups) -> PublishWakeupsResult:
        command = validate_publish_command(command)
        if self._next_call_error is not None:
            error, self._next_call_error = self._next_call_error, None
            raise error
        # Serialise everything first: a wire bug must fail the whole call before anything is accepted.
        parsed = [round_trip_wire(attempt.message) for attempt in command.attempts]
        outcomes: list[WakeupPublishOutcome] = []
        accepted: list[DeliveryMessage] = []
        for message in parsed:
            now = self._clock.now()
            failure = self._take_failure()
            if failure is not None:
                outcomes.append(
                    FailedWakeupPublish(
                        error=OutboxFailureRecord(
                            code=ErrorCode.TRANSPORT_UNAVAILABLE,
                            message="Local transport publish failure injected by a test.",
                            occurred_at=now,
                            retryable=failure.retryable,
                            meta={"injected": True},
                        )
                    )
                )
                continue
            self._published.append(message)
            accepted.append(message)
            outcomes.append(PublishedWakeup(published_at=now, provider_message_id=f"local_{next(self._ids)}"))
        for message in accepted:
            for subscriber in tuple(self._subscribers):
                result = subscriber(message)
                if inspect.isawaitable(result):
                    await result
        return PublishWakeupsResult(outcomes=tuple(outcomes))

    def _take_failure(self) -> _InjectedFailures | None:
        while self._failures:
            failure = self._failures[0]
            if failure.remaining > 0:
                failure.remaining -= 1
                return failure
            self._failures.pop(0)
        return None
