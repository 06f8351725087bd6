"""The container (and the plain bootstrap) wire the lane the settings select, the app and the runtime."""

from __future__ import annotations

import json
import os

import pytest

from runlane import ErrorCode, RunlaneApp, RunlaneError, RunStatus, queue, task
from runlane.entrypoints.bootstrap import bootstrap
from runlane.entrypoints.container import build_container
from runlane.entrypoints.lane_factories import sqs_bindings, wakeup_signer, wakeup_verifier
from runlane.entrypoints.settings import RunlaneSettings
from runlane.entrypoints.settings_loading import load_settings
from runlane.infrastructure.memory import create_local_lane
from tests.support.apps import basic

BASIC = "tests.support.apps.basic:app"


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in os.environ if key.startswith("RUNLANE_")]:
        monkeypatch.delenv(key)


def settings(**environ: str) -> RunlaneSettings:
    with pytest.MonkeyPatch.context() as patch:
        for key, value in environ.items():
            patch.setenv(key, value)
        return load_settings(env_file=None)


async def test_local_lane_runtime_from_settings() -> None:
    container = build_container(settings(RUNLANE_APP=BASIC, RUNLANE_ENVIRONMENT="unit"))
    try:
        runtime = container.runtime()
        assert runtime is container.runtime()  # one runtime per container
        assert runtime.lane.name == "local"
        assert runtime.environment.name == "unit"
        assert container.config.lane() == "local"
        assert container.app() is basic.app
        async with runtime:
            result = await runtime.trigger("test.echo", {"n": 1})
            executed = await runtime.execute_next()
        assert executed is not None
        assert executed.id == result.run.id
        assert executed.status is RunStatus.SUCCEEDED
    finally:
        container.shutdown_resources()


async def test_tests_override_the_lane() -> None:
    container = build_container(settings(RUNLANE_APP=BASIC, RUNLANE_LANE="postgres"))
    lane = create_local_lane(name="override")
    with container.lane.override(lane):
        runtime = container.runtime()
        assert runtime.lane is lane
    container.shutdown_resources()


def test_postgres_lane_needs_a_database_url() -> None:
    container = build_container(settings(RUNLANE_APP=BASIC, RUNLANE_LANE="postgres"))
    with pytest.raises(RunlaneError) as caught:
        container.runtime()
    assert caught.value.code is ErrorCode.CONFIGURATION_INVALID
    assert caught.value.message == "RUNLANE_DATABASE_URL: required when RUNLANE_LANE is postgres"


def test_postgres_lane_is_postgres_storage_with_notify_wakeups_without_connecting() -> None:
    container = build_container(
        settings(
            RUNLANE_APP=BASIC,
            RUNLANE_LANE="postgres",
            RUNLANE_DATABASE_URL="postgresql://u@127.0.0.1:1/db?schema=jobs",
        )
    )
    runtime = container.runtime()
    assert runtime.lane.name == "postgres"
    assert type(runtime.lane.storage).__name__ == "PostgresStorage"
    assert type(runtime.lane.transport).__name__ == "PostgresNotifyTransport"
    assert runtime.lane.capabilities.storage.durable_state is True
    assert runtime.lane.capabilities.production_durable is True
    container.shutdown_resources()


def test_a_bad_schema_names_its_variable() -> None:
    container = build_container(
        settings(
            RUNLANE_APP=BASIC,
            RUNLANE_LANE="postgres",
            RUNLANE_DATABASE_URL="postgresql://u@127.0.0.1:1/db",
            RUNLANE_DATABASE_SCHEMA="pg_reserved",
        )
    )
    with pytest.raises(RunlaneError) as caught:
        container.runtime()
    assert caught.value.message.startswith("RUNLANE_DATABASE_SCHEMA: ")


def test_postgres_sqs_lane_binds_every_app_queue_and_closes_the_client() -> None:
    queues = {"default": "https://sqs.us-east-1.amazonaws.com/123456789012/d", "emails": "emails"}
    container = build_container(
        settings(
            RUNLANE_APP=BASIC,
            RUNLANE_LANE="postgres-sqs",
            RUNLANE_DATABASE_URL="postgresql://u@127.0.0.1:1/db",
            RUNLANE_SQS_QUEUES=json.dumps(queues),
            RUNLANE_SQS_REGION="us-east-1",
            RUNLANE_SQS_ENDPOINT_URL="http://127.0.0.1:1",
        )
    )
    runtime = container.runtime()
    assert runtime.lane.name == "postgres-sqs"
    assert runtime.lane.capabilities.production_durable is True
    assert runtime.lane.capabilities.transport.durable_delivery is True
    client = container.sqs_client()
    closed: list[bool] = []
    original_close = client.close

    def close() -> None:
        closed.append(True)
        original_close()

    client.close = close
    container.shutdown_resources()
    assert closed == [True]


def test_sqs_queue_map_must_match_the_app() -> None:
    app = RunlaneApp(queues=[queue("default", default=True), queue("emails")], tasks=[task("t", run=print)])
    with pytest.raises(RunlaneError, match="RUNLANE_SQS_QUEUES: required"):
        sqs_bindings(settings(), app)
    with pytest.raises(RunlaneError, match="RUNLANE_SQS_QUEUES: no SQS queue for app queue"):
        sqs_bindings(settings(RUNLANE_SQS_QUEUES='{"default": "d"}'), app)
    with pytest.raises(RunlaneError, match="RUNLANE_SQS_QUEUES: other not registered"):
        sqs_bindings(settings(RUNLANE_SQS_QUEUES='{"default": "d", "emails": "e", "other": "o"}'), app)
    fifo_without_suffix = '{"default": "d", "emails": {"name": "e", "fifo": true}}'
    with pytest.raises(RunlaneError, match=r"RUNLANE_SQS_QUEUES: .*fifo"):
        sqs_bindings(settings(RUNLANE_SQS_QUEUES=fifo_without_suffix), app)
    bindings = sqs_bindings(settings(RUNLANE_SQS_QUEUES='{"default": "d", "emails": "e.fifo"}'), app)
    assert {binding.name: binding.is_fifo for binding in bindings} == {"default": False, "emails": True}


def test_signing_keys_build_a_signer_and_a_verifier() -> None:
    key = {"algorithm": "hmac-sha256", "key_id": "k1", "secret": "s" * 32}
    configured = settings(RUNLANE_SQS_SIGNING_KEY=json.dumps(key))
    signer = wakeup_signer(configured)
    verifier = wakeup_verifier(configured)
    assert signer is not None
    assert verifier is not None
    verifier.verify("body", signer.sign("body"))
    assert wakeup_signer(settings()) is None
    assert wakeup_verifier(settings()) is None
    short = settings(RUNLANE_SQS_SIGNING_KEY=json.dumps({**key, "secret": "short"}))
    with pytest.raises(RunlaneError) as caught:
        wakeup_signer(short)
    assert caught.value.message.startswith("RUNLANE_SQS_SIGNING_KEY: Wakeup HMAC secret must be at least 32")


async def test_bootstrap_builds_the_same_runtime_without_the_container() -> None:
    booted = bootstrap(settings(RUNLANE_APP=BASIC, RUNLANE_ENVIRONMENT="plain"))
    try:
        assert booted.app is basic.app
        assert booted.lane.name == "local"
        assert booted.runtime.environment.name == "plain"
        result = await booted.runtime.trigger("test.echo", None)
        assert result.run.status is RunStatus.QUEUED
    finally:
        await booted.aclose()
    custom = create_local_lane(name="given")
    again = bootstrap(settings(), app=basic.app, lane=custom)
    assert again.runtime.lane is custom
    await again.aclose()
