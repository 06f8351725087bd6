"""Entrypoint fixtures: a Postgres schema migrated by ``runlane migrate --apply`` itself.

Each test gets its own runlane environment name, so runs of one test never show up in another's
reads even though the module shares one schema.
"""

from __future__ import annotations

import uuid

import pytest

from runlane.infrastructure.postgres import LATEST_VERSION
from tests.support.console_script import BASIC_APP, clean_env, run_cli
from tests.support.pg_cluster import PostgresCluster


@pytest.fixture(scope="module")
def pg_base_env(pg_cluster: PostgresCluster, pg_schema: str) -> dict[str, str]:
    env = clean_env(
        RUNLANE_APP=BASIC_APP,
        RUNLANE_LANE="postgres",
        RUNLANE_DATABASE_URL=pg_cluster.dsn,
        RUNLANE_DATABASE_SCHEMA=pg_schema,
    )
    applied = run_cli("migrate", "--apply", env=env).expect(0)
    versions = ", ".join(str(version) for version in range(1, LATEST_VERSION + 1))
    assert f"applied migration(s) {versions} to schema {pg_schema}" in applied.stdout
    return env


@pytest.fixture
def pg_env(pg_base_env: dict[str, str]) -> dict[str, str]:
    return {**pg_base_env, "RUNLANE_ENVIRONMENT": f"test-{uuid.uuid4().hex[:12]}"}
