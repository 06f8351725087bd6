"""Fixtures for the Postgres/SQS lane: a freshly migrated schema and SQS queues per test.

Each test gets its own schema (migrated with the real migration script) and a reset moto server
with two standard queues, so tests share nothing and can run in any order.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

from runlane import Runlane
from runlane.infrastructure.sqs import SqsDeliveryConsumer
from runlane.testing import ControlledClock
from tests.integration.lanes.support import VISIBILITY_SECONDS, stop
from tests.integration.postgres.helpers import migrate, scratch_schema
from tests.support.pg_cluster import PostgresCluster

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient


@pytest.fixture
def lane_schema(pg_cluster: PostgresCluster) -> Iterator[str]:
    """A fresh schema with every migration applied; dropped after the test."""
    with scratch_schema(pg_cluster.libpq_dsn) as schema:
        migrate(pg_cluster.libpq_dsn, schema)
        yield schema


@pytest.fixture
def clock() -> ControlledClock:
    return ControlledClock()


@pytest.fixture
def queue_urls(sqs_client: SQSClient) -> tuple[str, str]:
    """URLs of two standard queues (emails, reports) on the freshly reset moto server."""
    attributes: Any = {"VisibilityTimeout": str(VISIBILITY_SECONDS)}
    return (
        sqs_client.create_queue(QueueName="runlane-emails", Attributes=attributes)["QueueUrl"],
        sqs_client.create_queue(QueueName="runlane-reports", Attributes=attributes)["QueueUrl"],
    )


class Cleanup:
    """Stops consumers, then closes runtimes (and so their Postgres pools), in that order."""

    def __init__(self) -> None:
        self.consumers: list[SqsDeliveryConsumer] = []
        self.runtimes: list[Runlane] = []

    def runtime(self, runtime: Runlane) -> Runlane:
        self.runtimes.append(runtime)
        return runtime

    def consumer(self, consumer: SqsDeliveryConsumer) -> SqsDeliveryConsumer:
        self.consumers.append(consumer)
        return consumer

    async def close(self) -> None:
        for consumer in self.consumers:
            await stop(consumer)
        for runtime in self.runtimes:
            await runtime.close()


@pytest.fixture
async def cleanup(lane_schema: str) -> AsyncIterator[Cleanup]:
    """Torn down before ``lane_schema`` (which it depends on), so nothing uses a dropped schema."""
    tracker = Cleanup()
    try:
        yield tracker
    finally:
        await tracker.close()
