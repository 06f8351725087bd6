"""The in-memory transport passes the transport conformance suite and round-trips the wire form."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.values import DeliveryMessage, Environment
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.memory import InMemoryTransport, create_local_transport
from runlane.ports.transport import (
    FailedWakeupPublish,
    PublishedWakeup,
    PublishWakeupAttempt,
    PublishWakeups,
    TransportAdapter,
    WakeupSource,
    WakeupSubscription,
)
from runlane.testing import TransportConformance, create_controlled_clock


class TestInMemoryTransport(TransportConformance):
    @pytest.fixture
    async def transport(self) -> AsyncIterator[TransportAdapter]:
        transport = InMemoryTransport()
        await transport.start()
        yield transport
        await transport.close()

    def inject_failures(self, transport: Any, count: int, *, retryable: bool) -> bool:
        transport.fail_next(count, retryable=retryable)
        return True

    async def received_wire_messages(self, transport: Any) -> list[dict[str, Any]] | None:
        return [message.to_wire() for message in transport.published]


def _attempt(run_id: str, **fields: Any) -> PublishWakeupAttempt:
    return PublishWakeupAttempt(
        outbox_message_id=f"outbox_{run_id}",
        message=DeliveryMessage(environment=Environment("local"), run_id=run_id, queue="emails", **fields),
    )


def test_local_transport_is_named_local_and_promises_nothing() -> None:
    transport = create_local_transport()
    assert transport is not create_local_transport()
    assert isinstance(transport, TransportAdapter)
    assert transport.name == "local"
    assert transport.queues is None
    assert set(transport.capabilities.to_wire().values()) == {False}


async def test_published_messages_equal_what_was_sent_after_the_wire_round_trip() -> None:
    transport = create_local_transport()
    requested = datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC)
    sent = (
        _attempt("run_1", requested_at=requested, trace_carrier={"traceparent": "00-abc-def-01"}),
        _attempt("run_2"),
    )
    result = await transport.publish_wakeups(PublishWakeups(attempts=sent))
    assert [type(o) for o in result.outcomes] == [PublishedWakeup, PublishedWakeup]
    assert transport.published == tuple(attempt.message for attempt in sent)
    assert transport.published[0] is not sent[0].message, "the stored message is the parsed wire copy"
    ids = [o.provider_message_id for o in result.outcomes if isinstance(o, PublishedWakeup)]
    assert len(set(ids)) == 2


async def test_a_wire_form_that_loses_data_fails_the_whole_call(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = create_local_transport()
    original = DeliveryMessage.to_wire

    def lossy(self: DeliveryMessage) -> dict[str, Any]:
        wire = original(self)
        wire.pop("traceCarrier", None)
        return wire

    monkeypatch.setattr(DeliveryMessage, "to_wire", lossy)
    attempts = (_attempt("run_ok"), _attempt("run_lossy", trace_carrier={"k": "v"}))
    with pytest.raises(RunlaneError) as info:
        await transport.publish_wakeups(PublishWakeups(attempts=attempts))
    assert info.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
    assert transport.published == (), "nothing is accepted when one message cannot cross the wire"


async def test_a_wire_form_the_parser_rejects_fails_the_whole_call(monkeypatch: pytest.MonkeyPatch) -> None:
    transport = create_local_transport()
    original = DeliveryMessage.to_wire
    monkeypatch.setattr(DeliveryMessage, "to_wire", lambda self: {**original(self), "payload": {"secret": 1}})
    with pytest.raises(RunlaneError) as info:
        await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_1"),)))
    assert info.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION


async def test_drain_returns_messages_since_the_last_drain() -> None:
    transport = create_local_transport()
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_1"), _attempt("run_2"))))
    assert [m.run_id for m in transport.drain()] == ["run_1", "run_2"]
    assert transport.drain() == ()
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_3"),)))
    assert [m.run_id for m in transport.drain()] == ["run_3"]
    assert [m.run_id for m in transport.published] == ["run_1", "run_2", "run_3"]


async def test_subscribers_see_each_accepted_message_and_can_unsubscribe() -> None:
    transport = create_local_transport()
    seen_sync: list[str] = []
    seen_async: list[str] = []

    async def async_consumer(message: DeliveryMessage) -> None:
        seen_async.append(message.run_id)

    unsubscribe = transport.subscribe(lambda message: seen_sync.append(message.run_id))
    transport.subscribe(async_consumer)
    transport.fail_next(1)
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_failed"), _attempt("run_1"))))
    unsubscribe()
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_2"),)))
    assert seen_sync == ["run_1"]
    assert seen_async == ["run_1", "run_2"]


async def test_injected_failures_are_consumed_in_order_and_keep_their_retryability() -> None:
    clock = create_controlled_clock()
    transport = InMemoryTransport(clock=clock)
    transport.fail_next(1, retryable=False)
    transport.fail_next(1, retryable=True)
    attempts = tuple(_attempt(f"run_{i}") for i in range(3))
    outcomes = (await transport.publish_wakeups(PublishWakeups(attempts=attempts))).outcomes
    assert isinstance(outcomes[0], FailedWakeupPublish)
    assert outcomes[0].error.retryable is False
    assert isinstance(outcomes[1], FailedWakeupPublish)
    assert outcomes[1].error.retryable is True
    assert isinstance(outcomes[2], PublishedWakeup)
    assert outcomes[2].published_at == clock.now()
    assert outcomes[0].error.code is ErrorCode.TRANSPORT_UNAVAILABLE
    assert outcomes[0].error.occurred_at == clock.now()
    assert [m.run_id for m in transport.published] == ["run_2"]
    with pytest.raises(RunlaneError):
        transport.fail_next(0)


async def test_raise_on_next_publish_fails_one_whole_call() -> None:
    transport = create_local_transport()
    transport.raise_on_next_publish(ConnectionError("down"))
    with pytest.raises(ConnectionError):
        await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_1"),)))
    assert transport.published == ()
    result = await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_1"),)))
    assert isinstance(result.outcomes[0], PublishedWakeup)


# -- WakeupSource -------------------------------------------------------------------------------


async def test_the_local_transport_is_a_wakeup_source() -> None:
    assert isinstance(create_local_transport(), WakeupSource)


async def test_listeners_run_synchronously_before_publish_returns_and_filter_by_queue() -> None:
    transport = create_local_transport()
    emails: list[str] = []
    everything: list[str] = []
    await transport.listen(("emails",), lambda message: emails.append(message.run_id))
    await transport.listen(None, lambda message: everything.append(message.run_id))
    other = PublishWakeupAttempt(
        outbox_message_id="outbox_other",
        message=DeliveryMessage(environment=Environment("local"), run_id="run_other", queue="reports"),
    )
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_1"), other)))
    # No await between publish and the checks: the callbacks already ran.
    assert emails == ["run_1"]
    assert everything == ["run_1", "run_other"]


async def test_failed_attempts_wake_nobody_and_closed_listeners_stop() -> None:
    transport = create_local_transport()
    seen: list[str] = []
    subscription = await transport.listen(None, lambda message: seen.append(message.run_id))
    transport.fail_next(1)
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_failed"), _attempt("run_1"))))
    await subscription.close()
    await subscription.close()
    await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_2"),)))
    assert seen == ["run_1"]
    assert isinstance(subscription, WakeupSubscription)
    assert subscription.closed


async def test_a_failing_listener_does_not_fail_the_publish(caplog: pytest.LogCaptureFixture) -> None:
    transport = create_local_transport()
    after: list[str] = []

    def broken(message: DeliveryMessage) -> None:
        raise RuntimeError("listener bug")

    await transport.listen(None, broken)
    await transport.listen(None, lambda message: after.append(message.run_id))
    result = await transport.publish_wakeups(PublishWakeups(attempts=(_attempt("run_1"),)))
    assert isinstance(result.outcomes[0], PublishedWakeup)
    assert after == ["run_1"], "later listeners still run"
    assert "wakeup listener callback failed" in caplog.text


async def test_listen_needs_a_callable() -> None:
    with pytest.raises(RunlaneError) as info:
        await create_local_transport().listen(None, "not callable")  # type: ignore[arg-type]
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID
