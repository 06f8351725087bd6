"""The Lambda entrypoint with hand-built SQS events, executing runs stored in real Postgres."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from runlane import DeliveryMessage, Environment
from runlane.entrypoints import lambda_handler
from runlane.infrastructure.sqs import HmacSha256Key, WakeupSigner, create_sqs_wakeup_body
from tests.support.console_script import run_cli

SECRET = "an-hmac-secret-of-at-least-32-bytes!!"


@pytest.fixture
def lambda_env(pg_env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """The Lambda reads the same RUNLANE_* settings as the CLI; its runtime is reset afterwards."""
    for key in list(os_environ_runlane()):
        monkeypatch.delenv(key)
    for key, value in pg_env.items():
        if key.startswith("RUNLANE_"):
            monkeypatch.setenv(key, value)
    logger = logging.getLogger("runlane")
    saved = (list(logger.handlers), logger.level, logger.propagate)
    lambda_handler.reset()
    try:
        yield pg_env
    finally:
        lambda_handler.reset()
        # The handler configured the runlane logger; give other tests theirs back.
        logger.handlers[:] = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]


def os_environ_runlane() -> list[str]:
    import os

    return [key for key in os.environ if key.startswith("RUNLANE_")]


def _record(message_id: str, body: object, attributes: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"handle-{message_id}",
        "body": body,
        "attributes": {"ApproximateReceiveCount": "1"},
        "messageAttributes": {
            name: {"stringValue": value, "dataType": "String"} for name, value in (attributes or {}).items()
        },
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:us-east-1:000000000000:runlane-default",
    }


def _wakeup(env: dict[str, str], run: dict[str, Any]) -> str:
    return create_sqs_wakeup_body(
        DeliveryMessage(
            environment=Environment(env["RUNLANE_ENVIRONMENT"]),
            run_id=run["id"],
            queue=run["queue"],
            requested_at=datetime.now(UTC),
        )
    )


def _trigger(env: dict[str, str], task: str, payload: object) -> dict[str, Any]:
    result = run_cli("trigger", task, "--payload", json.dumps(payload), "--json", env=env).expect(0)
    run: dict[str, Any] = result.json()["run"]
    return run


def _status(env: dict[str, str], run_id: str) -> str:
    status: str = run_cli("runs", "show", run_id, "--json", env=env).expect(0).json()["run"]["status"]
    return status


def test_lambda_executes_wakeups_and_reports_only_failed_records(
    lambda_env: dict[str, str], tmp_path: Path
) -> None:
    first = _trigger(lambda_env, "test.echo", {"marker_dir": str(tmp_path), "n": 1})
    second = _trigger(lambda_env, "test.email", {"marker_dir": str(tmp_path), "to": "ada@example.com"})
    event = {
        "Records": [
            _record("m-1", _wakeup(lambda_env, first)),
            _record("m-2", "this is not a wakeup"),
            _record("m-3", _wakeup(lambda_env, second)),
        ]
    }
    response = lambda_handler.handler(event, None)
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-2"}]}
    assert (tmp_path / f"{first['id']}.done").exists()
    assert (tmp_path / f"{second['id']}.done").exists()
    assert _status(lambda_env, first["id"]) == "succeeded"
    assert _status(lambda_env, second["id"]) == "succeeded"

    # A warm invocation reuses the runtime; a stale wakeup (run already finished) is acknowledged.
    cached = lambda_handler._cached
    again = lambda_handler.handler({"Records": [_record("m-4", _wakeup(lambda_env, first))]}, None)
    assert again == {"batchItemFailures": []}
    assert lambda_handler._cached is cached


def test_lambda_verifies_signed_wakeups(
    lambda_env: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(
        "RUNLANE_SQS_SIGNING_KEY", json.dumps({"algorithm": "hmac-sha256", "key_id": "k1", "secret": SECRET})
    )
    run = _trigger(lambda_env, "test.echo", {"marker_dir": str(tmp_path)})
    body = _wakeup(lambda_env, run)
    signer = WakeupSigner(key=HmacSha256Key(key_id="k1", secret=SECRET.encode()))
    response = lambda_handler.handler(
        {"Records": [_record("unsigned", body), _record("signed", body, signer.sign(body))]}, None
    )
    assert response == {"batchItemFailures": [{"itemIdentifier": "unsigned"}]}
    assert _status(lambda_env, run["id"]) == "succeeded"


def test_malformed_event_is_refused_as_a_whole(lambda_env: dict[str, str]) -> None:
    from runlane import ErrorCode, RunlaneError

    with pytest.raises(RunlaneError) as caught:
        lambda_handler.handler({"Records": [{"body": "x"}]}, None)
    assert caught.value.code is ErrorCode.ADAPTER_CONTRACT_VIOLATION
