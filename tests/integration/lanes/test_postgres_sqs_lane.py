"""create_postgres_sqs_lane: strict lane-owned options, then a plain create_lane composition."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from runlane import ErrorCode, RunlaneError
from runlane.infrastructure.lanes import create_postgres_sqs_lane
from runlane.infrastructure.postgres import PostgresStorage
from runlane.infrastructure.sqs import SqsTransport, sqs_queue
from tests.integration.lanes.support import EMAILS
from tests.integration.postgres.helpers import scratch_schema
from tests.support.pg_cluster import PostgresCluster

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

QUEUE_URL = "http://127.0.0.1:1/000000000000/runlane-emails"


def sqs_options(client: Any, **extra: Any) -> dict[str, Any]:
    return {"client": client, "queues": [sqs_queue(EMAILS, queue_url=QUEUE_URL)], **extra}


def postgres_options(dsn: str = "postgresql://app@127.0.0.1:5432/app", **extra: Any) -> dict[str, Any]:
    return {"connection_string": dsn, **extra}


def config_error(**options: Any) -> RunlaneError:
    with pytest.raises(RunlaneError) as info:
        create_postgres_sqs_lane(**options)
    assert info.value.code is ErrorCode.CONFIGURATION_INVALID, info.value
    return info.value


def test_composes_postgres_storage_and_sqs_transport(sqs_client: SQSClient) -> None:
    lane = create_postgres_sqs_lane(
        postgres=postgres_options(schema="runlane"), sqs=sqs_options(sqs_client, batch_size=5)
    )

    assert lane.name == "postgres-sqs"
    assert isinstance(lane.storage, PostgresStorage)
    assert lane.storage.schema == "runlane"
    assert isinstance(lane.transport, SqsTransport)
    assert lane.transport.name == "sqs"
    assert [definition.name for definition in lane.transport.queues] == ["emails"]
    caps = lane.capabilities
    assert caps.production_durable is True
    assert caps.operator_reads is True
    assert caps.storage.durable_state is True
    assert caps.storage.process_local_state is False
    assert caps.transport.durable_delivery is True
    assert caps.transport.native_delay is False
    assert caps.transport.message_grouping is False  # a standard queue
    assert lane.started is False  # nothing connects before start()


def test_custom_name(sqs_client: SQSClient) -> None:
    lane = create_postgres_sqs_lane(name="tenant-a", postgres=postgres_options(), sqs=sqs_options(sqs_client))
    assert lane.name == "tenant-a"


@pytest.mark.parametrize("name", ["", "a:b", 3])
def test_invalid_name(sqs_client: SQSClient, name: Any) -> None:
    error = config_error(name=name, postgres=postgres_options(), sqs=sqs_options(sqs_client))
    assert "name" in error.message


def test_unknown_lane_option(sqs_client: SQSClient) -> None:
    error = config_error(postgres=postgres_options(), sqs=sqs_options(sqs_client), worker_loop=True)
    assert "worker_loop" in error.message


@pytest.mark.parametrize("missing", ["postgres", "sqs"])
def test_both_adapter_options_are_required(sqs_client: SQSClient, missing: str) -> None:
    options: dict[str, Any] = {"postgres": postgres_options(), "sqs": sqs_options(sqs_client)}
    del options[missing]
    error = config_error(**options)
    assert error.meta == {"field": missing}


@pytest.mark.parametrize("field", ["postgres", "sqs"])
def test_adapter_options_must_be_mappings(sqs_client: SQSClient, field: str) -> None:
    options: dict[str, Any] = {"postgres": postgres_options(), "sqs": sqs_options(sqs_client)}
    options[field] = "postgresql://app@127.0.0.1/app"
    error = config_error(**options)
    assert f"{field} must be a mapping" in error.message


def test_unknown_postgres_option_is_rejected(sqs_client: SQSClient) -> None:
    error = config_error(postgres=postgres_options(poolsize=3), sqs=sqs_options(sqs_client))
    assert "poolsize" in error.message
    assert error.meta is not None and error.meta["unknown"] == ["poolsize"]


def test_unknown_sqs_option_is_rejected(sqs_client: SQSClient) -> None:
    error = config_error(postgres=postgres_options(), sqs=sqs_options(sqs_client, delay_seconds=5))
    assert "delay_seconds" in error.message


def test_missing_required_adapter_options(sqs_client: SQSClient) -> None:
    error = config_error(postgres={"schema": "runlane"}, sqs=sqs_options(sqs_client))
    assert error.meta is not None and error.meta["missing"] == ["connection_string"]
    error = config_error(postgres=postgres_options(), sqs={"client": sqs_client})
    assert error.meta is not None and error.meta["missing"] == ["queues"]


def test_adapter_validation_still_applies(sqs_client: SQSClient) -> None:
    error = config_error(postgres=postgres_options(), sqs=sqs_options(sqs_client, batch_size=11))
    assert "batch_size" in error.message
    error = config_error(
        postgres=postgres_options(dsn="mysql://app@127.0.0.1/app"), sqs=sqs_options(sqs_client)
    )
    assert "postgresql://" in error.message


def test_transport_is_built_before_storage(sqs_client: SQSClient) -> None:
    """Spec order: (2) the SQS transport, then (3) Postgres storage; the first bad adapter reports."""
    error = config_error(
        postgres=postgres_options(dsn="mysql://app@127.0.0.1/app"), sqs=sqs_options(sqs_client, batch_size=0)
    )
    assert "batch_size" in error.message


async def test_lifecycle_starts_and_closes_real_storage(
    sqs_client: SQSClient, pg_cluster: PostgresCluster, lane_schema: str
) -> None:
    lane = create_postgres_sqs_lane(
        postgres=postgres_options(pg_cluster.dsn, schema=lane_schema), sqs=sqs_options(sqs_client)
    )
    await lane.start()
    try:
        assert lane.started
        assert isinstance(lane.storage, PostgresStorage)
        assert lane.storage.engine is not None
    finally:
        await lane.close()
    assert not lane.started


async def test_start_fails_on_an_unmigrated_schema(
    sqs_client: SQSClient, pg_cluster: PostgresCluster
) -> None:
    with scratch_schema(pg_cluster.libpq_dsn) as schema:
        lane = create_postgres_sqs_lane(
            postgres=postgres_options(pg_cluster.dsn, schema=schema), sqs=sqs_options(sqs_client)
        )
        with pytest.raises(RunlaneError) as info:
            await lane.start()
        assert info.value.code is ErrorCode.CONFIGURATION_INVALID
        assert not lane.started
