"""Scenario 1: SIGKILL a worker process mid-attempt every ~2 s, restart it, and lose nothing.

Several worker processes drain a backlog with short leases while a ticker recovers expired
leases. Before each kill the victim is frozen (SIGSTOP) and the runs it holds are noted, so every
killed attempt can be followed: it must come back as ``run.lease_expired`` (a failure charged to
the retry budget) and then run again under a new lease.
"""

from __future__ import annotations

import random
import signal
import time
from dataclasses import dataclass

import psycopg
from psycopg import sql

from runlane import RunEventType
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures, wait_until
from tests.faults.history import count_status, load_history
from tests.faults.kit import base_config, seed_runs
from tests.faults.processes import ProcessGroup, write_config
from tests.faults.procs.app import ASYNC_TASK, SYNC_TASK

NAME = "kill-9"
TERMINAL = [s.value for s in TERMINAL_RUN_STATUSES]


@dataclass(frozen=True)
class Params:
    runs: int
    workers: int
    concurrency: int
    work_ms: int
    kill_every: float
    lease: str
    timeout: float


CI = Params(runs=400, workers=4, concurrency=2, work_ms=150, kill_every=2.0, lease="2s", timeout=150)
FULL = Params(runs=2000, workers=4, concurrency=2, work_ms=300, kill_every=2.0, lease="2s", timeout=600)


def _leased_by(libpq_dsn: str, schema: str, worker: str) -> list[str]:
    with psycopg.connect(libpq_dsn, connect_timeout=5) as conn:
        rows = conn.execute(
            sql.SQL("select id from {} where status = 'running' and lease_worker_id = %s").format(
                sql.Identifier(schema, "runs")
            ),
            (worker,),
        ).fetchall()
    return [row[0] for row in rows]


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("kill9")
    logs = world.scratch_dir("kill9")
    config = base_config(world, schema, logs, lease=params.lease, concurrency=params.concurrency)
    path = str(write_config(logs, "config", config))
    items = [(SYNC_TASK if i % 2 else ASYNC_TASK, {"work_ms": params.work_ms}) for i in range(params.runs)]
    run_ids = seed_runs(config, items)
    killed: list[tuple[str, str]] = []  # (worker id, run id) held at the moment of a kill
    kills = 0
    with ProcessGroup(logs) as group:
        names = [f"w{i}" for i in range(params.workers)]
        group.spawn("ticker", "ticker.py", path, "ticker", "loop", ready=False)
        for name in names:
            group.spawn(name, "worker.py", path, f"{name}g0", ready=False)
        group.wait_ready()
        rng = random.Random(1)
        deadline = time.monotonic() + params.timeout
        next_kill = time.monotonic() + params.kill_every
        while time.monotonic() < deadline:
            if count_status(world.libpq_dsn, schema, TERMINAL) >= params.runs:
                break
            if time.monotonic() >= next_kill:
                victim = group.processes[rng.choice(names)]
                worker_id = victim.args[1]
                victim.signal(signal.SIGSTOP)  # frozen: what it holds now is what the kill interrupts
                killed += [(worker_id, run_id) for run_id in _leased_by(world.libpq_dsn, schema, worker_id)]
                group.restart(victim.name, path, f"{victim.name}g{victim.generation + 1}", ready=False)
                kills += 1
                next_kill = time.monotonic() + params.kill_every
            group.reap_unexpected()
            time.sleep(0.1)
        wait_until(lambda: count_status(world.libpq_dsn, schema, TERMINAL) >= params.runs, timeout=5.0)
        for process in group.processes.values():
            process.terminate()
        for process in group.processes.values():
            process.wait(timeout=30)
        crashes = group.reap_unexpected() + group.exits
    history = load_history(world.libpq_dsn, schema).select(run_ids)
    recovered = 0
    for worker_id, run_id in killed:
        log = history.events.get(run_id, [])
        for index, event in enumerate(log):
            if (
                event.type is RunEventType.LEASE_CLAIMED
                and event.lease is not None
                and event.lease.worker_id == worker_id
                and any(later.type is RunEventType.LEASE_EXPIRED for later in log[index + 1 :])
            ):
                recovered += 1
                break
    lease_expired = history.count_events(RunEventType.LEASE_EXPIRED)
    failures = sum(run.failures for run in history.runs.values())
    fig.runs = len(history.runs)
    fig.lost = len(history.lost())
    fig.duplicated = len(history.duplicated())
    fig.add(
        kills=kills,
        killed_attempts=len(killed),
        recovered=recovered,
        lease_expired=lease_expired,
        failures=failures,
        statuses=dict(history.statuses()),
        crashes=len(crashes),
    )
    fig.check(fig.runs == params.runs, f"expected {params.runs} runs, found {fig.runs}")
    fig.check(kills >= 2, f"only {kills} kill(s) happened: the backlog drained too fast to test anything")
    fig.check(len(killed) >= 1, "no kill landed mid-attempt")
    fig.check(recovered == len(killed), f"{len(killed) - recovered} killed attempt(s) never expired")
    fig.check(lease_expired == failures, f"lease_expired={lease_expired} but failures={failures}")
    fig.check(lease_expired >= len(killed), "fewer lease expiries than killed attempts")
    fig.check(not crashes, f"unexpected process exits: {crashes}")
    fig.check(not history.projection_mismatches(), "stored records differ from their replayed events")
    fig.check(not history.phantom_attempts(), f"ledger rows without a lease: {history.phantom_attempts()}")
    return fig.finish()
