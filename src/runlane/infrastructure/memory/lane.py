"""The local lane: in-memory storage plus in-memory transport, for development, examples and tests."""

from runlane.domain.errors import configuration_invalid
from runlane.infrastructure.memory.storage import InMemoryStorage
from runlane.infrastructure.memory.transport import InMemoryTransport
from runlane.ports.lane import Lane, create_lane

LOCAL_LANE_NAME = "local"


def create_local_storage() -> InMemoryStorage:
    """A fresh, empty in-memory store (two calls share nothing)."""
    return InMemoryStorage()


def create_local_transport() -> InMemoryTransport:
    """A fresh in-memory transport that acknowledges every wakeup."""
    return InMemoryTransport()


def create_local_lane(name: str = LOCAL_LANE_NAME) -> Lane:
    """Compose fresh local adapters; never ``production_durable`` (process exit loses everything)."""
    if not isinstance(name, str) or not name:
        raise configuration_invalid("create_local_lane name must be a non-empty string.", field="name")
    return create_lane(
        storage=create_local_storage(),
        transport=create_local_transport(),
        name=name,
        production_durable=False,
    )
