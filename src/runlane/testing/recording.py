"""Recording doubles: an acknowledging transport and lifecycle-recording adapter wrappers.

They are real adapters (they satisfy the ports), not mocks: tests observe what was called, in
which order, without patching anything.
"""

import itertools
from collections.abc import Callable
from typing import Any

from runlane.domain.queues import QueueDefinition
from runlane.ports.capabilities import TransportCapabilities
from runlane.ports.clock import SYSTEM_CLOCK, Clock
from runlane.ports.transport import (
    PublishedWakeup,
    PublishWakeupAttempt,
    PublishWakeups,
    PublishWakeupsResult,
    WakeupPublishOutcome,
    validate_publish_command,
)

NO_TRANSPORT_CAPABILITIES = TransportCapabilities(
    durable_delivery=False, message_grouping=False, native_delay=False, ordered_delivery=False
)

OutcomeFactory = Callable[[PublishWakeupAttempt], WakeupPublishOutcome]


class RecordingTransport:
    """Acknowledges every attempt as ``published`` (or as ``respond`` decides) and records it."""

    capabilities = NO_TRANSPORT_CAPABILITIES

    def __init__(
        self,
        *,
        name: str = "recording",
        clock: Clock = SYSTEM_CLOCK,
        queues: tuple[QueueDefinition, ...] | None = None,
        respond: OutcomeFactory | None = None,
    ) -> None:
        self.name = name
        self._clock = clock
        self._queues = queues
        self._respond = respond
        self._ids = itertools.count(1)
        self.calls: list[PublishWakeups] = []
        self.attempts: list[PublishWakeupAttempt] = []
        self.start_count = 0
        self.close_count = 0

    @property
    def queues(self) -> tuple[QueueDefinition, ...] | None:
        return self._queues

    async def start(self) -> None:
        self.start_count += 1

    async def close(self) -> None:
        self.close_count += 1

    async def publish_wakeups(self, command: PublishWakeups) -> PublishWakeupsResult:
        command = validate_publish_command(command)
        self.calls.append(command)
        outcomes: list[WakeupPublishOutcome] = []
        for attempt in command.attempts:
            self.attempts.append(attempt)
            if self._respond is not None:
                outcomes.append(self._respond(attempt))
            else:
                outcomes.append(
                    PublishedWakeup(
                        published_at=self._clock.now(), provider_message_id=f"rec_{next(self._ids)}"
                    )
                )
        return PublishWakeupsResult(outcomes=tuple(outcomes))


class LifecycleRecorder:
    """A shared log of lifecycle calls (``"storage.start"``, ``"transport.close"``, ...)."""

    def __init__(self) -> None:
        self.calls: list[str] = []


class RecordingAdapter:
    """Wraps an adapter, logging ``start``/``close`` and optionally failing them; all else delegates.

    With ``hooks=False`` the wrapper exposes no ``start``/``close`` at all (an adapter without hooks).
    """

    def __init__(
        self,
        inner: Any,
        label: str,
        recorder: LifecycleRecorder,
        *,
        fail_start: BaseException | None = None,
        fail_close: BaseException | None = None,
        hooks: bool = True,
    ) -> None:
        self._inner = inner
        self._label = label
        self._recorder = recorder
        self._fail_start = fail_start
        self._fail_close = fail_close
        self._hooks = hooks

    def __getattr__(self, name: str) -> Any:
        if name in ("start", "close"):
            if not self._hooks:
                raise AttributeError(name)
            return self._start if name == "start" else self._close
        return getattr(self._inner, name)

    async def _start(self) -> None:
        self._recorder.calls.append(f"{self._label}.start")
        if self._fail_start is not None:
            raise self._fail_start

    async def _close(self) -> None:
        self._recorder.calls.append(f"{self._label}.close")
        if self._fail_close is not None:
            raise self._fail_close
