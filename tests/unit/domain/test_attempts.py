"""Attempt summaries: one per lease claim, closed by the attempt's outcome (GAPS #8)."""

from datetime import timedelta

from runlane.domain.attempts import RunAttemptSummary, summarize_attempts
from runlane.domain.vocabulary import ErrorCode, RunAttemptStatus
from tests.unit.domain.builders import (
    LEASE_MS,
    at,
    cancellation_requested,
    cancelled,
    created,
    delivery_requested,
    failed,
    failure,
    lease_claimed,
    lease_expired,
    lease_expiry_failure,
    released,
    retry_scheduled,
    succeeded,
)

A = RunAttemptStatus


def test_no_claims_no_attempts() -> None:
    assert (
        summarize_attempts([created(), delivery_requested(occurred_at=at(1)), cancelled(occurred_at=at(2))])
        == ()
    )


def test_every_outcome_closes_its_attempt() -> None:
    retry_failure = failure(code=ErrorCode.TRANSPORT_UNAVAILABLE)
    final_failure = failure(retryable=False)
    expiry_at = at(41) + timedelta(milliseconds=LEASE_MS)
    attempts = summarize_attempts(
        [
            created(occurred_at=at(0)),
            lease_claimed(occurred_at=at(1), worker_id="worker_a"),
            retry_scheduled(occurred_at=at(2), run_at=at(10), run_failure=retry_failure),
            delivery_requested(occurred_at=at(10)),
            lease_claimed(occurred_at=at(11), worker_id="worker_b"),
            released(occurred_at=at(12), run_at=at(40)),
            lease_claimed(occurred_at=at(41), worker_id="worker_c"),
            lease_expired(occurred_at=expiry_at, run_at=expiry_at + timedelta(seconds=30)),
            lease_claimed(occurred_at=at(200), worker_id="worker_d"),
            failed(occurred_at=at(201), run_failure=final_failure),
        ]
    )
    assert attempts == (
        RunAttemptSummary(
            attempt=1,
            status=A.RETRY_SCHEDULED,
            started_at=at(1),
            finished_at=at(2),
            worker_id="worker_a",
            failure=retry_failure,
        ),
        RunAttemptSummary(
            attempt=2, status=A.RELEASED, started_at=at(11), finished_at=at(12), worker_id="worker_b"
        ),
        RunAttemptSummary(
            attempt=3,
            status=A.LEASE_EXPIRED,
            started_at=at(41),
            finished_at=expiry_at,
            worker_id="worker_c",
            failure=lease_expiry_failure(),
        ),
        RunAttemptSummary(
            attempt=4,
            status=A.FAILED,
            started_at=at(200),
            finished_at=at(201),
            worker_id="worker_d",
            failure=final_failure,
        ),
    )


def test_a_running_attempt_stays_open() -> None:
    (attempt,) = summarize_attempts([created(), lease_claimed(occurred_at=at(1))])
    assert attempt.status is A.RUNNING
    assert attempt.finished_at is None
    assert attempt.failure is None


def test_a_cancellation_request_does_not_end_the_attempt_but_cancelling_does() -> None:
    events = [created(), lease_claimed(occurred_at=at(1)), cancellation_requested(occurred_at=at(2))]
    (open_attempt,) = summarize_attempts(events)
    assert open_attempt.status is A.RUNNING
    (closed,) = summarize_attempts([*events, cancelled(occurred_at=at(3))])
    assert closed.status is A.CANCELLED
    assert closed.finished_at == at(3)


def test_succeeded_attempt() -> None:
    (attempt,) = summarize_attempts(
        [created(), lease_claimed(occurred_at=at(1)), succeeded(occurred_at=at(9))]
    )
    assert attempt.status is A.SUCCEEDED
    assert attempt.finished_at == at(9)


def test_attempt_wire_shape() -> None:
    attempt = RunAttemptSummary(
        attempt=1,
        status=A.RETRY_SCHEDULED,
        started_at=at(1),
        finished_at=at(2),
        worker_id="worker_a",
        failure=failure(),
    )
    assert attempt.to_wire() == {
        "attempt": 1,
        "status": "retry_scheduled",
        "startedAt": "2025-01-01T12:00:01.000Z",
        "finishedAt": "2025-01-01T12:00:02.000Z",
        "workerId": "worker_a",
        "failure": {"code": "task_failed", "message": "Task failed", "retryable": True},
    }
    running = RunAttemptSummary(attempt=2, status=A.RUNNING, started_at=at(3))
    assert running.to_wire() == {"attempt": 2, "status": "running", "startedAt": "2025-01-01T12:00:03.000Z"}
