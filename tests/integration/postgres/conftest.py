"""Postgres fixtures: one freshly migrated schema per test module, one started storage per test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from runlane.infrastructure.postgres import PostgresStorage
from tests.integration.postgres.helpers import migrate, started_storage
from tests.support.pg_cluster import PostgresCluster


@pytest.fixture(scope="module")
def pg_migrated_schema(pg_cluster: PostgresCluster, pg_schema: str) -> str:
    """The module's fresh schema with every migration applied."""
    migrate(pg_cluster.libpq_dsn, pg_schema)
    return pg_schema


@pytest.fixture
async def pg_storage(pg_cluster: PostgresCluster, pg_migrated_schema: str) -> AsyncIterator[PostgresStorage]:
    """A started ``PostgresStorage`` on the module's schema (pool large enough for gather() tests)."""
    async with started_storage(pg_cluster.dsn, pg_migrated_schema, pool_size=10, max_overflow=20) as storage:
        yield storage
