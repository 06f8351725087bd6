"""The postgres-sqs lane end to end: ``trigger`` publishes to SQS (moto), ``sqs-consume`` executes."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from tests.support.console_script import CliProcess, assert_one_clean_error, run_cli, wait_until

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

SECRET = "an-hmac-secret-of-at-least-32-bytes!!"


@pytest.fixture
def sqs_env(pg_env: dict[str, str], sqs_client: SQSClient, moto_sqs_endpoint: str) -> dict[str, str]:
    default = sqs_client.create_queue(QueueName="runlane-default")["QueueUrl"]
    sqs_client.create_queue(QueueName="runlane-emails")
    return {
        **pg_env,
        "RUNLANE_LANE": "postgres-sqs",
        # One queue by URL, one by name (resolved with GetQueueUrl).
        "RUNLANE_SQS_QUEUES": json.dumps({"default": default, "emails": {"name": "runlane-emails"}}),
        "RUNLANE_SQS_ENDPOINT_URL": moto_sqs_endpoint,
        "RUNLANE_SQS_REGION": "us-east-1",
        "RUNLANE_SQS_WAIT_TIME_SECONDS": "1",
        "RUNLANE_SQS_SIGNING_KEY": json.dumps({"algorithm": "hmac-sha256", "key_id": "k1", "secret": SECRET}),
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "NO_PROXY": "127.0.0.1,localhost",
        "no_proxy": "127.0.0.1,localhost",
    }


def _status(env: dict[str, str], run_id: str) -> str:
    status: str = run_cli("runs", "show", run_id, "--json", env=env).expect(0).json()["run"]["status"]
    return status


def test_trigger_publishes_signed_wakeups_that_sqs_consume_executes(
    sqs_env: dict[str, str], sqs_client: SQSClient, tmp_path: Path
) -> None:
    triggered: dict[str, Any] = (
        run_cli(
            "trigger",
            "test.echo",
            "--payload",
            json.dumps({"marker_dir": str(tmp_path)}),
            "--json",
            env=sqs_env,
        )
        .expect(0)
        .json()
    )
    assert triggered["published"] == 1
    email = (
        run_cli(
            "trigger",
            "test.email",
            "--payload",
            json.dumps({"marker_dir": str(tmp_path), "to": "a@b.c"}),
            "--json",
            env=sqs_env,
        )
        .expect(0)
        .json()
    )
    run_ids = [triggered["run"]["id"], email["run"]["id"]]

    consumer = CliProcess("sqs-consume", env=sqs_env)
    try:
        wait_until(
            lambda: all((tmp_path / f"{run_id}.done").exists() for run_id in run_ids),
            timeout=60,
            what="both wakeups to be executed",
        )
        consumer.signal(signal.SIGTERM)
        result = consumer.wait(timeout=30).expect(0)
    finally:
        consumer.kill()
    assert "sqs consumers stopped (default, emails)" in result.stdout
    assert "Traceback" not in result.stderr
    assert [_status(sqs_env, run_id) for run_id in run_ids] == ["succeeded", "succeeded"]
    # Successfully delivered messages were deleted from the queue.
    default_url = json.loads(sqs_env["RUNLANE_SQS_QUEUES"])["default"]
    attributes = sqs_client.get_queue_attributes(
        QueueUrl=default_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"
    assert attributes["ApproximateNumberOfMessagesNotVisible"] == "0"


def test_postgres_sqs_lane_needs_every_app_queue_mapped(sqs_env: dict[str, str]) -> None:
    env = {**sqs_env, "RUNLANE_SQS_QUEUES": json.dumps({"default": "runlane-default"})}
    result = run_cli("trigger", "test.echo", env=env)
    assert_one_clean_error(result, contains="RUNLANE_SQS_QUEUES: no SQS queue for app queue(s) emails")
