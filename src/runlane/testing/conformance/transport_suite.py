"""``TransportConformance``: the executable transport contract.

Subclass it and provide an async ``transport`` fixture yielding a started adapter. Two optional
hooks unlock more scenarios; a transport that cannot support them skips those tests with a reason:

* ``inject_failures(transport, count, retryable)`` makes the next ``count`` attempts fail;
* ``received_wire_messages(transport)`` returns the JSON-ready wakeups the provider received.

A transport that also implements the optional ``WakeupSource`` (``listen``) is checked for it:
a published wakeup reaches a listener of its queue within ``wakeup_wait_seconds``, a listener of
every queue (``queues=None``) gets every wakeup, and a closed listener gets nothing more.
"""

import asyncio
import dataclasses
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.json_values import ensure_json_value
from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import ErrorCode
from runlane.ports.capabilities import TransportCapabilities
from runlane.ports.transport import (
    FailedWakeupPublish,
    PublishedWakeup,
    PublishWakeupAttempt,
    PublishWakeups,
    PublishWakeupsResult,
    TransportAdapter,
    WakeupSource,
    validate_publish_result,
)

WAKEUP_FIELDS = frozenset({"environment", "queue", "runId", "requestedAt", "traceCarrier"})
REQUESTED_AT = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)


def _is_aware(value: object) -> bool:
    return isinstance(value, datetime) and value.tzinfo is not None and value.utcoffset() is not None


class WakeupInbox:
    """A ``listen`` callback that records what it got and lets a test wait for it (bounded)."""

    def __init__(self) -> None:
        self.messages: list[DeliveryMessage] = []
        self._arrived = asyncio.Event()

    def __call__(self, message: DeliveryMessage) -> None:
        self.messages.append(message)
        self._arrived.set()

    async def wait_for(self, done: Callable[[list[DeliveryMessage]], bool], seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while not done(self.messages):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout=min(remaining, 0.5))
            except TimeoutError:
                continue
        return True


class TransportConformance:
    wakeup_wait_seconds = 10.0

    # -- hooks --------------------------------------------------------------------------------

    def inject_failures(self, transport: Any, count: int, *, retryable: bool) -> bool:
        """Make the next ``count`` attempts fail; return ``False`` when the adapter cannot."""
        return False

    async def received_wire_messages(self, transport: Any) -> list[dict[str, Any]] | None:
        """The wakeups the provider received, in wire form; ``None`` when they cannot be observed."""
        return None

    # -- helpers ------------------------------------------------------------------------------

    def queue_name(self, transport: TransportAdapter) -> str:
        queues = transport.queues
        return "default" if not queues else queues[0].name

    def attempts(
        self, transport: TransportAdapter, count: int, *, first: int = 0, **message: Any
    ) -> tuple[PublishWakeupAttempt, ...]:
        queue = self.queue_name(transport)
        return tuple(
            PublishWakeupAttempt(
                outbox_message_id=f"outbox_conformance_{index}",
                message=DeliveryMessage(
                    environment=Environment("conformance"),
                    run_id=f"run_conformance_{index}",
                    queue=queue,
                    **message,
                ),
            )
            for index in range(first, first + count)
        )

    async def publish(
        self, transport: TransportAdapter, attempts: tuple[PublishWakeupAttempt, ...]
    ) -> PublishWakeupsResult:
        command = PublishWakeups(attempts=attempts)
        return validate_publish_result(command, await transport.publish_wakeups(command))

    # -- 5. capabilities ----------------------------------------------------------------------

    async def test_capabilities_are_honest_booleans(self, transport: TransportAdapter) -> None:
        capabilities = transport.capabilities
        assert isinstance(capabilities, TransportCapabilities)
        values = dataclasses.asdict(capabilities)
        assert sorted(values) == ["durable_delivery", "message_grouping", "native_delay", "ordered_delivery"]
        assert all(type(value) is bool for value in values.values())
        if capabilities.ordered_delivery:
            assert capabilities.message_grouping, "ordered delivery is ordering within message groups"
        assert isinstance(transport.name, str)
        assert transport.name
        assert transport.queues is None or isinstance(transport.queues, tuple)

    # -- 1. indexed outcomes ------------------------------------------------------------------

    async def test_one_outcome_per_attempt_in_input_order(self, transport: TransportAdapter) -> None:
        result = await self.publish(transport, self.attempts(transport, 5, requested_at=REQUESTED_AT))
        assert len(result.outcomes) == 5
        for outcome in result.outcomes:
            assert isinstance(outcome, PublishedWakeup)
            assert _is_aware(outcome.published_at)
            assert outcome.provider_message_id is None or isinstance(outcome.provider_message_id, str)

    async def test_a_large_batch_keeps_one_outcome_per_attempt(self, transport: TransportAdapter) -> None:
        result = await self.publish(transport, self.attempts(transport, 25))
        assert len(result.outcomes) == 25
        assert all(isinstance(outcome, PublishedWakeup) for outcome in result.outcomes)

    async def test_an_empty_command_has_no_outcomes(self, transport: TransportAdapter) -> None:
        assert (await self.publish(transport, ())).outcomes == ()

    async def test_mixed_success_and_failure_keep_their_positions(self, transport: TransportAdapter) -> None:
        if not self.inject_failures(transport, 2, retryable=True):
            pytest.skip("this transport cannot inject publish failures")
        result = await self.publish(transport, self.attempts(transport, 5))
        kinds = [type(outcome) for outcome in result.outcomes]
        assert kinds == [
            FailedWakeupPublish,
            FailedWakeupPublish,
            PublishedWakeup,
            PublishedWakeup,
            PublishedWakeup,
        ]

    # -- 3. failure records -------------------------------------------------------------------

    async def test_failure_records_are_well_formed(self, transport: TransportAdapter) -> None:
        for retryable in (True, False):
            if not self.inject_failures(transport, 1, retryable=retryable):
                pytest.skip("this transport cannot inject publish failures")
            (outcome,) = (await self.publish(transport, self.attempts(transport, 1))).outcomes
            assert isinstance(outcome, FailedWakeupPublish)
            error = outcome.error
            assert isinstance(error.code, ErrorCode)
            assert error.retryable is retryable
            assert isinstance(error.message, str)
            assert error.message
            assert _is_aware(error.occurred_at)
            if error.meta is not None:
                assert ensure_json_value(error.meta) == error.meta
            wire = error.to_wire()
            assert set(wire) <= {"code", "message", "meta", "occurredAt", "retryable"}

    # -- 2. invalid commands ------------------------------------------------------------------

    async def test_invalid_commands_are_adapter_contract_violations(
        self, transport: TransportAdapter
    ) -> None:
        (good,) = self.attempts(transport, 1)
        invalid: list[Any] = [
            {"attempts": [good]},
            PublishWakeups(attempts=[good]),  # type: ignore[arg-type]
            PublishWakeups(attempts=(good, good)),
            PublishWakeups(attempts=(dataclasses.replace(good, outbox_message_id=""),)),
            PublishWakeups(attempts=(PublishWakeupAttempt(outbox_message_id="x", message={"runId": "r"}),)),  # type: ignore[arg-type]
            PublishWakeups(attempts=("not an attempt",)),  # type: ignore[arg-type]
        ]
        for command in invalid:
            with pytest.raises(RunlaneError) as info:
                await transport.publish_wakeups(command)
            assert info.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION, repr(command)

    # -- 4. minimal wakeups -------------------------------------------------------------------

    async def test_wakeups_carry_only_the_five_wakeup_fields(self, transport: TransportAdapter) -> None:
        sent = self.attempts(
            transport, 2, requested_at=REQUESTED_AT, trace_carrier={"traceparent": "00-a-b-01"}
        )
        sent += self.attempts(transport, 1, first=2)
        await self.publish(transport, sent)
        received = await self.received_wire_messages(transport)
        if received is None:
            pytest.skip("this transport cannot show what the provider received")
        mine = [wire for wire in received if wire.get("environment") == {"name": "conformance"}]
        assert len(mine) >= 3
        for wire in mine:
            assert set(wire) <= WAKEUP_FIELDS
            assert {"environment", "queue", "runId"} <= set(wire)
        parsed = [DeliveryMessage.from_wire(wire) for wire in mine[-3:]]
        assert parsed == [attempt.message for attempt in sent]

    # -- 6. optional wakeup listeners (WakeupSource) -------------------------------------------

    def other_queue_name(self, transport: TransportAdapter) -> str | None:
        """A second queue to publish to, or ``None`` when the transport is bound to one queue."""
        queues = transport.queues
        if queues is None:
            return "conformance_other"
        return queues[1].name if len(queues) > 1 else None

    def wakeup(self, queue: str, **message: Any) -> PublishWakeupAttempt:
        token = uuid.uuid4().hex
        return PublishWakeupAttempt(
            outbox_message_id=f"outbox_listen_{token}",
            message=DeliveryMessage(
                environment=Environment("conformance"), run_id=f"run_listen_{token}", queue=queue, **message
            ),
        )

    def wakeup_source(self, transport: TransportAdapter) -> WakeupSource:
        if not isinstance(transport, WakeupSource):
            pytest.skip("this transport has no wakeup listeners (WakeupSource is optional)")
        return transport

    async def test_listeners_receive_the_wakeups_of_their_queues(self, transport: TransportAdapter) -> None:
        source = self.wakeup_source(transport)
        queue, other = self.queue_name(transport), self.other_queue_name(transport)
        mine, everything = WakeupInbox(), WakeupInbox()
        subscriptions = [await source.listen((queue,), mine), await source.listen(None, everything)]
        try:
            elsewhere = [] if other is None else [self.wakeup(other)]
            if elsewhere:
                await self.publish(transport, tuple(elsewhere))
            sent = self.wakeup(queue, requested_at=REQUESTED_AT, trace_carrier={"traceparent": "00-a-b-01"})
            await self.publish(transport, (sent,))
            wanted = [attempt.message for attempt in (*elsewhere, sent)]
            assert await mine.wait_for(lambda got: sent.message in got, self.wakeup_wait_seconds), (
                "a listener of the queue did not get its wakeup"
            )
            assert await everything.wait_for(
                lambda got: all(message in got for message in wanted), self.wakeup_wait_seconds
            ), "a listener of every queue did not get every wakeup"
            assert all(message.queue == queue for message in mine.messages)
            assert mine.messages.count(sent.message) == 1
        finally:
            for subscription in subscriptions:
                await subscription.close()

    async def test_a_closed_listener_gets_nothing_more(self, transport: TransportAdapter) -> None:
        source = self.wakeup_source(transport)
        queue = self.queue_name(transport)
        closed, control = WakeupInbox(), WakeupInbox()
        subscription = await source.listen((queue,), closed)
        watcher = await source.listen((queue,), control)
        try:
            await subscription.close()
            await subscription.close()  # closing twice is harmless
            sent = self.wakeup(queue)
            await self.publish(transport, (sent,))
            assert await control.wait_for(lambda got: sent.message in got, self.wakeup_wait_seconds)
            assert closed.messages == []
        finally:
            await watcher.close()
