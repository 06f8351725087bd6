"""Races between real processes on one Postgres schema: the promises hold with no shared memory.

Every process builds its own runtime (``postgres_storage`` + in-memory transport) from
``procs/race_app.py``; the only thing they share is the database. Processes wait for ``go`` after
start-up, so their work really overlaps. Proof of execution comes from tables the handlers write
through their own connections, not from runlane's records alone.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from runlane import TERMINAL_RUN_STATUSES, RunEventType, RunStatus, occurrence_id
from runlane.domain.vocabulary import LEASED_RUN_STATUSES
from tests.integration.postgres.procs.control import (
    Message,
    ProcessGroup,
    ScriptProcess,
    fetch,
    prepared_schema,
    processes,
    script_args,
    wait_until,
)
from tests.integration.postgres.procs.race_app import BOUNDED_LIMIT, bounded_queue, scheduled_task
from tests.support.pg_cluster import PostgresCluster

TERMINAL = [status.value for status in TERMINAL_RUN_STATUSES]
LEASED = [status.value for status in LEASED_RUN_STATUSES]
STARTUP_S = 45  # importing runlane, SQLAlchemy and psycopg in 8 processes at once on 2 cores


@pytest.fixture
def race_schema(pg_cluster: PostgresCluster) -> Iterator[str]:
    with prepared_schema(pg_cluster.libpq_dsn) as schema:
        yield schema


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessGroup]:
    with processes(tmp_path) as group:
        yield group


def _produce(procs: ProcessGroup, args: list[str], count: int, *, batch: int) -> float:
    """Trigger ``count`` runs from a producer process (``trigger_many``); returns its seconds."""
    producer = procs.start("producer", "producer.py", *args, "--count", str(count), "--batch", str(batch))
    return float(producer.expect("produced", timeout=90)["seconds"])


def _go(workers: list[ScriptProcess]) -> None:
    for worker in workers:
        worker.expect("ready", timeout=STARTUP_S)
    for worker in workers:
        worker.send("go")


def _stop(workers: list[ScriptProcess]) -> list[Message]:
    for worker in workers:
        worker.send("stop")
    return [worker.expect("stopped", timeout=30) for worker in workers]


def _status_counts(dsn: str, schema: str) -> Counter[str]:
    rows = fetch(dsn, "select status, count(*) from {schema}.runs group by status", schema)
    return Counter({status: count for status, count in rows})


def _wait_all_terminal(dsn: str, schema: str, total: int, timeout: float) -> float:
    def done() -> bool:
        counts = _status_counts(dsn, schema)
        assert counts[RunStatus.FAILED.value] == 0, f"a run failed: {counts}"
        return sum(counts[status] for status in TERMINAL) == total

    return wait_until(done, timeout=timeout, interval=0.1, what=f"{total} terminal runs")


@pytest.mark.timeout(150)
def test_eight_worker_processes_execute_every_attempt_exactly_once(
    pg_cluster: PostgresCluster, race_schema: str, procs: ProcessGroup
) -> None:
    dsn, runs = pg_cluster.libpq_dsn, 2000
    args = script_args(dsn, race_schema, "ledger")
    started = time.monotonic()
    workers = [
        procs.start(f"worker-{i}", "worker.py", *args, "--concurrency", "8", "--pool-size", "4")
        for i in range(8)
    ]
    produced_in = _produce(procs, args, runs, batch=100)
    assert _status_counts(dsn, race_schema) == {RunStatus.QUEUED.value: runs}

    _go(workers)
    ready_after = time.monotonic() - started
    drained_in = _wait_all_terminal(dsn, race_schema, runs, timeout=90)
    reports = _stop(workers)
    stopped_after = time.monotonic() - started

    assert _status_counts(dsn, race_schema) == {RunStatus.SUCCEEDED.value: runs}
    assert [report["duplicates"] for report in reports] == [[]] * len(workers)
    ledger = fetch(dsn, "select run_id, attempt, pid from {schema}.ledger", race_schema)
    assert len(ledger) == runs
    assert len({(run_id, attempt) for run_id, attempt, _ in ledger}) == runs
    assert {attempt for _, attempt, _ in ledger} == {1}
    run_ids = {row[0] for row in fetch(dsn, "select id from {schema}.runs", race_schema)}
    assert {run_id for run_id, _, _ in ledger} == run_ids
    events = dict(fetch(dsn, "select type, count(*) from {schema}.run_events group by type", race_schema))
    assert events[RunEventType.LEASE_CLAIMED.value] == runs
    assert events[RunEventType.SUCCEEDED.value] == runs

    by_pid = Counter(pid for _, _, pid in ledger)
    worker_pids = {worker.pid for worker in workers}
    assert set(by_pid) <= worker_pids
    assert len(by_pid) > 1, f"only one process did work: {by_pid}"
    assert {r["pid"]: r["executed"] for r in reports if r["executed"]} == dict(by_pid)
    print(
        f"\n{runs} runs triggered in {produced_in:.2f}s, executed by {len(workers)} processes in "
        f"{drained_in:.2f}s; per-process split: {sorted(by_pid.values())}; all ready after "
        f"{ready_after:.1f}s, all stopped after {stopped_after:.1f}s"
    )


@pytest.mark.timeout(90)
def test_concurrent_idempotent_triggers_from_four_processes_make_one_run(
    pg_cluster: PostgresCluster, race_schema: str, procs: ProcessGroup
) -> None:
    dsn, key, shares = pg_cluster.libpq_dsn, "order-42", [13, 13, 12, 12]
    args = script_args(dsn, race_schema, "idempotent")
    triggers = [
        procs.start(
            f"trigger-{i}",
            "trigger_idempotent.py",
            *args,
            "--count",
            str(n),
            "--key",
            key,
            "--pool-size",
            str(n),
        )
        for i, n in enumerate(shares)
    ]
    _go(triggers)
    reports = [trigger.expect("triggered", timeout=60) for trigger in triggers]

    assert [report["errors"] for report in reports] == [[]] * len(triggers)
    run_ids = [run_id for report in reports for run_id in report["run_ids"]]
    outcomes = Counter(outcome for report in reports for outcome in report["outcomes"])
    assert len(run_ids) == sum(shares)
    assert len(set(run_ids)) == 1, f"several runs for one key: {Counter(run_ids)}"
    assert outcomes == {"created": 1, "returned_existing": sum(shares) - 1}
    rows = fetch(dsn, "select id from {schema}.runs where idempotency_key = %s", race_schema, (key,))
    assert rows == [(run_ids[0],)]
    assert fetch(dsn, "select count(*) from {schema}.runs", race_schema) == [(1,)]
    created = fetch(
        dsn,
        "select count(*) from {schema}.run_events where type = %s",
        race_schema,
        (RunEventType.CREATED.value,),
    )
    assert created == [(1,)]
    assert fetch(dsn, "select run_id from {schema}.idempotency_owners", race_schema) == [(run_ids[0],)]
    creator = [i for i, report in enumerate(reports) if "created" in report["outcomes"]]
    print(f"\n50 idempotent triggers from 4 processes: one run {run_ids[0]}, created by trigger-{creator[0]}")


@pytest.mark.timeout(90)
def test_two_ticking_processes_materialise_each_schedule_occurrence_once(
    pg_cluster: PostgresCluster, race_schema: str, procs: ProcessGroup
) -> None:
    dsn, steps = pg_cluster.libpq_dsn, 6
    args = script_args(dsn, race_schema, "schedule", "--ticks", "3")
    tickers = [procs.start(f"ticker-{i}", "ticker.py", *args) for i in range(2)]
    for ticker in tickers:
        ticker.expect("ready", timeout=STARTUP_S)
    base = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    schedule = scheduled_task.schedule[0]
    expected: set[str] = set()
    wins: Counter[str] = Counter()
    for step in range(steps):
        now = base + timedelta(minutes=step, seconds=7)
        fire = schedule.latest_due_fire(now)
        assert fire is not None
        expected.add(occurrence_id(schedule.id, fire))
        for ticker in tickers:  # both start the step together, at the same simulated instant
            ticker.send(f"at {now.isoformat()}")
        totals = [ticker.expect("ticked", timeout=30)["totals"] for ticker in tickers]
        assert sum(t["materialized_schedules"] for t in totals) == 1, f"step {step}: {totals}"
        assert sum(t["published_wakeups"] for t in totals) == 1, f"step {step}: {totals}"
        wins.update(
            p.name for p, total in zip(tickers, totals, strict=True) if total["materialized_schedules"]
        )

    rows = fetch(
        dsn,
        """select record->'source'->>'occurrenceId', count(*) from {schema}.runs
           where record->'source'->>'type' = 'schedule' group by 1""",
        race_schema,
    )
    assert dict(rows) == dict.fromkeys(expected, 1)
    assert fetch(dsn, "select count(*) from {schema}.runs", race_schema) == [(steps,)]
    assert fetch(dsn, "select count(*) from {schema}.schedule_occurrences", race_schema) == [(steps,)]
    published = fetch(
        dsn, "select status, count(*) from {schema}.outbox_messages group by status", race_schema
    )
    assert published == [("published", steps)]
    print(f"\n{steps} occurrences, each materialised once; wins per ticker: {dict(wins)}")


class OccupancySampler:
    """Samples, every ~10 ms from its own connection, how many runs hold the bounded queue."""

    def __init__(self, dsn: str, schema: str) -> None:
        self.samples: list[int] = []
        self._dsn = dsn
        self._query = sql.SQL(
            """select (select count(*) from {runs} where queue = %s and status = any(%s))
                    + (select count(*) from {reservations} where queue = %s)"""
        ).format(
            runs=sql.Identifier(schema, "runs"), reservations=sql.Identifier(schema, "queue_reservations")
        )
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="occupancy-sampler", daemon=True)
        self.error: BaseException | None = None

    def __enter__(self) -> OccupancySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            with psycopg.connect(self._dsn, autocommit=True, connect_timeout=10) as conn:
                params = (bounded_queue.name, LEASED, bounded_queue.name)
                while not self._stop.is_set():
                    row = conn.execute(self._query, params).fetchone()
                    assert row is not None
                    self.samples.append(int(row[0]))
                    self._stop.wait(0.01)
        except BaseException as exc:
            self.error = exc


def _max_overlap(intervals: list[tuple[float, float]]) -> int:
    """Most intervals open at one instant (an interval ending exactly when another starts: not both)."""
    points = sorted([(start, 1) for start, _ in intervals] + [(end, -1) for _, end in intervals])
    open_now = peak = 0
    for _, delta in points:
        open_now += delta
        peak = max(peak, open_now)
    return peak


@pytest.mark.timeout(120)
def test_bounded_queue_capacity_holds_across_worker_processes(
    pg_cluster: PostgresCluster, race_schema: str, procs: ProcessGroup
) -> None:
    dsn, runs = pg_cluster.libpq_dsn, 200
    args = script_args(dsn, race_schema, "bounded")
    workers = [
        procs.start(
            f"worker-{i}",
            "worker.py",
            *args,
            "--concurrency",
            "4",
            "--pool-size",
            "6",
            "--poll-interval",
            "50ms",
            "--hold-seconds",
            "0.03",
        )
        for i in range(4)
    ]
    _produce(procs, args, runs, batch=50)

    with OccupancySampler(dsn, race_schema) as sampler:
        _go(workers)
        drained_in = _wait_all_terminal(dsn, race_schema, runs, timeout=90)
        reports = _stop(workers)
    assert sampler.error is None, sampler.error

    assert _status_counts(dsn, race_schema) == {RunStatus.SUCCEEDED.value: runs}
    intervals = fetch(dsn, "select started, ended, pid from {schema}.intervals", race_schema)
    assert len(intervals) == runs
    overlap = _max_overlap([(start, end) for start, end, _ in intervals])
    assert len(sampler.samples) > 50, "the sampler barely ran"
    assert max(sampler.samples) <= BOUNDED_LIMIT, Counter(sampler.samples)
    assert overlap <= BOUNDED_LIMIT
    assert overlap >= 2, "handlers never overlapped: the test did not exercise the limit"
    by_pid = Counter(pid for _, _, pid in intervals)
    assert len(by_pid) > 1, f"only one process did work: {by_pid}"
    print(
        f"\nbounded queue (limit {BOUNDED_LIMIT}), 4 processes x 4 slots, {runs} runs in {drained_in:.2f}s: "
        f"max sampled occupancy {max(sampler.samples)} over {len(sampler.samples)} samples "
        f"{dict(sorted(Counter(sampler.samples).items()))}, max overlapping handlers {overlap}, "
        f"per-process split {sorted(by_pid.values())}, executed {[r['executed'] for r in reports]}"
    )
