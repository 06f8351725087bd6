"""RunRecord / RunSummary: camelCase wire shape, strict enum parsing, derived availability."""

import json
from dataclasses import replace
from typing import Any

import pytest

from runlane.domain.run_record import RunRecord, RunSummary
from runlane.domain.vocabulary import ErrorCode, RunStatus
from tests.unit.domain.builders import at, raises_code, run_in


def test_record_wire_shape() -> None:
    run = run_in(RunStatus.RETRYING)
    wire = run.to_wire()
    assert wire == {
        "id": "run_1",
        "environment": {"name": "default"},
        "taskId": "emails.welcome",
        "queue": "default",
        "status": "retrying",
        "eventSequence": 3,
        "createdAt": "2025-01-01T12:00:00.000Z",
        "updatedAt": "2025-01-01T12:00:02.000Z",
        "runAt": "2025-01-01T12:00:32.000Z",
        "source": {"type": "trigger"},
        "attempts": 1,
        "failures": 1,
        "retries": 1,
        "releases": 0,
        "failure": {"code": "task_failed", "message": "Task failed", "retryable": True},
        "payload": {"n": 1},
    }
    assert RunRecord.from_wire(json.loads(json.dumps(wire))) == run


def test_running_record_carries_its_lease() -> None:
    wire = run_in(RunStatus.RUNNING).to_wire()
    assert wire["lease"] == {
        "workerId": "worker_1",
        "claimedAt": "2025-01-01T12:00:01.000Z",
        "expiresAt": "2025-01-01T12:00:31.000Z",
        "heartbeatAt": "2025-01-01T12:00:01.000Z",
    }


@pytest.mark.parametrize("status", list(RunStatus))
def test_summary_is_the_record_without_payload(status: RunStatus) -> None:
    run = run_in(status)
    summary = run.summary()
    assert isinstance(summary, RunSummary)
    assert not isinstance(summary, RunRecord)
    assert summary.to_wire() == {key: value for key, value in run.to_wire().items() if key != "payload"}
    assert RunSummary.from_wire(summary.to_wire()) == summary


def test_record_payload_is_always_on_the_wire() -> None:
    run = run_in(RunStatus.QUEUED)
    assert replace(run, payload=None).to_wire()["payload"] is None


@pytest.mark.parametrize(
    ("mutate", "code"),
    [
        (lambda w: w.update(status="paused"), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.pop("status"), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.pop("id"), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.update(createdAt="yesterday"), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.update(environment={"name": ""}), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.update(source={"type": "cron_job"}), ErrorCode.VALIDATION_FAILED),
        (lambda w: w.update(failure={"code": "kaput", "message": "x"}), ErrorCode.VALIDATION_FAILED),
    ],
)
def test_from_wire_rejects_malformed_records(mutate: Any, code: ErrorCode) -> None:
    wire = run_in(RunStatus.RETRYING).to_wire()
    mutate(wire)
    raises_code(code, RunRecord.from_wire, wire)


@pytest.mark.parametrize("status", list(RunStatus))
def test_derived_flags(status: RunStatus) -> None:
    run = run_in(status)
    terminal = status in (RunStatus.SUCCEEDED, RunStatus.FAILED, RunStatus.CANCELLED)
    assert run.is_terminal is terminal
    assert run.is_active is not terminal
    runnable = status in (RunStatus.QUEUED, RunStatus.SCHEDULED, RunStatus.RELEASED, RunStatus.RETRYING)
    assert run.is_runnable_status is runnable
    assert run.holds_lease is (status in (RunStatus.RUNNING, RunStatus.CANCELLATION_REQUESTED))
    assert run.is_due(at(10**6)) is runnable
