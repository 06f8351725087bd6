"""Scenario 2: a paused lease holder (SIGSTOP) is fenced out when it wakes up.

Worker A claims runs whose first attempt is slow, records its ledger rows, and is frozen with
SIGSTOP. Its leases expire; the ticker recovers them; worker B claims and completes every run.
Then A gets SIGCONT: its next heartbeat must be rejected (A's handler sees its signal aborted with
``lease_lost``) and its completion discarded, leaving exactly one terminal event per run.
"""

from __future__ import annotations

import signal
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from runlane import RunEventType
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures, wait_until
from tests.faults.history import TERMINAL_EVENTS, count_status, load_history
from tests.faults.kit import base_config, seed_runs
from tests.faults.logs import messages
from tests.faults.processes import ProcessGroup, write_config
from tests.faults.procs.app import ASYNC_TASK, SYNC_TASK

NAME = "fencing"


@dataclass(frozen=True)
class Params:
    runs: int
    first_attempt_ms: int
    timeout: float


CI = Params(runs=4, first_attempt_ms=8000, timeout=60)
FULL = Params(runs=20, first_attempt_ms=8000, timeout=120)


def _ledger_count(libpq_dsn: str, schema: str, worker: str) -> int:
    with psycopg.connect(libpq_dsn, connect_timeout=5) as conn:
        row = conn.execute(
            sql.SQL("select count(*) from {} where worker = %s").format(
                sql.Identifier(schema, "fault_ledger")
            ),
            (worker,),
        ).fetchone()
    return int(row[0]) if row else 0


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("fencing")
    logs = world.scratch_dir("fencing")
    config = base_config(
        world,
        schema,
        logs,
        lease="1s",
        heartbeat="250ms",
        concurrency=params.runs,
        tick_interval=0.2,
        retry={"max_attempts": 3, "backoff": "100ms"},
    )
    path = str(write_config(logs, "config", config))
    payload = {"first_attempt_ms": params.first_attempt_ms, "work_ms": 50}
    items = [(SYNC_TASK if i % 2 else ASYNC_TASK, payload) for i in range(params.runs)]
    run_ids = seed_runs(config, items)
    with ProcessGroup(logs) as group:
        holder = group.spawn("holder", "worker.py", path, "holder")
        group.spawn("ticker", "ticker.py", path, "ticker", "loop")
        started = wait_until(
            lambda: _ledger_count(world.libpq_dsn, schema, "holder") >= params.runs, timeout=params.timeout
        )
        fig.check(started, "the holder never started every first attempt")
        holder.signal(signal.SIGSTOP)
        paused_at = time.monotonic()
        group.spawn("rescuer", "worker.py", path, "rescuer")
        done = wait_until(
            lambda: count_status(world.libpq_dsn, schema, ["succeeded"]) >= params.runs,
            timeout=params.timeout,
        )
        fig.check(done, "the rescuer did not complete every run while the holder was paused")
        holder.signal(signal.SIGCONT)
        paused_for = time.monotonic() - paused_at

        def holder_gave_up() -> bool:
            return (
                len(messages(logs, "attempt outcome discarded: lease lost", worker="holder")) >= params.runs
            )

        fig.check(wait_until(holder_gave_up, timeout=30), "the holder's completions were not all rejected")
        for process in group.processes.values():
            process.terminate()
        for process in group.processes.values():
            process.wait(timeout=30)
        crashes = group.reap_unexpected() + group.exits
    history = load_history(world.libpq_dsn, schema).select(run_ids)
    heartbeat_rejected = {r["run_id"] for r in messages(logs, "lease lost", worker="holder")}
    completion_rejected = {
        r["run_id"] for r in messages(logs, "attempt outcome discarded: lease lost", worker="holder")
    }
    saw_lease_lost = {
        o["run_id"]
        for o in history.observations
        if o["worker"] == "holder" and o["kind"] == "aborted:lease_lost"
    }
    terminal_events = sum(1 for log in history.events.values() for e in log if e.type in TERMINAL_EVENTS)
    fig.runs = len(history.runs)
    fig.lost = len(history.lost())
    fig.duplicated = len(history.duplicated())
    fig.add(
        paused_s=round(paused_for, 1),
        heartbeats_rejected=len(heartbeat_rejected),
        completions_rejected=len(completion_rejected),
        holder_saw_lease_lost=len(saw_lease_lost),
        terminal_events=terminal_events,
        lease_expired=history.count_events(RunEventType.LEASE_EXPIRED),
        crashes=len(crashes),
    )
    ids = set(run_ids)
    fig.check(heartbeat_rejected == ids, f"heartbeats not rejected for {sorted(ids - heartbeat_rejected)}")
    fig.check(completion_rejected == ids, f"completions not rejected for {sorted(ids - completion_rejected)}")
    fig.check(saw_lease_lost == ids, "the holder's handlers did not all see lease_lost")
    fig.check(terminal_events == params.runs, f"{terminal_events} terminal events for {params.runs} runs")
    for run_id in run_ids:
        log = history.events[run_id]
        claims = [e.lease.worker_id for e in log if e.type is RunEventType.LEASE_CLAIMED and e.lease]
        fig.check(
            claims == ["holder", "rescuer"] and log[-1].type is RunEventType.SUCCEEDED,
            f"{run_id}: claims {claims}, last event {log[-1].type.value}",
        )
        fig.check(
            history.ledger.get((run_id, 1), {}).get("worker") == "holder"
            and history.ledger.get((run_id, 2), {}).get("worker") == "rescuer",
            f"{run_id}: ledger does not show holder then rescuer",
        )
    fig.check(not crashes, f"unexpected process exits: {crashes}")
    fig.check(not history.projection_mismatches(), "stored records differ from their replayed events")
    return fig.finish()
