"""Hypothesis strategies: valid run lifecycles made by walking the spec's transition table.

The table below is copied from shared/spec/model-and-reducer.md §6, not from the reducer, so the
property tests compare the reducer against an independent model. Strategies are built once at
module level: composing new strategy objects inside every draw costs more than the tests.
"""

import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from runlane.domain.run_events import RunEvent
from runlane.domain.values import Actor, DeliveryIntent, Environment, Lease, RunFailure, RunSource
from runlane.domain.vocabulary import ActorType, ErrorCode, RunEventType, RunSourceType, RunStatus

# Every property test runs at least 500 examples, also in CI: the decorator's explicit values win
# over any loaded profile. Derandomized so a CI failure reproduces locally.
PROPERTY_SETTINGS = settings(
    max_examples=500,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)

E = RunEventType
S = RunStatus
RUNNABLE = (S.QUEUED, S.SCHEDULED, S.RELEASED, S.RETRYING)
TERMINAL = (S.SUCCEEDED, S.FAILED, S.CANCELLED)

ALLOWED_EVENTS: dict[RunStatus, tuple[RunEventType, ...]] = {
    **{status: (E.DELIVERY_REQUESTED, E.LEASE_CLAIMED, E.CANCELLED) for status in RUNNABLE},
    S.RUNNING: (
        E.SUCCEEDED,
        E.RETRY_SCHEDULED,
        E.FAILED,
        E.RELEASED,
        E.CANCELLATION_REQUESTED,
        E.LEASE_EXPIRED,
    ),
    S.CANCELLATION_REQUESTED: (E.FAILED, E.CANCELLED),
    **{status: () for status in TERMINAL},
}
# Events that end a lifecycle from each non-terminal status (used to force a terminal run).
FINISHING_EVENTS: dict[RunStatus, tuple[RunEventType, ...]] = {
    **{status: (E.CANCELLED,) for status in RUNNABLE},
    S.RUNNING: (E.SUCCEEDED, E.FAILED),
    S.CANCELLATION_REQUESTED: (E.FAILED, E.CANCELLED),
}
# The walk picks among ALLOWED_EVENTS with these weights, so histories get long (many claims,
# retries, releases) before a terminal event ends them. Terminal events sit in the middle of each
# tuple: Hypothesis favours the first and last index, which should keep the walk going.
_WEIGHTED: dict[RunStatus, tuple[RunEventType, ...]] = {
    **{
        status: (
            E.LEASE_CLAIMED,
            E.DELIVERY_REQUESTED,
            E.LEASE_CLAIMED,
            E.DELIVERY_REQUESTED,
            E.LEASE_CLAIMED,
            E.CANCELLED,
            E.LEASE_CLAIMED,
            E.DELIVERY_REQUESTED,
            E.LEASE_CLAIMED,
            E.DELIVERY_REQUESTED,
            E.LEASE_CLAIMED,
        )
        for status in RUNNABLE
    },
    S.RUNNING: (
        E.RETRY_SCHEDULED,
        E.RELEASED,
        E.LEASE_EXPIRED,
        E.RETRY_SCHEDULED,
        E.RELEASED,
        E.SUCCEEDED,
        E.CANCELLATION_REQUESTED,
        E.FAILED,
        E.RELEASED,
        E.RETRY_SCHEDULED,
        E.LEASE_EXPIRED,
        E.RELEASED,
        E.RETRY_SCHEDULED,
    ),
    S.CANCELLATION_REQUESTED: (E.FAILED, E.CANCELLED),
}
assert all(set(_WEIGHTED[status]) == set(ALLOWED_EVENTS[status]) for status in _WEIGHTED)
_CHOICES = {status: st.sampled_from(options) for status, options in _WEIGHTED.items()}
_FINISHING_CHOICES = {status: st.sampled_from(options) for status, options in FINISHING_EVENTS.items()}

ids = st.text(alphabet=string.ascii_lowercase + string.digits + "._-", min_size=1, max_size=12)
# Lifecycles draw ids from a pool: one draw instead of one per character keeps 500 examples of
# long histories fast. (Random id text is covered by test_ids and test_values_wire.)
pooled_ids = st.sampled_from(
    ["a", "emails.welcome", "0f3a9c", "tenant-42_x", "ünïcødé", "x" * 64, "a/b#c", "default", "Z"]
)
optional_ids = st.none() | pooled_ids
environments = st.builds(Environment, pooled_ids)
json_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10)
)
json_values = st.recursive(
    json_scalars,
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=8,
)
json_objects = st.dictionaries(st.text(max_size=6), json_values, max_size=3)
optional_json_objects = st.none() | json_objects
trace_carriers = st.dictionaries(
    st.sampled_from(["traceparent", "tracestate", "baggage"]), st.text(max_size=20), max_size=2
)
optional_trace_carriers = st.none() | trace_carriers
actors = st.builds(Actor, st.sampled_from(ActorType), optional_ids)
# Cheap fixed pools: one draw each instead of a nested structure. Random JSON, ids and trace
# carriers are exercised by the event and value round-trip properties instead.
pooled_meta = st.sampled_from(
    [None, None, {}, {"attempt": 2}, {"nested": {"list": [1, 2.5, None, True]}}, {"ü": "✓", "": ""}]
)
pooled_payloads: st.SearchStrategy[Any] = st.sampled_from(
    [
        None,
        {},
        {"userId": "u1"},
        [1, 2.5, "x", None, True, {"deep": [[]]}],
        "text",
        0,
        -1.5e300,
        {"ü": {"": [False]}},
    ]
)
pooled_trace_carriers = st.sampled_from([None, None, {}, {"traceparent": "00-4bf92f-00f067-01"}])
pooled_actors = st.sampled_from(
    [
        Actor(),
        Actor(ActorType.OPERATOR),
        Actor(ActorType.OPERATOR, "ops@example.com"),
        Actor(ActorType.USER, "u1"),
    ]
)
reasons = st.none() | st.sampled_from(["waiting_for_export", "operator", "duplicate", "rate limited ⏳"])
messages = st.sampled_from(["Task failed", "Lease expired", "upstream timeout", ""])
error_codes = st.sampled_from(ErrorCode)
ttls = st.sampled_from([None, "active", "30d", "1h"])
source_types = st.none() | st.sampled_from(RunSourceType)
# Millisecond-precise UTC instants in a plausible range.
start_times = st.integers(
    min_value=946_684_800_000,  # 2000-01-01
    max_value=4_102_444_800_000,  # 2100-01-01
).map(lambda ms: datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms))
steps_ms = st.integers(min_value=0, max_value=10 * 60_000)
delays_ms = st.integers(min_value=1, max_value=24 * 3_600_000)
optional_delays_ms = st.none() | delays_ms
# Mostly "due at once" (queued) with some future times (scheduled).
availability_ms = st.sampled_from([0, 0, 1, 1_000, 3_600_000]) | delays_ms
lease_ms = st.integers(min_value=1, max_value=120_000)
expiry_lag_ms = st.integers(min_value=0, max_value=5_000)
booleans = st.booleans()


def walk_lengths(max_steps: int) -> st.SearchStrategy[int]:
    return st.integers(min_value=0, max_value=max_steps)


@dataclass(frozen=True)
class Lifecycle:
    """A valid event history plus what the spec model says about it."""

    run_id: str
    environment: Environment
    events: tuple[RunEvent, ...]
    statuses: tuple[RunStatus, ...]  # model status after each event
    end: datetime  # time of the last event
    lease_expires_at: datetime | None  # the current lease (if the model holds one)

    @property
    def status(self) -> RunStatus:
        return self.statuses[-1]


def _ms(value: int) -> timedelta:
    return timedelta(milliseconds=value)


def _failure(draw: Any, now: datetime) -> RunFailure:
    return RunFailure(
        code=draw(error_codes),
        message=draw(messages),
        retryable=draw(booleans),
        meta=draw(pooled_meta),
        occurred_at=now if draw(booleans) else None,
    )


def draw_created(draw: Any, run_id: str, environment: Environment, now: datetime) -> RunEvent:
    source_type = draw(source_types)
    source = None
    if source_type is not None:
        child = source_type in (RunSourceType.RERUN, RunSourceType.MANUAL_RETRY)
        source = RunSource(type=source_type, source_run_id=f"{run_id}_parent" if child else None)
    delay = draw(optional_delays_ms)
    return RunEvent(
        type=E.CREATED,
        run_id=run_id,
        environment=environment,
        occurred_at=now,
        actor=draw(pooled_actors),
        task_id=draw(pooled_ids),
        queue=draw(pooled_ids),
        payload=draw(pooled_payloads),
        source=source,
        idempotency_key=draw(optional_ids),
        idempotency_key_ttl=draw(ttls),
        singleton_key=draw(optional_ids),
        concurrency_key=draw(optional_ids),
        run_at=None if delay is None else now + _ms(delay),
        trace_carrier=draw(pooled_trace_carriers),
        meta=draw(pooled_meta),
    )


def draw_event(
    draw: Any,
    kind: RunEventType,
    *,
    run_id: str,
    environment: Environment,
    queue: str,
    now: datetime,
    lease_expires_at: datetime | None,
) -> RunEvent:
    """One event of ``kind`` at ``now`` (lease expiry events wait until the lease has expired)."""
    common: dict[str, Any] = {"run_id": run_id, "environment": environment, "occurred_at": now}
    if kind is E.CREATED:
        return draw_created(draw, run_id, environment, now)
    if kind is E.DELIVERY_REQUESTED:
        intent = DeliveryIntent(
            run_id=run_id,
            environment=environment,
            queue=queue,
            requested_at=now,
            available_at=now + _ms(draw(availability_ms)),
            trace_carrier=draw(pooled_trace_carriers),
        )
        return RunEvent(type=kind, delivery=intent, **common)
    if kind is E.LEASE_CLAIMED:
        lease = Lease(
            worker_id=draw(pooled_ids), claimed_at=now, expires_at=now + _ms(draw(lease_ms)), heartbeat_at=now
        )
        return RunEvent(type=kind, lease=lease, **common)
    if kind is E.SUCCEEDED:
        return RunEvent(type=kind, **common)
    if kind is E.RETRY_SCHEDULED:
        return RunEvent(type=kind, failure=_failure(draw, now), run_at=now + _ms(draw(delays_ms)), **common)
    if kind is E.FAILED:
        return RunEvent(type=kind, failure=_failure(draw, now), **common)
    if kind is E.RELEASED:
        return RunEvent(
            type=kind,
            run_at=now + _ms(draw(delays_ms)),
            reason=draw(reasons),
            meta=draw(pooled_meta),
            **common,
        )
    if kind in (E.CANCELLATION_REQUESTED, E.CANCELLED):
        return RunEvent(
            type=kind,
            actor=draw(pooled_actors),
            reason=draw(reasons),
            trace_carrier=draw(pooled_trace_carriers),
            meta=draw(pooled_meta),
            **common,
        )
    assert kind is E.LEASE_EXPIRED
    if lease_expires_at is not None and lease_expires_at > now:
        common["occurred_at"] = lease_expires_at + _ms(draw(expiry_lag_ms))
    failure = RunFailure(
        code=ErrorCode.INTERNAL_ERROR,
        message="Lease expired",
        retryable=True,
        meta={"reason": "lease_expired"},
    )
    delay = draw(optional_delays_ms)
    run_at = None if delay is None else common["occurred_at"] + _ms(delay)
    return RunEvent(type=kind, failure=failure, run_at=run_at, **common)


def model_next_status(event: RunEvent) -> RunStatus:
    """The status the spec table prescribes after an allowed ``event``."""
    match event.type:
        case E.DELIVERY_REQUESTED:
            assert event.delivery is not None
            return S.SCHEDULED if event.delivery.available_at > event.occurred_at else S.QUEUED
        case E.LEASE_CLAIMED:
            return S.RUNNING
        case E.SUCCEEDED:
            return S.SUCCEEDED
        case E.RETRY_SCHEDULED:
            return S.RETRYING
        case E.FAILED:
            return S.FAILED
        case E.RELEASED:
            return S.RELEASED
        case E.CANCELLATION_REQUESTED:
            return S.CANCELLATION_REQUESTED
        case E.CANCELLED:
            return S.CANCELLED
        case E.LEASE_EXPIRED:
            return S.RETRYING if event.run_at is not None else S.FAILED
        case _:
            return S.QUEUED  # run.created


@st.composite
def lifecycles(draw: Any, *, max_steps: int = 24, finish: bool = False) -> Lifecycle:
    """A valid history: ``run.created`` then random allowed events at non-decreasing times.

    With ``finish=True`` the walk always ends in a terminal status.
    """
    steps = draw(walk_lengths(max_steps))
    run_id = "run_" + draw(pooled_ids)
    environment = draw(environments)
    now = draw(start_times)
    first = draw_created(draw, run_id, environment, now)
    assert first.queue is not None
    queue = first.queue
    events = [first]
    statuses = [S.QUEUED]
    lease_expires_at: datetime | None = None

    def walk(choice: st.SearchStrategy[RunEventType]) -> None:
        nonlocal now, lease_expires_at
        now = now + _ms(draw(steps_ms))
        event = draw_event(
            draw,
            draw(choice),
            run_id=run_id,
            environment=environment,
            queue=queue,
            now=now,
            lease_expires_at=lease_expires_at,
        )
        now = event.occurred_at
        if event.lease is not None:
            lease_expires_at = event.lease.expires_at
        next_status = model_next_status(event)
        if next_status not in (S.RUNNING, S.CANCELLATION_REQUESTED):
            lease_expires_at = None
        events.append(event)
        statuses.append(next_status)

    for _ in range(steps):
        if statuses[-1] in TERMINAL:
            break
        walk(_CHOICES[statuses[-1]])
    if finish and statuses[-1] not in TERMINAL:
        walk(_FINISHING_CHOICES[statuses[-1]])
    return Lifecycle(
        run_id=run_id,
        environment=environment,
        events=tuple(events),
        statuses=tuple(statuses),
        end=now,
        lease_expires_at=lease_expires_at,
    )
