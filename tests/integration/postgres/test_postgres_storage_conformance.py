"""The shared storage conformance suite, run against a real PostgreSQL server."""

from __future__ import annotations

import pytest

from runlane.infrastructure.postgres import PostgresStorage
from runlane.ports.storage import StorageAdapter
from runlane.testing.conformance import StorageConformance


class TestPostgresStorageConformance(StorageConformance):
    @pytest.fixture
    def storage(self, pg_storage: PostgresStorage) -> StorageAdapter:
        return pg_storage
