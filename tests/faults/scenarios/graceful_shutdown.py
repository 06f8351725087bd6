"""Scenario 7: SIGTERM workers mid-drain, sync and async handlers; nothing lost or burned.

Worker processes (``stop(grace=...)`` on SIGTERM) drain a backlog of slow sync and async attempts.
The harness sends SIGTERM to every worker while attempts are in flight, waits for them to exit,
and restarts them; this repeats, then the restarted workers finish the backlog. With a retry budget
of one attempt, any attempt charged as a failure would fail its run, so the checks are strict:
every run succeeds, no lease expires, no failure is recorded, and each interrupted attempt either
completed within the grace period or was released with reason ``worker_shutdown``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from runlane import RunEventType
from runlane.application.run_attempt import WORKER_SHUTDOWN
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures, wait_until
from tests.faults.history import count_status, load_history
from tests.faults.kit import base_config, seed_runs
from tests.faults.processes import ProcessGroup, write_config
from tests.faults.procs.app import ASYNC_TASK, SYNC_TASK

NAME = "graceful-shutdown"
TERMINAL = [s.value for s in TERMINAL_RUN_STATUSES]


@dataclass(frozen=True)
class Params:
    runs: int
    workers: int
    sigterm_rounds: int
    grace_s: float
    timeout: float


CI = Params(runs=120, workers=3, sigterm_rounds=2, grace_s=0.5, timeout=120)
FULL = Params(runs=600, workers=3, sigterm_rounds=5, grace_s=0.5, timeout=600)


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("graceful")
    logs = world.scratch_dir("graceful")
    config = base_config(
        world,
        schema,
        logs,
        lease="3s",
        heartbeat="1s",
        concurrency=3,
        grace=params.grace_s,
        retry={"max_attempts": 1},
    )
    path = str(write_config(logs, "config", config))
    items = [
        (SYNC_TASK if i % 2 else ASYNC_TASK, {"work_ms": 200 + (i * 137) % 1300}) for i in range(params.runs)
    ]
    run_ids = seed_runs(config, items)
    in_flight_at_sigterm: list[int] = []
    exit_seconds: list[float] = []
    still_leased: list[int] = []
    exit_codes: list[int] = []
    names = [f"w{i}" for i in range(params.workers)]
    with ProcessGroup(logs) as group:
        group.spawn("ticker", "ticker.py", path, "ticker", "loop", ready=False)
        for name in names:
            group.spawn(name, "worker.py", path, f"{name}g0", ready=False)
        group.wait_ready()
        for round_ in range(params.sigterm_rounds):
            time.sleep(2.0)  # let attempts get going
            in_flight_at_sigterm.append(count_status(world.libpq_dsn, schema, ["running"]))
            sent = time.monotonic()
            for name in names:
                group.processes[name].terminate()
            for name in names:
                exit_codes.append(group.processes[name].wait(timeout=30))
            exit_seconds.append(time.monotonic() - sent)
            # Every worker has exited: nothing may still be leased (a lost attempt would be, until expiry).
            still_leased.append(count_status(world.libpq_dsn, schema, ["running"]))
            for name in names:
                group.restart(name, path, f"{name}g{round_ + 1}", ready=False)
            group.wait_ready()
        done = wait_until(
            lambda: count_status(world.libpq_dsn, schema, TERMINAL) >= params.runs,
            timeout=params.timeout,
            on_tick=group.reap_unexpected,
        )
        fig.check(done, "the restarted workers did not finish the backlog")
        for process in group.processes.values():
            process.terminate()
        for name in names:
            exit_codes.append(group.processes[name].wait(timeout=30))
        group.processes["ticker"].wait(timeout=30)
        crashes = group.reap_unexpected() + group.exits
    history = load_history(world.libpq_dsn, schema).select(run_ids)
    released = [
        e
        for log in history.events.values()
        for e in log
        if e.type is RunEventType.RELEASED and e.reason == WORKER_SHUTDOWN
    ]
    aborted = [o for o in history.observations if o["kind"] == f"aborted:{WORKER_SHUTDOWN}"]
    fig.runs = len(history.runs)
    fig.lost = len(history.lost())
    fig.duplicated = len(history.duplicated())
    fig.add(
        sigterms=params.sigterm_rounds * params.workers,
        in_flight_at_sigterm=sum(in_flight_at_sigterm),
        released_worker_shutdown=len(released),
        handlers_aborted=len(aborted),
        completed_in_grace=sum(in_flight_at_sigterm) - len(released),
        lease_expired=history.count_events(RunEventType.LEASE_EXPIRED),
        failures=sum(run.failures for run in history.runs.values()),
        max_exit_s=max(exit_seconds, default=0.0),
        statuses=dict(history.statuses()),
    )
    fig.check(sum(in_flight_at_sigterm) > 0, "no attempt was in flight at SIGTERM")
    fig.check(len(released) > 0, "no attempt outlived the grace period: nothing was released")
    fig.check(len(aborted) == len(released), f"{len(aborted)} aborted handlers, {len(released)} releases")
    fig.check(not any(still_leased), f"runs still leased after every worker exited: {still_leased}")
    fig.check(all(code == 0 for code in exit_codes), f"exit codes after SIGTERM: {exit_codes}")
    fig.check(history.count_events(RunEventType.LEASE_EXPIRED) == 0, "a lease expired: an attempt was lost")
    fig.check(all(run.failures == 0 for run in history.runs.values()), "an attempt was charged as a failure")
    fig.check(history.statuses().get("succeeded", 0) == params.runs, "not every run succeeded")
    fig.check(not crashes, f"unexpected exits: {crashes}")
    fig.check(not history.projection_mismatches(), "stored records differ from their replayed events")
    fig.check(not history.phantom_attempts(), f"ledger rows without a lease: {history.phantom_attempts()}")
    return fig.finish()
