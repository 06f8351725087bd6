"""The Lambda entrypoint on in-memory storage: a hand-built SQS event, the container's runtime reused."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from runlane import DeliveryMessage, RunStatus
from runlane.entrypoints.container import build_container
from runlane.entrypoints.lambda_handler import build_lambda_runtime
from runlane.entrypoints.settings_loading import load_settings
from runlane.infrastructure.memory import create_local_lane
from runlane.infrastructure.sqs import create_sqs_wakeup_body


@pytest.fixture(autouse=True)
def _no_ambient_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    for key in [key for key in os.environ if key.startswith("RUNLANE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("RUNLANE_APP", "tests.support.apps.basic:app")


def test_each_record_is_one_execute_delivery_and_ticks_never_run() -> None:
    container = build_container(load_settings(env_file=None))
    container.lane.override(create_local_lane())
    lam = build_lambda_runtime(container)
    try:
        runtime = lam.runtime
        created = lam.runner.run(runtime.trigger("test.echo", {"n": 1}))
        message = DeliveryMessage(
            environment=runtime.environment,
            run_id=created.run.id,
            queue=created.run.queue,
            requested_at=datetime.now(UTC),
        )
        event = {
            "Records": [
                {"messageId": "a", "body": create_sqs_wakeup_body(message)},
                {"messageId": "b", "body": 42},
            ]
        }
        assert lam.invoke(event, None) == {"batchItemFailures": [{"itemIdentifier": "b"}]}
        record = lam.runner.run(runtime.runs.get(created.run.id))
        assert record is not None
        assert record.status is RunStatus.SUCCEEDED
        # The same wakeup again is stale: acknowledged, not re-executed.
        assert lam.invoke({"Records": [{"messageId": "c", "body": event["Records"][0]["body"]}]}, None) == {
            "batchItemFailures": []
        }
        again = lam.runner.run(runtime.runs.get(created.run.id))
        assert again is not None
        assert again.attempts == 1
    finally:
        lam.close()


def test_the_lambda_never_ticks(monkeypatch: pytest.MonkeyPatch) -> None:
    """A scheduled app: a tick would materialise a run; Lambda invocations must not."""
    monkeypatch.setenv("RUNLANE_APP", "tests.support.apps.basic:scheduled_app")
    container = build_container(load_settings(env_file=None))
    container.lane.override(create_local_lane())
    lam = build_lambda_runtime(container)
    try:
        assert lam.invoke({"Records": []}, None) == {"batchItemFailures": []}
        page = lam.runner.run(lam.runtime.runs.list())
        assert page.data == ()
        ticked = lam.runner.run(lam.runtime.tick())  # the same runtime would materialise it
        assert ticked.materialized_schedules == 1
    finally:
        lam.close()


def test_the_scheduled_tick_lambda_runs_one_bounded_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    from runlane.entrypoints.lambda_tick import build_tick_runtime

    monkeypatch.setenv("RUNLANE_APP", "tests.support.apps.basic:scheduled_app")
    container = build_container(load_settings(env_file=None))
    container.lane.override(create_local_lane())
    ticker = build_tick_runtime(container)
    try:
        assert ticker.tick()["materialized_schedules"] == 1
        assert ticker.tick()["materialized_schedules"] in (0, 1)  # a new second may have begun
    finally:
        ticker.close()
