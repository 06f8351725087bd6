"""In-memory adapters and the local lane: the full contract in process memory, nothing durable."""

from runlane.infrastructure.memory.lane import create_local_lane, create_local_storage, create_local_transport
from runlane.infrastructure.memory.storage import InMemoryStorage
from runlane.infrastructure.memory.transport import InMemoryTransport

__all__ = [
    "InMemoryStorage",
    "InMemoryTransport",
    "create_local_lane",
    "create_local_storage",
    "create_local_transport",
]
