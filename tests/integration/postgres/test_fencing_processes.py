"""Fencing with real processes: a lease holder paused past expiry loses the run for good.

Worker A (lease 1s, heartbeat every 300ms) starts attempt 1, whose handler blocks. The test
freezes A with SIGSTOP, waits until the lease has expired, runs maintenance in another process
(``lease_expired`` → ``retrying`` with a 10ms backoff) and lets worker B execute attempt 2. Then A
resumes: its first heartbeat is rejected, its handler sees the abort, and its late outcome is
discarded. B's success is the run's only terminal event.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from runlane import RunEventType, RunStatus
from tests.integration.postgres.procs.control import (
    ProcessGroup,
    ScriptFailed,
    ScriptProcess,
    fetch,
    prepared_schema,
    processes,
    script_args,
    wait_until,
)
from tests.support.pg_cluster import PostgresCluster

TERMINAL_EVENTS = {RunEventType.SUCCEEDED.value, RunEventType.FAILED.value, RunEventType.CANCELLED.value}
OUTCOME_EVENTS = TERMINAL_EVENTS | {RunEventType.RETRY_SCHEDULED.value, RunEventType.RELEASED.value}


@pytest.fixture
def race_schema(pg_cluster: PostgresCluster) -> Iterator[str]:
    with prepared_schema(pg_cluster.libpq_dsn) as schema:
        yield schema


@pytest.fixture
def procs(tmp_path: Path) -> Iterator[ProcessGroup]:
    with processes(tmp_path) as group:
        yield group


def _process_state(pid: int) -> str:
    """The kernel's one-letter state of ``pid`` ('T' once SIGSTOP has taken effect)."""
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0]


def _pause_outside_transactions(dsn: str, process: ScriptProcess, application_name: str) -> None:
    """SIGSTOP ``process`` at a moment none of its sessions is inside a transaction.

    A process frozen mid-heartbeat would keep the run's row locked and block maintenance until it
    resumed (in production ``idle_in_transaction_session_timeout`` ends that); this test is about
    fencing, so it retries the pause until A's sessions are idle.
    """
    for _ in range(50):
        os.kill(process.pid, signal.SIGSTOP)
        wait_until(lambda: _process_state(process.pid) == "T", timeout=5, interval=0.005, what="SIGSTOP")
        ((sessions, busy),) = fetch(
            dsn,
            """select count(*), count(*) filter (where state <> 'idle')
               from pg_stat_activity where application_name = %s""",
            params=(application_name,),
        )
        assert sessions > 0, f"no sessions named {application_name!r}: the check would be vacuous"
        if busy == 0:
            return
        os.kill(process.pid, signal.SIGCONT)
        time.sleep(0.03)
    raise AssertionError("worker A was inside a transaction at every attempt to pause it")


def _events(dsn: str, schema: str, run_id: str) -> list[tuple[Any, ...]]:
    """(sequence, type, event JSON text) of the run's history, in order."""
    return fetch(
        dsn,
        "select sequence, type, event::text from {schema}.run_events where run_id = %s order by sequence",
        schema,
        (run_id,),
    )


@pytest.mark.timeout(90)
def test_a_paused_lease_holder_is_fenced_and_the_new_holders_outcome_stands(
    pg_cluster: PostgresCluster, race_schema: str, procs: ProcessGroup
) -> None:
    dsn = pg_cluster.libpq_dsn
    args = script_args(dsn, race_schema, "fencing")
    producer = procs.start("producer", "producer.py", *args, "--count", "1")
    worker_a = procs.start(
        "worker-a",
        "fenced_worker.py",
        *args,
        "--lease",
        "1s",
        "--heartbeat",
        "300ms",
        "--application-name",
        "fenced-a",
    )
    worker_b = procs.start("worker-b", "fenced_worker.py", *args, "--application-name", "fenced-b")
    ticker = procs.start("ticker", "ticker.py", *args, "--ticks", "1")
    producer.expect("produced", timeout=45)
    ((run_id,),) = fetch(dsn, "select id from {schema}.runs", race_schema)
    a_id = worker_a.expect("ready", timeout=45)["worker_id"]
    b_id = worker_b.expect("ready", timeout=45)["worker_id"]
    ticker.expect("ready", timeout=45)

    # Attempt 1 on A; let it heartbeat at least once so the pause interrupts a live holder.
    worker_a.send("go")
    worker_a.expect("handler_started", timeout=20)

    def heartbeat_seen() -> bool:
        ((claimed, beat),) = fetch(
            dsn,
            "select record->'lease'->>'claimedAt', record->'lease'->>'heartbeatAt' from {schema}.runs",
            race_schema,
        )
        return bool(beat != claimed)

    wait_until(heartbeat_seen, timeout=10, interval=0.05, what="a heartbeat from A")
    _pause_outside_transactions(dsn, worker_a, "fenced-a")
    paused_at = time.monotonic()

    # Past expiry (same host clock as A's), maintenance expires the lease and schedules the retry.
    def lease_expired() -> bool:
        expired = "select lease_expires_at < now() - interval '50 milliseconds' from {schema}.runs"
        return fetch(dsn, expired, race_schema) == [(True,)]

    wait_until(lease_expired, timeout=10, interval=0.05, what="A's lease to expire")
    ticker.send("now")
    ticked = ticker.expect("ticked", timeout=20)
    assert ticked["totals"]["expired_leases"] == 1, ticked
    assert fetch(dsn, "select status from {schema}.runs", race_schema) == [(RunStatus.RETRYING.value,)]

    # Attempt 2 on B, while A is still frozen.
    worker_b.send("go")
    b_report = worker_b.expect("executed", timeout=30)
    assert b_report["run"] == {
        "id": run_id,
        "status": RunStatus.SUCCEEDED.value,
        "attempts": 2,
        "sequence": b_report["run"]["sequence"],
        "lease_worker_id": None,
    }
    history_before_resume = _events(dsn, race_schema, run_id)
    paused_for = time.monotonic() - paused_at

    # A resumes: its heartbeat is rejected, the handler sees the abort, its outcome is discarded.
    os.kill(worker_a.pid, signal.SIGCONT)
    a_report = worker_a.expect("executed", timeout=30)
    assert worker_a.wait_exit(timeout=20) == 0
    messages = [m.get("message") for m in worker_a.of("log")]
    assert "lease lost" in messages, worker_a.received
    assert any("outcome discarded" in str(m) for m in messages), worker_a.received
    (returning,) = worker_a.of("handler_returning")
    assert returning["signal_aborted"] is True
    assert returning["signal_reason"] == "lease_lost"
    # What A last saw is B's outcome, not its own.
    assert a_report["run"]["status"] == RunStatus.SUCCEEDED.value
    assert a_report["run"]["attempts"] == 2

    history = _events(dsn, race_schema, run_id)
    assert history == history_before_resume, "A wrote after it resumed"
    types = [event_type for _, event_type, _ in history]
    assert [t for t in types if t in TERMINAL_EVENTS] == [RunEventType.SUCCEEDED.value]
    assert types[-1] == RunEventType.SUCCEEDED.value
    claims = [i for i, t in enumerate(types) if t == RunEventType.LEASE_CLAIMED.value]
    assert len(claims) == 2
    assert a_id in history[claims[0]][2]
    assert b_id in history[claims[1]][2]
    # Attempt 1 ended by maintenance alone: nothing but lease_expired between the two claims.
    between = types[claims[0] + 1 : claims[1]]
    assert RunEventType.LEASE_EXPIRED.value in between
    assert not set(between) & OUTCOME_EVENTS, between
    assert types.count(RunEventType.LEASE_EXPIRED.value) == 1
    # A's rejected heartbeat did not revive a lease on the finished run either.
    row = fetch(
        dsn,
        "select status, (record->>'attempts')::int, lease_worker_id, lease_expires_at from {schema}.runs",
        race_schema,
    )
    assert row == [(RunStatus.SUCCEEDED.value, 2, None, None)]
    ledger = fetch(dsn, "select attempt, pid from {schema}.ledger order by attempt", race_schema)
    assert ledger == [(1, worker_a.pid), (2, worker_b.pid)]
    print(
        f"\nA paused {paused_for:.2f}s; events: {types}; A's log: {messages}; "
        f"A's handler saw abort reason {returning['signal_reason']!r}"
    )


def test_script_failure_is_reported_with_its_stderr(procs: ProcessGroup) -> None:
    """The controller fails loudly (not by hanging) when a script dies: the other tests rely on it."""
    broken = procs.start("broken", "fenced_worker.py", "--dsn", "postgresql://unused@127.0.0.1:1/none")
    with pytest.raises(ScriptFailed, match="exited"):
        broken.expect("ready", timeout=30)
