"""Reducer properties over random valid lifecycles (see strategies.lifecycles)."""

import json
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runlane.domain.attempts import summarize_attempts
from runlane.domain.errors import RunlaneError
from runlane.domain.run_events import RunEvent, RunEventRecord
from runlane.domain.run_record import RunRecord, RunSummary
from runlane.domain.run_reducer import project_run_events
from runlane.domain.vocabulary import ErrorCode, RunAttemptStatus, RunEventType, RunStatus
from tests.unit.domain.builders import lease_expiry_failure
from tests.unit.domain.strategies import (
    ALLOWED_EVENTS,
    PROPERTY_SETTINGS,
    TERMINAL,
    Lifecycle,
    draw_event,
    lifecycles,
    steps_ms,
)

S = RunStatus
LEASED = (S.RUNNING, S.CANCELLATION_REQUESTED)
RUNNABLE = (S.QUEUED, S.SCHEDULED, S.RELEASED, S.RETRYING)


def records_of(events: tuple[RunEvent, ...]) -> list[RunEventRecord]:
    return [RunEventRecord.of(event, id=f"evt_{n}", sequence=n) for n, event in enumerate(events, start=1)]


def step_by_step(events: tuple[RunEvent, ...]) -> list[RunRecord]:
    """Fold one event per call, passing the running expected sequence; return every intermediate run."""
    runs: list[RunRecord] = []
    run: RunRecord | None = None
    for event in events:
        run = project_run_events([event], 0 if run is None else run.event_sequence, run)
        runs.append(run)
    return runs


def json_copy(data: object) -> object:
    return json.loads(json.dumps(data, allow_nan=False))


@PROPERTY_SETTINGS
@given(lifecycles(), st.data())
def test_folding_at_once_equals_folding_step_by_step_and_in_chunks(
    life: Lifecycle, data: st.DataObject
) -> None:
    at_once = project_run_events(life.events, 0)
    runs = step_by_step(life.events)
    assert runs[-1] == at_once
    # Any split into consecutive batches gives the same run.
    count = len(life.events)
    cuts = sorted(data.draw(st.sets(st.integers(min_value=1, max_value=max(1, count - 1)), max_size=4)))
    cuts = [cut for cut in cuts if cut < count]
    run: RunRecord | None = None
    for start, end in zip([0, *cuts], [*cuts, count], strict=True):
        run = project_run_events(life.events[start:end], start, run)
    assert run == at_once


@PROPERTY_SETTINGS
@given(lifecycles())
def test_reducer_agrees_with_the_spec_model_and_keeps_its_invariants(life: Lifecycle) -> None:
    runs = step_by_step(life.events)
    first = life.events[0]
    for index, (event, run, model_status) in enumerate(zip(life.events, runs, life.statuses, strict=True)):
        assert run.status is model_status
        assert run.event_sequence == index + 1
        assert run.updated_at == event.occurred_at
        assert run.created_at == first.occurred_at
        assert (run.id, run.environment, run.task_id, run.queue, run.payload) == (
            first.run_id,
            first.environment,
            first.task_id,
            first.queue,
            first.payload,
        )
        assert (run.idempotency_key, run.singleton_key, run.concurrency_key) == (
            first.idempotency_key,
            first.singleton_key,
            first.concurrency_key,
        )
        # Counters: never negative; every failure and release ends one attempt (a lease claim).
        assert min(run.attempts, run.failures, run.retries, run.releases) >= 0
        assert run.retries <= run.failures
        assert run.failures + run.releases <= run.attempts <= run.failures + run.releases + 1
        if run.status in RUNNABLE:
            assert run.attempts == run.failures + run.releases
        if run.status in LEASED:
            assert run.attempts == run.failures + run.releases + 1
        # Only a terminal failure is a failure without a retry.
        assert run.failures - run.retries == (1 if run.status is S.FAILED else 0)
        assert (run.lease is not None) == (run.status in LEASED)
        if run.status in TERMINAL:
            assert run.run_at is None
        if run.status in (S.SCHEDULED, S.RELEASED, S.RETRYING):
            assert run.run_at is not None
        if run.status is S.RETRYING:
            assert run.failure is not None
        if event.type is RunEventType.LEASE_CLAIMED:
            assert run.lease == event.lease


@PROPERTY_SETTINGS
@given(lifecycles(), st.data())
def test_event_sequence_counts_events_and_only_gap_free_records_are_accepted(
    life: Lifecycle, data: st.DataObject
) -> None:
    records = records_of(life.events)
    run = project_run_events(records, 0)
    assert run.event_sequence == len(life.events)
    # Mislabel one record: a duplicate, a gap, or any other wrong number.
    index = data.draw(st.integers(min_value=0, max_value=len(records) - 1), label="index")
    correct = index + 1
    wrong = data.draw(
        st.sampled_from([correct - 1, correct + 1, correct + 2]).filter(lambda n: n >= 1)
        | st.integers(min_value=1, max_value=10_000).filter(lambda n: n != correct),
        label="wrong",
    )
    assert wrong != correct
    broken = [*records[:index], replace(records[index], sequence=wrong), *records[index + 1 :]]
    with pytest.raises(RunlaneError) as excinfo:
        project_run_events(broken, 0)
    assert excinfo.value.code is ErrorCode.INVARIANT_VIOLATION


@PROPERTY_SETTINGS
@given(lifecycles(finish=True), st.data())
def test_terminal_runs_reject_every_further_event(life: Lifecycle, data: st.DataObject) -> None:
    assert life.status in TERMINAL
    run = project_run_events(life.events, 0)
    assert run.status is life.status
    now = life.end
    for _ in range(data.draw(st.integers(min_value=1, max_value=4), label="extra events")):
        now = now + timedelta(milliseconds=data.draw(steps_ms))
        kind = data.draw(st.sampled_from(RunEventType), label="kind")
        event = draw_event(
            data.draw,
            kind,
            run_id=life.run_id,
            environment=life.environment,
            queue=run.queue,
            now=now,
            lease_expires_at=None,
        )
        with pytest.raises(RunlaneError) as excinfo:
            project_run_events([event], run.event_sequence, run)
        assert excinfo.value.code is ErrorCode.INVARIANT_VIOLATION


@PROPERTY_SETTINGS
@given(lifecycles(), st.data())
def test_events_the_table_does_not_allow_are_rejected_in_any_state(
    life: Lifecycle, data: st.DataObject
) -> None:
    run = project_run_events(life.events, 0)
    forbidden = [kind for kind in RunEventType if kind not in ALLOWED_EVENTS[life.status]]
    kind = data.draw(st.sampled_from(forbidden), label="kind")
    event = draw_event(
        data.draw,
        kind,
        run_id=life.run_id,
        environment=life.environment,
        queue=run.queue,
        now=life.end,
        lease_expires_at=life.lease_expires_at,
    )
    with pytest.raises(RunlaneError) as excinfo:
        project_run_events([event], run.event_sequence, run)
    assert excinfo.value.code is ErrorCode.INVARIANT_VIOLATION


@PROPERTY_SETTINGS
@given(lifecycles(), st.data())
def test_a_lease_cannot_expire_early(life: Lifecycle, data: st.DataObject) -> None:
    # Use the history up to its last running state (most lifecycles have one).
    running = [index for index, status in enumerate(life.statuses) if status is S.RUNNING]
    if not running:
        return
    run = project_run_events(life.events[: running[-1] + 1], 0)
    assert run.lease is not None
    window_ms = (run.lease.expires_at - run.lease.claimed_at) // timedelta(milliseconds=1)
    early = run.lease.claimed_at + timedelta(
        milliseconds=data.draw(st.integers(0, window_ms - 1), label="early")
    )
    premature = RunEvent(
        type=RunEventType.LEASE_EXPIRED,
        run_id=run.id,
        environment=run.environment,
        occurred_at=early,
        failure=lease_expiry_failure(),
        run_at=data.draw(st.sampled_from([None, run.lease.expires_at]), label="run_at"),
    )
    with pytest.raises(RunlaneError) as excinfo:
        project_run_events([premature], run.event_sequence, run)
    assert excinfo.value.code is ErrorCode.INVARIANT_VIOLATION
    on_time = replace(premature, occurred_at=run.lease.expires_at)
    assert project_run_events([on_time], run.event_sequence, run).lease is None


@PROPERTY_SETTINGS
@given(lifecycles())
def test_releases_never_change_failures_or_retries(life: Lifecycle) -> None:
    runs = step_by_step(life.events)
    for before, event, after in zip(runs, life.events[1:], runs[1:], strict=False):
        if event.type is RunEventType.RELEASED:
            assert (after.failures, after.retries, after.attempts) == (
                before.failures,
                before.retries,
                before.attempts,
            )
            assert after.releases == before.releases + 1
            assert after.failure == before.failure
        else:
            assert after.releases == before.releases


@PROPERTY_SETTINGS
@given(lifecycles())
def test_attempt_summaries_follow_lease_claims(life: Lifecycle) -> None:
    run = project_run_events(life.events, 0)
    attempts = summarize_attempts(life.events)
    assert len(attempts) == run.attempts
    assert [attempt.attempt for attempt in attempts] == list(range(1, run.attempts + 1))
    for attempt in attempts[:-1]:
        assert attempt.finished_at is not None
        assert attempt.status is not RunAttemptStatus.RUNNING
    if attempts:
        last = attempts[-1]
        still_running = run.status in LEASED
        assert (last.status is RunAttemptStatus.RUNNING) == still_running
        assert (last.finished_at is None) == still_running
    failed_attempts = [
        a
        for a in attempts
        if a.status
        in (RunAttemptStatus.FAILED, RunAttemptStatus.RETRY_SCHEDULED, RunAttemptStatus.LEASE_EXPIRED)
    ]
    assert len(failed_attempts) == run.failures
    assert sum(a.status is RunAttemptStatus.RELEASED for a in attempts) == run.releases


@PROPERTY_SETTINGS
@given(lifecycles())
def test_every_record_and_the_final_run_round_trip_through_the_wire(life: Lifecycle) -> None:
    records = records_of(life.events)
    for event, record in zip(life.events, records, strict=True):
        assert RunEventRecord.from_wire(json_copy(record.to_wire())) == record
        assert RunEvent.from_wire(json_copy(event.to_wire())) == event
    run = project_run_events(records, 0)
    assert RunRecord.from_wire(json_copy(run.to_wire())) == run
    summary = run.summary()
    assert "payload" not in summary.to_wire()
    assert RunSummary.from_wire(json_copy(summary.to_wire())) == summary
