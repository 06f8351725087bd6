"""Fixtures for runtime behaviour tests: a controlled clock and a harness that closes runtimes."""

from collections.abc import AsyncIterator

import pytest

from runlane.testing import ControlledClock, create_controlled_clock
from tests.unit.application.support import Harness


@pytest.fixture
def clock() -> ControlledClock:
    return create_controlled_clock()


@pytest.fixture
async def harness(clock: ControlledClock) -> AsyncIterator[Harness]:
    built = Harness(clock)
    yield built
    await built.close()
