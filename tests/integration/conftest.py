"""Fixtures for integration tests: a real PostgreSQL 15 cluster and a moto (fake SQS) server.

Both run on 127.0.0.1 only, are started once per test session, and are stopped at its end.
Every test under tests/integration is marked ``integration`` automatically.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg
import pytest
from psycopg import sql

from tests.support.moto_server import MotoServer, make_sqs_client, reset_moto
from tests.support.pg_cluster import PostgresCluster

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

_HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # This hook sees every collected item of the session, so keep to the ones under this folder.
    for item in items:
        if _HERE in Path(item.path).resolve().parents:
            item.add_marker(pytest.mark.integration)


@pytest.fixture(scope="session")
def pg_cluster() -> Iterator[PostgresCluster]:
    """A running throwaway PostgreSQL cluster; ``.dsn`` (SQLAlchemy) and ``.libpq_dsn`` (psycopg)."""
    cluster = PostgresCluster()
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="module")
def pg_schema(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh, uniquely named, empty schema in the cluster's database; dropped afterwards."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True, connect_timeout=10) as conn:
        conn.execute(sql.SQL("create schema {}").format(sql.Identifier(name)))
    try:
        yield name
    finally:
        # A test may have restarted the server since; this is a new connection anyway.
        with psycopg.connect(pg_cluster.libpq_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))


@pytest.fixture(scope="session")
def moto_sqs_endpoint() -> Iterator[str]:
    """Endpoint URL (``http://127.0.0.1:PORT``) of an in-process moto server."""
    server = MotoServer()
    endpoint = server.start()
    try:
        yield endpoint
    finally:
        server.stop()


@pytest.fixture
def sqs_client(moto_sqs_endpoint: str) -> SQSClient:
    """A real boto3 SQS client against the moto server, which is reset first (no queues)."""
    reset_moto(moto_sqs_endpoint)
    return make_sqs_client(moto_sqs_endpoint)
