"""``LaneConformance``: the executable lane contract (testing-package.md, lane items 1-6).

Subclass it and provide a ``lane_factory`` fixture: a callable taking ``storage=``, ``transport=``
and optional ``name=`` / ``operator_reads=`` / ``production_durable=`` that returns a ``Lane``
(``create_lane`` itself, or a lane package's composition function with the same shape). Override
the ``expected_*`` class attributes when a lane package documents other defaults.

Adapters come from ``make_storage`` / ``make_transport`` (in-memory by default) and are wrapped in
``RecordingAdapter`` to observe the lifecycle order.
"""

import uuid
from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import (
    DeliveryIgnoredReason,
    DeliveryResultType,
    ErrorCode,
    OutboxMessageStatus,
    RunStatus,
)
from runlane.infrastructure.memory import InMemoryStorage
from runlane.ports.lane import Lane
from runlane.testing.recording import LifecycleRecorder, RecordingAdapter, RecordingTransport


class LaneConformance:
    expected_default_name = "lane"
    expected_default_operator_reads = True
    expected_default_production_durable = False

    def make_storage(self) -> Any:
        return InMemoryStorage()

    def make_transport(self) -> Any:
        return RecordingTransport()

    def recorded(
        self, recorder: LifecycleRecorder, **failures: BaseException
    ) -> tuple[RecordingAdapter, RecordingAdapter]:
        storage = RecordingAdapter(
            self.make_storage(),
            "storage",
            recorder,
            fail_start=failures.get("storage_start"),
            fail_close=failures.get("storage_close"),
        )
        transport = RecordingAdapter(
            self.make_transport(),
            "transport",
            recorder,
            fail_start=failures.get("transport_start"),
            fail_close=failures.get("transport_close"),
        )
        return storage, transport

    # -- 1. lifecycle order -------------------------------------------------------------------

    async def test_start_starts_storage_then_transport(self, lane_factory: Any) -> None:
        recorder = LifecycleRecorder()
        storage, transport = self.recorded(recorder)
        lane: Lane = lane_factory(storage=storage, transport=transport)
        await lane.start()
        assert recorder.calls == ["storage.start", "transport.start"]
        assert lane.started

    async def test_close_closes_transport_then_storage(self, lane_factory: Any) -> None:
        recorder = LifecycleRecorder()
        storage, transport = self.recorded(recorder)
        lane: Lane = lane_factory(storage=storage, transport=transport)
        await lane.start()
        await lane.close()
        assert recorder.calls == ["storage.start", "transport.start", "transport.close", "storage.close"]
        assert not lane.started

    async def test_starting_twice_starts_the_adapters_once(self, lane_factory: Any) -> None:
        recorder = LifecycleRecorder()
        storage, transport = self.recorded(recorder)
        lane: Lane = lane_factory(storage=storage, transport=transport)
        await lane.start()
        await lane.start()
        assert recorder.calls == ["storage.start", "transport.start"]

    async def test_adapters_without_hooks_are_skipped(self, lane_factory: Any) -> None:
        recorder = LifecycleRecorder()
        storage = RecordingAdapter(self.make_storage(), "storage", recorder, hooks=False)
        transport = RecordingAdapter(self.make_transport(), "transport", recorder)
        lane: Lane = lane_factory(storage=storage, transport=transport)
        await lane.start()
        await lane.close()
        assert recorder.calls == ["transport.start", "transport.close"]

    # -- 2. failures during the lifecycle -----------------------------------------------------

    async def test_transport_start_failure_closes_storage_and_propagates(self, lane_factory: Any) -> None:
        recorder = LifecycleRecorder()
        boom = RuntimeError("transport cannot start")
        storage, transport = self.recorded(recorder, transport_start=boom)
        lane: Lane = lane_factory(storage=storage, transport=transport)
        with pytest.raises(RuntimeError) as info:
            await lane.start()
        assert info.value is boom
        assert recorder.calls == ["storage.start", "transport.start", "storage.close"]
        assert not lane.started

    async def test_storage_start_failure_never_starts_transport(self, lane_factory: Any) -> None:
        recorder = LifecycleRecorder()
        boom = RuntimeError("storage cannot start")
        storage, transport = self.recorded(recorder, storage_start=boom)
        lane: Lane = lane_factory(storage=storage, transport=transport)
        with pytest.raises(RuntimeError) as info:
            await lane.start()
        assert info.value is boom
        assert recorder.calls == ["storage.start"]

    async def test_close_still_closes_storage_when_transport_close_fails(self, lane_factory: Any) -> None:
        recorder = LifecycleRecorder()
        boom = RuntimeError("transport cannot close")
        storage, transport = self.recorded(
            recorder, transport_close=boom, storage_close=RuntimeError("second")
        )
        lane: Lane = lane_factory(storage=storage, transport=transport)
        await lane.start()
        with pytest.raises(RuntimeError) as info:
            await lane.close()
        assert info.value is boom, "the first error is re-raised"
        assert recorder.calls[-2:] == ["transport.close", "storage.close"]

    # -- 3. defaults and overrides ------------------------------------------------------------

    async def test_defaults(self, lane_factory: Any) -> None:
        lane: Lane = lane_factory(storage=self.make_storage(), transport=self.make_transport())
        assert lane.name == self.expected_default_name
        assert lane.capabilities.operator_reads is self.expected_default_operator_reads
        assert lane.capabilities.production_durable is self.expected_default_production_durable
        assert not lane.started

    async def test_overrides_are_respected(self, lane_factory: Any) -> None:
        lane: Lane = lane_factory(
            storage=self.make_storage(),
            transport=self.make_transport(),
            name="custom-lane",
            operator_reads=False,
            production_durable=True,
        )
        assert lane.name == "custom-lane"
        assert lane.capabilities.operator_reads is False
        assert lane.capabilities.production_durable is True

    # -- 4. original instances and capabilities -----------------------------------------------

    async def test_lane_keeps_the_original_adapter_instances(self, lane_factory: Any) -> None:
        storage, transport = self.make_storage(), self.make_transport()
        lane: Lane = lane_factory(storage=storage, transport=transport)
        assert lane.storage is storage
        assert lane.transport is transport

    async def test_lane_exposes_the_adapters_capabilities(self, lane_factory: Any) -> None:
        storage, transport = self.make_storage(), self.make_transport()
        lane: Lane = lane_factory(storage=storage, transport=transport)
        assert lane.capabilities.storage == storage.capabilities
        assert lane.capabilities.transport == transport.capabilities
        wire = lane.capabilities.to_wire()
        assert set(wire) == {"operatorReads", "productionDurable", "storage", "transport"}
        assert wire["storage"] == storage.capabilities.to_wire()
        assert wire["transport"] == transport.capabilities.to_wire()

    # -- 5. malformed input -------------------------------------------------------------------

    async def test_malformed_options_are_configuration_invalid(self, lane_factory: Any) -> None:
        bad_options: list[dict[str, Any]] = [
            {"name": ""},
            {"name": "has:colon"},
            {"name": 42},
            {"operator_reads": "yes"},
            {"production_durable": 1},
        ]
        for options in bad_options:
            with pytest.raises(RunlaneError) as info:
                lane_factory(storage=self.make_storage(), transport=self.make_transport(), **options)
            assert info.value.code is ErrorCode.CONFIGURATION_INVALID, repr(options)

    async def test_incomplete_adapters_are_configuration_invalid(self, lane_factory: Any) -> None:
        class NoPublish:
            name = "broken"
            capabilities = RecordingTransport().capabilities

        class StorageWithoutMethods:
            name = "broken"
            capabilities = InMemoryStorage().capabilities

            async def get_run(self, query: object) -> None:
                return None

        class NamelessTransport(RecordingTransport):
            pass

        nameless = NamelessTransport(name="")
        cases: list[dict[str, Any]] = [
            {"storage": None, "transport": self.make_transport()},
            {"storage": self.make_storage(), "transport": None},
            {"storage": StorageWithoutMethods(), "transport": self.make_transport()},
            {"storage": self.make_storage(), "transport": NoPublish()},
            {"storage": self.make_storage(), "transport": nameless},
            {"storage": self.make_transport(), "transport": self.make_transport()},
        ]
        for case in cases:
            with pytest.raises(RunlaneError) as info:
                lane_factory(**case)
            assert info.value.code is ErrorCode.CONFIGURATION_INVALID, repr(case)

    # -- 6. end-to-end through core -----------------------------------------------------------

    def e2e_runtime(self, lane_factory: Any, calls: list[str]) -> Any:
        """A runtime on a fresh lane with one task that records its runs, in a unique environment."""
        from runlane import Environment, create_runlane, queue, task

        async def record(payload: Any, context: Any) -> None:
            calls.append(context.run.id)

        default = queue("default", default=True)
        lane: Lane = lane_factory(storage=self.make_storage(), transport=self.make_transport())
        return create_runlane(
            lane=lane,
            queues=[default],
            tasks=[task("conformance.e2e", run=record)],
            environment=Environment(f"lane_e2e_{uuid.uuid4().hex[:12]}"),
        )

    async def test_trigger_then_execute_next_succeeds(self, lane_factory: Any) -> None:
        calls: list[str] = []
        runtime = self.e2e_runtime(lane_factory, calls)
        async with runtime:
            created = await runtime.trigger(runtime.tasks["conformance.e2e"], {"n": 1})
            executed = await runtime.execute_next()
            assert executed is not None
            assert executed.id == created.run.id
            assert executed.status is RunStatus.SUCCEEDED
            assert calls == [created.run.id]
            assert await runtime.execute_next() is None

    async def test_trigger_publish_then_execute_delivery_succeeds_and_stale_is_ignored(
        self, lane_factory: Any
    ) -> None:
        from runlane.ports.storage_commands import ListOutboxMessages

        calls: list[str] = []
        runtime = self.e2e_runtime(lane_factory, calls)
        async with runtime:
            created = await runtime.trigger(runtime.tasks["conformance.e2e"], {"n": 2})
            assert len(created.published) == 1  # eager dispatch published its one wakeup
            rows = await runtime.lane.storage.list_outbox_messages(
                ListOutboxMessages(environment=runtime.environment, run_id=created.run.id)
            )
            assert [row.status for row in rows] == [OutboxMessageStatus.PUBLISHED]
            message = rows[0].message
            first = await runtime.execute_delivery(message)
            assert first.type is DeliveryResultType.EXECUTED
            assert first.run is not None
            assert first.run.status is RunStatus.SUCCEEDED
            stale = await runtime.execute_delivery(message)
            assert stale.type is DeliveryResultType.IGNORED
            assert stale.reason is DeliveryIgnoredReason.TERMINAL
            assert calls == [created.run.id]
