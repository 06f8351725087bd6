"""create_lane passes the lane conformance suite; the local lane composes fresh local adapters."""

from typing import Any

import pytest

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.memory import (
    InMemoryStorage,
    InMemoryTransport,
    create_local_lane,
    create_local_storage,
    create_local_transport,
)
from runlane.ports.lane import Lane, create_lane
from runlane.testing import LaneConformance, append_queued_run, create_controlled_clock, get_at
from runlane.testing.waiting import list_run_event_types


class TestCreateLane(LaneConformance):
    @pytest.fixture
    def lane_factory(self) -> Any:
        return create_lane


class TestCreateLaneWithLocalAdapters(LaneConformance):
    """The same contract when the lane composes the real local adapters."""

    def make_transport(self) -> Any:
        return create_local_transport()

    @pytest.fixture
    def lane_factory(self) -> Any:
        return create_lane


def test_local_lane_defaults() -> None:
    lane = create_local_lane()
    assert isinstance(lane, Lane)
    assert lane.name == "local"
    assert isinstance(lane.storage, InMemoryStorage)
    assert isinstance(lane.transport, InMemoryTransport)
    capabilities = lane.capabilities
    assert capabilities.production_durable is False
    assert capabilities.operator_reads is True
    assert capabilities.storage.process_local_state is True
    assert capabilities.storage.durable_state is False
    assert capabilities.transport.durable_delivery is False


def test_local_lane_name_is_configurable_and_validated() -> None:
    assert create_local_lane(name="dev").name == "dev"
    assert create_local_lane("examples").name == "examples"
    for bad in ("", None, 7, "a:b"):
        with pytest.raises(RunlaneError) as info:
            create_local_lane(name=bad)  # type: ignore[arg-type]
        assert info.value.code is ErrorCode.CONFIGURATION_INVALID


async def test_each_local_lane_has_its_own_state() -> None:
    clock = create_controlled_clock()
    first, second = create_local_lane(), create_local_lane()
    assert first.storage is not second.storage
    assert first.transport is not second.transport
    await first.start()
    await second.start()
    fixture = await append_queued_run(first, clock, "run_1")

    class Runtime:
        environment = fixture.queued_run.environment

        def __init__(self, lane: Lane) -> None:
            self.lane = lane

    assert get_at(await list_run_event_types(Runtime(first), "run_1"), 0) == "run.created"
    assert await list_run_event_types(Runtime(second), "run_1") == ()
    await first.close()
    await second.close()


def test_local_factories_return_new_instances() -> None:
    assert create_local_storage() is not create_local_storage()
    assert create_local_transport() is not create_local_transport()
