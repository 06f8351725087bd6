"""``StorageConformance``: the executable storage contract every adapter must pass.

Subclass it in a test module and provide an async ``storage`` fixture that yields a started,
empty-enough storage (tests use a fresh, uniquely named environment each, so one database may be
shared)::

    class TestInMemoryStorage(StorageConformance):
        @pytest.fixture
        async def storage(self) -> AsyncIterator[StorageAdapter]:
            storage = InMemoryStorage()
            await storage.start()
            yield storage
            await storage.close()

Every test talks to the adapter only through the ``StorageAdapter`` port, so the same suite runs
unchanged against the in-memory and the Postgres adapter. The class has no ``Test`` prefix, so
pytest collects it only through such subclasses.
"""

import pytest

from runlane.domain.values import Environment
from runlane.ports.storage import StorageAdapter
from runlane.testing.clocks import ControlledClock
from runlane.testing.conformance.storage_batches import StorageBatchTests
from runlane.testing.conformance.storage_kit import StorageKit, unique_environment
from runlane.testing.conformance.storage_leases import StorageLeaseTests
from runlane.testing.conformance.storage_outbox import StorageOutboxTests
from runlane.testing.conformance.storage_outbox_claims import StorageOutboxClaimTests
from runlane.testing.conformance.storage_ownership import StorageOwnershipTests
from runlane.testing.conformance.storage_reads import StorageReadTests
from runlane.testing.conformance.storage_reservations import StorageReservationTests
from runlane.testing.conformance.storage_writes import StorageWriteTests


class StorageConformance(
    StorageWriteTests,
    StorageBatchTests,
    StorageOwnershipTests,
    StorageOutboxTests,
    StorageOutboxClaimTests,
    StorageLeaseTests,
    StorageReservationTests,
    StorageReadTests,
):
    @pytest.fixture
    def environment(self) -> Environment:
        return unique_environment()

    @pytest.fixture
    def clock(self) -> ControlledClock:
        return ControlledClock()

    @pytest.fixture
    def kit(self, storage: StorageAdapter, environment: Environment, clock: ControlledClock) -> StorageKit:
        return StorageKit(storage=storage, environment=environment, clock=clock)
