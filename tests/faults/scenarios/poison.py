"""Scenario 4: a poison run kills its worker process on every attempt.

The handler SIGKILLs its own process after recording the attempt. Each death leaves a lease that
the ticker recovers once it expires, with the retry backoff before the next attempt; after
``max_attempts`` the run ends ``failed``. The harness restarts dead workers (and counts them), and
checks the recoveries were spaced by at least the backoff: a poison run must not become a hot loop
that keeps killing workers. Ordinary runs on the same workers still all succeed.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

from runlane import RunEventType
from runlane.domain.durations import to_duration
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures
from tests.faults.history import count_status, load_history
from tests.faults.kit import base_config, seed_runs
from tests.faults.processes import ProcessGroup, write_config
from tests.faults.procs.app import ASYNC_TASK, SYNC_TASK

NAME = "poison"
TERMINAL = [s.value for s in TERMINAL_RUN_STATUSES]


@dataclass(frozen=True)
class Params:
    poison_runs: int
    normal_runs: int
    max_attempts: int
    backoff: str
    timeout: float


CI = Params(poison_runs=2, normal_runs=40, max_attempts=3, backoff="1s", timeout=90)
FULL = Params(poison_runs=5, normal_runs=200, max_attempts=4, backoff="2s", timeout=300)


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("poison")
    logs = world.scratch_dir("poison")
    config = base_config(
        world,
        schema,
        logs,
        lease="1s",
        heartbeat="250ms",
        concurrency=1,  # one attempt per process, so each death is exactly one poison attempt
        tick_interval=0.2,
        retry={"max_attempts": params.max_attempts, "backoff": params.backoff},
    )
    path = str(write_config(logs, "config", config))
    poison = seed_runs(
        config, [(SYNC_TASK if i % 2 else ASYNC_TASK, {"poison": True}) for i in range(params.poison_runs)]
    )
    normal = seed_runs(
        config, [(SYNC_TASK if i % 2 else ASYNC_TASK, {"work_ms": 50}) for i in range(params.normal_runs)]
    )
    total = len(poison) + len(normal)
    deaths = 0
    with ProcessGroup(logs) as group:
        names = ["w0", "w1"]
        group.spawn("ticker", "ticker.py", path, "ticker", "loop", ready=False)
        for name in names:
            group.spawn(name, "worker.py", path, name, ready=False)
        group.wait_ready()
        deadline = time.monotonic() + params.timeout
        while time.monotonic() < deadline:
            if count_status(world.libpq_dsn, schema, TERMINAL) >= total:
                break
            for exit_ in group.reap_unexpected():
                if exit_.name in names:  # a poison attempt took it down: restart it, as a supervisor would
                    deaths += 1
                    group.restart(exit_.name, ready=False)
            time.sleep(0.1)
        for process in group.processes.values():
            process.terminate()
        for process in group.processes.values():
            process.wait(timeout=30)
        others = [e for e in group.reap_unexpected() + group.exits if e.name not in names]
    history = load_history(world.libpq_dsn, schema)
    backoff_s = to_duration(params.backoff).milliseconds / 1000
    min_spacing = None
    for run_id in poison:
        expiries = [e.occurred_at for e in history.events[run_id] if e.type is RunEventType.LEASE_EXPIRED]
        for earlier, later in itertools.pairwise(expiries):
            spacing = (later - earlier).total_seconds()
            min_spacing = spacing if min_spacing is None else min(min_spacing, spacing)
    poisoned = history.select(poison)
    fig.runs = len(history.runs)
    fig.lost = len(history.select(normal).lost()) + len(poisoned.not_terminal())
    fig.duplicated = len(history.duplicated())
    fig.add(
        poison_runs=len(poison),
        worker_deaths=deaths,
        lease_expired=history.count_events(RunEventType.LEASE_EXPIRED),
        min_recovery_spacing_s=min_spacing if min_spacing is not None else "-",
        backoff_s=backoff_s,
        statuses=dict(history.statuses()),
    )
    expected_deaths = params.poison_runs * params.max_attempts
    fig.check(
        all(r.status.value == "failed" for r in poisoned.runs.values()), "a poison run did not end failed"
    )
    fig.check(
        all(r.failures == params.max_attempts == r.attempts for r in poisoned.runs.values()),
        "poison runs did not use exactly their retry budget",
    )
    fig.check(
        poisoned.count_events(RunEventType.LEASE_EXPIRED) == expected_deaths,
        f"expected {expected_deaths} lease expiries for the poison runs",
    )
    fig.check(deaths == expected_deaths, f"expected {expected_deaths} worker deaths, saw {deaths}")
    fig.check(
        min_spacing is not None and min_spacing >= backoff_s,
        f"recoveries {min_spacing}s apart, less than the {backoff_s}s backoff",
    )
    fig.check(
        history.select(normal).statuses().get("succeeded", 0) == len(normal), "ordinary runs did not succeed"
    )
    fig.check(
        all((run_id, k) in history.ledger for run_id in poison for k in range(1, params.max_attempts + 1)),
        "a poison attempt is missing from the ledger",
    )
    fig.check(not others, f"unexpected exits of other processes: {others}")
    fig.check(not history.projection_mismatches(), "stored records differ from their replayed events")
    return fig.finish()
