"""The reducer, one test per row of shared/spec/model-and-reducer.md §6 plus its rules."""

from dataclasses import replace
from datetime import timedelta

import pytest

from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.run_reducer import apply_run_event, project_run_events
from runlane.domain.values import Environment, RunSource
from runlane.domain.vocabulary import ErrorCode, RunEventType, RunSourceType, RunStatus
from tests.unit.domain.builders import (
    ENV,
    LEASE_MS,
    OTHER_ENV,
    RUN_ID,
    T0,
    append,
    at,
    cancellation_requested,
    cancelled,
    created,
    delivery_requested,
    failed,
    failure,
    fold,
    history_to,
    lease_claimed,
    lease_expired,
    raises_code,
    released,
    retry_scheduled,
    run_in,
    succeeded,
)

E = RunEventType
S = RunStatus
INVARIANT = ErrorCode.INVARIANT_VIOLATION
RUNNABLE = (S.QUEUED, S.SCHEDULED, S.RELEASED, S.RETRYING)
TERMINAL = (S.SUCCEEDED, S.FAILED, S.CANCELLED)
# Every canonical history ends within a minute of T0; leases last 30s, so all have expired by LATER.
LATER = at(3600)


def event_at_later(kind: RunEventType) -> RunEvent:
    """An event of ``kind`` at ``LATER``; delivery is due at once, lease expiry carries a retry time."""
    return {
        E.CREATED: lambda: created(occurred_at=LATER),
        E.DELIVERY_REQUESTED: lambda: delivery_requested(occurred_at=LATER),
        E.LEASE_CLAIMED: lambda: lease_claimed(occurred_at=LATER),
        E.SUCCEEDED: lambda: succeeded(occurred_at=LATER),
        E.RETRY_SCHEDULED: lambda: retry_scheduled(occurred_at=LATER, run_at=LATER + timedelta(seconds=30)),
        E.FAILED: lambda: failed(occurred_at=LATER),
        E.RELEASED: lambda: released(occurred_at=LATER, run_at=LATER + timedelta(seconds=60)),
        E.CANCELLATION_REQUESTED: lambda: cancellation_requested(occurred_at=LATER),
        E.CANCELLED: lambda: cancelled(occurred_at=LATER),
        E.LEASE_EXPIRED: lambda: lease_expired(occurred_at=LATER, run_at=LATER + timedelta(seconds=30)),
    }[kind]()


# model-and-reducer.md §6, written out: (status, event) -> resulting status; anything missing is rejected.
TRANSITIONS: dict[tuple[RunStatus, RunEventType], RunStatus] = {
    **{(status, E.DELIVERY_REQUESTED): S.QUEUED for status in RUNNABLE},  # due at once -> queued
    **{(status, E.LEASE_CLAIMED): S.RUNNING for status in RUNNABLE},
    **{(status, E.CANCELLED): S.CANCELLED for status in RUNNABLE},
    (S.RUNNING, E.SUCCEEDED): S.SUCCEEDED,
    (S.RUNNING, E.RETRY_SCHEDULED): S.RETRYING,
    (S.RUNNING, E.FAILED): S.FAILED,
    (S.RUNNING, E.RELEASED): S.RELEASED,
    (S.RUNNING, E.CANCELLATION_REQUESTED): S.CANCELLATION_REQUESTED,
    (S.RUNNING, E.LEASE_EXPIRED): S.RETRYING,
    (S.CANCELLATION_REQUESTED, E.FAILED): S.FAILED,
    (S.CANCELLATION_REQUESTED, E.CANCELLED): S.CANCELLED,
}
ALL_PAIRS = [(status, kind) for status in RunStatus for kind in RunEventType]


@pytest.mark.parametrize(("status", "kind"), [pair for pair in ALL_PAIRS if pair in TRANSITIONS])
def test_allowed_transition(status: RunStatus, kind: RunEventType) -> None:
    run = run_in(status)
    after = append(run, event_at_later(kind))
    assert after.status is TRANSITIONS[(status, kind)]
    assert after.event_sequence == run.event_sequence + 1
    assert after.updated_at == LATER
    assert after.created_at == run.created_at
    assert (after.id, after.environment, after.task_id, after.queue, after.payload) == (
        run.id,
        run.environment,
        run.task_id,
        run.queue,
        run.payload,
    )


@pytest.mark.parametrize(("status", "kind"), [pair for pair in ALL_PAIRS if pair not in TRANSITIONS])
def test_rejected_transition(status: RunStatus, kind: RunEventType) -> None:
    run = run_in(status)
    before = replace(run)
    raises_code(INVARIANT, append, run, event_at_later(kind))
    assert run == before


def test_the_table_covers_every_pair() -> None:
    assert len(ALL_PAIRS) == len(RunStatus) * len(RunEventType) == 90
    assert len(TRANSITIONS) == 4 * 3 + 6 + 2


# --- run.created -------------------------------------------------------------------------------------


def test_created_copies_identity_and_zeroes_counters() -> None:
    event = created(
        occurred_at=T0,
        payload={"userId": "u1"},
        source=RunSource(RunSourceType.RERUN, source_run_id="run_0"),
        idempotency_key="emails.welcome.u1",
        idempotency_key_ttl="active",
        singleton_key="single",
        concurrency_key="tenant_1",
        run_at=at(60),
        trace_carrier={"traceparent": "t"},
        meta={"origin": "api"},
    )
    run = fold(event)
    assert run == RunRecord(
        id=RUN_ID,
        environment=ENV,
        task_id="emails.welcome",
        queue="default",
        payload={"userId": "u1"},
        status=S.QUEUED,
        event_sequence=1,
        created_at=T0,
        updated_at=T0,
        run_at=at(60),
        source=RunSource(RunSourceType.RERUN, source_run_id="run_0"),
        attempts=0,
        failures=0,
        retries=0,
        releases=0,
        failure=None,
        lease=None,
        idempotency_key="emails.welcome.u1",
        idempotency_key_ttl="active",
        singleton_key="single",
        concurrency_key="tenant_1",
        trace_carrier={"traceparent": "t"},
        meta={"origin": "api"},
    )


def test_created_defaults_the_source_to_trigger() -> None:
    assert fold(created()).source == RunSource(RunSourceType.TRIGGER)


def test_a_run_must_start_with_created() -> None:
    for kind in RunEventType:
        if kind is not E.CREATED:
            raises_code(INVARIANT, fold, event_at_later(kind))


def test_a_new_run_starts_at_sequence_zero() -> None:
    raises_code(INVARIANT, project_run_events, [created()], 1)
    raises_code(INVARIANT, project_run_events, [created()], -1)


def test_created_cannot_be_appended_to_an_existing_run() -> None:
    raises_code(INVARIANT, fold, created(), created(occurred_at=at(1)))


def test_an_empty_batch_is_rejected() -> None:
    raises_code(INVARIANT, project_run_events, [], 0)
    run = run_in(S.QUEUED)
    raises_code(INVARIANT, project_run_events, [], run.event_sequence, run)


# --- delivery ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", RUNNABLE)
def test_delivery_for_a_future_time_schedules_the_run(status: RunStatus) -> None:
    run = append(
        run_in(status), delivery_requested(occurred_at=LATER, available_at=LATER + timedelta(milliseconds=1))
    )
    assert run.status is S.SCHEDULED
    assert run.run_at == LATER + timedelta(milliseconds=1)


@pytest.mark.parametrize("status", RUNNABLE)
@pytest.mark.parametrize("offset_ms", [0, -1, -60_000])
def test_delivery_that_is_already_due_queues_the_run(status: RunStatus, offset_ms: int) -> None:
    available_at = LATER + timedelta(milliseconds=offset_ms)
    run = append(run_in(status), delivery_requested(occurred_at=LATER, available_at=available_at))
    assert run.status is S.QUEUED
    assert run.run_at == available_at


def test_delivery_must_target_the_runs_queue() -> None:
    raises_code(INVARIANT, append, run_in(S.QUEUED), delivery_requested(occurred_at=LATER, queue="other"))


def test_delivery_keeps_counters() -> None:
    run = run_in(S.RETRYING)
    after = append(run, delivery_requested(occurred_at=LATER))
    assert (after.attempts, after.failures, after.retries, after.releases) == (1, 1, 1, 0)
    assert after.failure == run.failure


# --- lease claim -------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", RUNNABLE)
def test_lease_claim_counts_an_attempt_and_records_the_lease(status: RunStatus) -> None:
    run = run_in(status)
    event = lease_claimed(occurred_at=LATER, worker_id="worker_9")
    after = append(run, event)
    assert after.status is S.RUNNING
    assert after.attempts == run.attempts + 1
    assert after.lease == event.lease
    assert after.lease is not None
    assert after.lease.worker_id == "worker_9"
    assert (after.failures, after.retries, after.releases) == (run.failures, run.retries, run.releases)
    assert after.holds_lease


def test_a_second_claim_while_running_is_rejected() -> None:
    raises_code(INVARIANT, append, run_in(S.RUNNING), lease_claimed(occurred_at=at(2), worker_id="worker_2"))


# --- outcomes from running ---------------------------------------------------------------------------


def test_succeeded_clears_lease_and_run_at() -> None:
    run = append(run_in(S.RUNNING), succeeded(occurred_at=at(5)))
    assert run.status is S.SUCCEEDED
    assert run.lease is None
    assert run.run_at is None
    assert (run.attempts, run.failures, run.retries, run.releases) == (1, 0, 0, 0)
    assert run.is_terminal


def test_retry_scheduled_records_the_failure_and_next_time() -> None:
    run_failure = failure(code=ErrorCode.TRANSPORT_UNAVAILABLE)
    run = append(
        run_in(S.RUNNING), retry_scheduled(occurred_at=at(5), run_at=at(35), run_failure=run_failure)
    )
    assert run.status is S.RETRYING
    assert run.failure == run_failure
    assert (run.attempts, run.failures, run.retries, run.releases) == (1, 1, 1, 0)
    assert run.lease is None
    assert run.run_at == at(35)
    assert not run.is_due(at(34))
    assert run.is_due(at(35))


def test_failed_from_running_records_the_failure_without_a_retry() -> None:
    run_failure = failure(retryable=False, code=ErrorCode.VALIDATION_FAILED)
    run = append(run_in(S.RUNNING), failed(occurred_at=at(5), run_failure=run_failure))
    assert run.status is S.FAILED
    assert run.failure == run_failure
    assert (run.attempts, run.failures, run.retries, run.releases) == (1, 1, 0, 0)
    assert run.lease is None
    assert run.run_at is None


def test_failed_from_cancellation_requested() -> None:
    run = append(run_in(S.CANCELLATION_REQUESTED), failed(occurred_at=at(5)))
    assert run.status is S.FAILED
    assert (run.attempts, run.failures, run.retries) == (1, 1, 0)
    assert run.lease is None


def test_released_counts_a_release_but_no_failure() -> None:
    run = append(run_in(S.RUNNING), released(occurred_at=at(5), run_at=at(65), reason="waiting"))
    assert run.status is S.RELEASED
    assert (run.attempts, run.failures, run.retries, run.releases) == (1, 0, 0, 1)
    assert run.failure is None
    assert run.lease is None
    assert run.run_at == at(65)


def test_cancellation_requested_keeps_the_lease() -> None:
    running = run_in(S.RUNNING)
    run = append(running, cancellation_requested(occurred_at=at(5)))
    assert run.status is S.CANCELLATION_REQUESTED
    assert run.lease == running.lease
    assert run.holds_lease
    assert run.is_active
    assert not run.is_runnable_status
    assert run.attempts == 1


@pytest.mark.parametrize("status", RUNNABLE)
def test_cancelled_at_once_from_runnable_statuses(status: RunStatus) -> None:
    run = append(run_in(status), cancelled(occurred_at=LATER))
    assert run.status is S.CANCELLED
    assert run.lease is None
    assert run.run_at is None


def test_cancelled_after_a_cancellation_request_clears_the_lease() -> None:
    run = append(run_in(S.CANCELLATION_REQUESTED), cancelled(occurred_at=at(5)))
    assert run.status is S.CANCELLED
    assert run.lease is None
    assert run.attempts == 1
    assert run.failures == 0


def test_a_running_run_cannot_be_cancelled_without_a_request() -> None:
    raises_code(INVARIANT, append, run_in(S.RUNNING), cancelled(occurred_at=at(5)))


# --- lease expiry ------------------------------------------------------------------------------------


def test_lease_expired_with_a_retry_time_retries() -> None:
    running = run_in(S.RUNNING)
    assert running.lease is not None
    expires_at = running.lease.expires_at
    run = append(running, lease_expired(occurred_at=expires_at, run_at=expires_at + timedelta(seconds=30)))
    assert run.status is S.RETRYING
    assert run.run_at == expires_at + timedelta(seconds=30)
    assert run.failure is not None
    assert run.failure.code is ErrorCode.INTERNAL_ERROR
    assert run.failure.meta == {"reason": "lease_expired"}
    assert (run.attempts, run.failures, run.retries, run.releases) == (1, 1, 1, 0)
    assert run.lease is None


def test_lease_expired_without_a_retry_time_fails() -> None:
    running = run_in(S.RUNNING)
    run = append(running, lease_expired(occurred_at=at(1) + timedelta(milliseconds=LEASE_MS + 5)))
    assert run.status is S.FAILED
    assert run.run_at is None
    assert (run.attempts, run.failures, run.retries) == (1, 1, 0)
    assert run.lease is None


def test_lease_expired_before_the_lease_expires_is_rejected() -> None:
    running = run_in(S.RUNNING)
    assert running.lease is not None
    just_before = running.lease.expires_at - timedelta(milliseconds=1)
    error = raises_code(INVARIANT, append, running, lease_expired(occurred_at=just_before, run_at=LATER))
    assert "expired" in error.message
    raises_code(INVARIANT, append, running, lease_expired(occurred_at=just_before))


def test_lease_expired_on_a_cancellation_request_is_rejected() -> None:
    # An expired cancellation request is finalised with run.cancelled instead (GAPS #25).
    raises_code(INVARIANT, append, run_in(S.CANCELLATION_REQUESTED), lease_expired(occurred_at=LATER))
    assert append(run_in(S.CANCELLATION_REQUESTED), cancelled(occurred_at=LATER)).status is S.CANCELLED


# --- terminal runs -----------------------------------------------------------------------------------


@pytest.mark.parametrize("status", TERMINAL)
@pytest.mark.parametrize("kind", list(RunEventType))
def test_terminal_runs_accept_no_event(status: RunStatus, kind: RunEventType) -> None:
    run = run_in(status)
    error = raises_code(INVARIANT, append, run, event_at_later(kind))
    if kind is not E.CREATED:
        assert "terminal" in error.message


# --- identity and sequences --------------------------------------------------------------------------


@pytest.mark.parametrize("status", list(RunStatus))
def test_events_of_another_run_are_rejected(status: RunStatus) -> None:
    event = succeeded(occurred_at=LATER, run_id="run_2")
    raises_code(INVARIANT, append, run_in(status), event)


@pytest.mark.parametrize("status", list(RunStatus))
def test_events_of_another_environment_are_rejected(status: RunStatus) -> None:
    event = succeeded(occurred_at=LATER, environment=OTHER_ENV)
    raises_code(INVARIANT, append, run_in(status), event)


def test_environment_equality_is_by_name() -> None:
    run = run_in(S.RUNNING)
    assert append(run, succeeded(occurred_at=LATER, environment=Environment("default"))).status is S.SUCCEEDED


@pytest.mark.parametrize("delta", [-2, -1, 1, 5])
def test_expected_sequence_must_match_the_run(delta: int) -> None:
    run = run_in(S.RUNNING)
    error = raises_code(
        INVARIANT, project_run_events, [succeeded(occurred_at=LATER)], run.event_sequence + delta, run
    )
    assert str(run.event_sequence) in error.message


def running_then_succeeded_records() -> list[RunEventRecord]:
    events = (*history_to(S.RUNNING), succeeded(occurred_at=at(5)))
    return [RunEventRecord.of(event, id=f"evt_{n}", sequence=n) for n, event in enumerate(events, start=1)]


def test_gap_free_records_are_accepted() -> None:
    records = running_then_succeeded_records()
    assert project_run_events(records, 0).event_sequence == 3
    run = project_run_events(records[:2], 0)
    assert project_run_events([records[2]], 2, run).status is S.SUCCEEDED


@pytest.mark.parametrize("sequences", [[1, 3, 4], [1, 2, 2], [2, 3, 4], [1, 1, 2], [1, 2, 4], [3, 2, 1]])
def test_records_with_gaps_or_duplicates_are_rejected(sequences: list[int]) -> None:
    records = running_then_succeeded_records()
    relabelled = [replace(record, sequence=seq) for record, seq in zip(records, sequences, strict=True)]
    raises_code(INVARIANT, project_run_events, relabelled, 0)


@pytest.mark.parametrize("wrong", [1, 2, 4, 10])
def test_an_appended_record_must_take_the_next_sequence(wrong: int) -> None:
    records = running_then_succeeded_records()
    run = project_run_events(records[:2], 0)
    raises_code(INVARIANT, project_run_events, [replace(records[2], sequence=wrong)], 2, run)


def test_plain_events_take_the_next_sequences() -> None:
    run = run_in(S.QUEUED)
    after = project_run_events(
        [lease_claimed(occurred_at=at(1)), released(occurred_at=at(2), run_at=at(3))], run.event_sequence, run
    )
    assert after.event_sequence == run.event_sequence + 2


def test_apply_run_event_takes_the_given_sequence() -> None:
    run = run_in(S.QUEUED)
    assert apply_run_event(run, lease_claimed(occurred_at=at(1)), 7).event_sequence == 7
    assert apply_run_event(None, created(), 1).event_sequence == 1


def test_a_rejected_batch_changes_nothing() -> None:
    run = run_in(S.RUNNING)
    before = replace(run)
    raises_code(
        INVARIANT,
        project_run_events,
        [succeeded(occurred_at=at(5)), failed(occurred_at=at(6))],
        run.event_sequence,
        run,
    )
    assert run == before
    assert run.status is S.RUNNING


# --- times and run_at --------------------------------------------------------------------------------


def test_updated_at_follows_each_event_and_created_at_stays() -> None:
    run = fold(created(occurred_at=T0))
    for offset, event in (
        (10, lease_claimed(occurred_at=at(10))),
        (20, released(occurred_at=at(20), run_at=at(80))),
        (90, delivery_requested(occurred_at=at(90))),
    ):
        run = append(run, event)
        assert run.updated_at == at(offset)
        assert run.created_at == T0


def test_queued_availability_falls_back_to_updated_at() -> None:
    run = run_in(S.QUEUED)
    assert run.run_at is None
    assert run.available_at == run.updated_at
    assert run.is_due(run.updated_at)
    assert not run.is_due(run.updated_at - timedelta(milliseconds=1))
    delayed = fold(created(run_at=at(60)))
    assert delayed.available_at == at(60)
    assert not delayed.is_due(at(59))


def test_leased_and_terminal_runs_are_never_due() -> None:
    for status in (S.RUNNING, S.CANCELLATION_REQUESTED, *TERMINAL):
        assert not run_in(status).is_due(at(10**6))


def test_counters_over_a_long_history() -> None:
    run = fold(
        created(occurred_at=at(0)),
        lease_claimed(occurred_at=at(1)),
        retry_scheduled(occurred_at=at(2), run_at=at(10)),
        delivery_requested(occurred_at=at(10)),
        lease_claimed(occurred_at=at(11)),
        released(occurred_at=at(12), run_at=at(20)),
        lease_claimed(occurred_at=at(21)),
        released(occurred_at=at(22), run_at=at(30)),
        lease_claimed(occurred_at=at(31)),
        lease_expired(occurred_at=at(31 + LEASE_MS / 1000), run_at=at(100)),
        lease_claimed(occurred_at=at(101)),
        cancellation_requested(occurred_at=at(102)),
        failed(occurred_at=at(103)),
    )
    assert run.status is S.FAILED
    assert (run.attempts, run.failures, run.retries, run.releases) == (5, 3, 2, 2)
    assert run.event_sequence == 13
