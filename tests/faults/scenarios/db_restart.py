"""Scenario 3a: the database restarts, goes away, and drops every runlane connection under load.

Worker processes drain a backlog while the harness terminates every runlane backend
(``pg_terminate_backend``), restarts the server (``pg_ctl restart -m fast``), stops it for a few
seconds (an outage), and terminates the backends again. Workers must ride it out in-process:
claim errors back off (checked from their logs: the gap after the k-th consecutive failure is at
least ``min(5, 0.05 * 2**k)`` s, even while attempts failing in the outage free their slots), no
process exits, no run is lost or executed twice. Attempts whose outcome could not be written come
back through lease expiry.
"""

from __future__ import annotations

import itertools
import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import psycopg

from runlane import RunEventType
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures
from tests.faults.history import count_status, load_history
from tests.faults.kit import base_config, seed_runs
from tests.faults.logs import messages
from tests.faults.processes import ProcessGroup, write_config
from tests.faults.procs.app import ASYNC_TASK, SYNC_TASK

NAME = "db-restart"
TERMINAL = [s.value for s in TERMINAL_RUN_STATUSES]


@dataclass(frozen=True)
class Params:
    runs: int
    workers: int
    work_ms: int
    # (fraction of runs terminal, "terminate" | "restart" | "outage"): when to inject what
    faults: tuple[tuple[float, str], ...]
    outage_s: float
    timeout: float


CI = Params(
    runs=300,
    workers=3,
    work_ms=60,
    faults=((0.15, "terminate"), (0.3, "restart"), (0.5, "outage"), (0.75, "terminate")),
    outage_s=3.0,
    timeout=150,
)
FULL = Params(
    runs=1000,
    workers=3,
    work_ms=60,
    faults=(
        (0.1, "terminate"),
        (0.2, "restart"),
        (0.35, "outage"),
        (0.5, "terminate"),
        (0.65, "restart"),
        (0.8, "outage"),
        (0.9, "terminate"),
    ),
    outage_s=5.0,
    timeout=600,
)


def terminate_runlane_backends(libpq_dsn: str) -> int:
    with psycopg.connect(libpq_dsn, autocommit=True, connect_timeout=5) as conn:
        rows = conn.execute(
            "select pg_terminate_backend(pid) from pg_stat_activity "
            "where application_name like 'runlane-%%' and pid <> pg_backend_pid()"
        ).fetchall()
    return sum(1 for row in rows if row[0])


def backoff_gaps(records: list[dict[str, Any]]) -> list[list[tuple[int, float]]]:
    """Per worker, each streak of consecutive claim failures as ``(k, gap after failure k)``.

    The worker logs ``failures=k`` with the k-th failure in a row, so a streak is a run of records
    whose counts go 1, 2, 3, ...; the gap is the time from failure k to failure k + 1.
    """
    by_worker: dict[object, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_worker[record["worker"]].append(record)
    streaks: list[list[tuple[int, float]]] = []
    for items in by_worker.values():
        items.sort(key=lambda r: float(r["t"]))
        streak: list[tuple[int, float]] = []
        for earlier, later in itertools.pairwise(items):
            k = int(earlier["failures"])
            if int(later["failures"]) == k + 1:
                streak.append((k, float(later["t"]) - float(earlier["t"])))
            elif streak:
                streaks.append(streak)
                streak = []
        if streak:
            streaks.append(streak)
    return streaks


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("dbrestart")
    logs = world.scratch_dir("dbrestart")
    config = base_config(world, schema, logs, retry={"max_attempts": 10, "backoff": "200ms"})
    path = str(write_config(logs, "config", config))
    items = [(SYNC_TASK if i % 2 else ASYNC_TASK, {"work_ms": params.work_ms}) for i in range(params.runs)]
    run_ids = seed_runs(config, items)
    terminated = restarts = outages = 0
    with ProcessGroup(logs) as group:
        group.spawn("ticker", "ticker.py", path, "ticker", "loop", ready=False)
        for index in range(params.workers):
            group.spawn(f"w{index}", "worker.py", path, f"w{index}", ready=False)
        group.wait_ready()
        pending = list(params.faults)
        deadline = time.monotonic() + params.timeout
        while time.monotonic() < deadline:
            done = count_status(world.libpq_dsn, schema, TERMINAL)
            if done >= params.runs:
                break
            if pending and done >= pending[0][0] * params.runs:
                _, fault = pending.pop(0)
                if fault == "restart":
                    world.cluster.restart()
                    restarts += 1
                elif fault == "outage":
                    world.outage(params.outage_s)
                    outages += 1
                else:
                    terminated += terminate_runlane_backends(world.libpq_dsn)
            group.reap_unexpected()
            time.sleep(0.1)
        fig.check(not pending, f"faults not injected before the backlog drained: {pending}")
        for process in group.processes.values():
            process.terminate()
        for process in group.processes.values():
            process.wait(timeout=30)
        crashes = group.reap_unexpected() + group.exits
        exit_codes = {name: p.popen.returncode for name, p in group.processes.items() if p.popen}
    history = load_history(world.libpq_dsn, schema).select(run_ids)
    claim_failures = messages(logs, "worker claim failed")
    streaks = backoff_gaps(claim_failures)
    # 5 ms of slack: log timestamps are wall-clock, the backoff timer is monotonic.
    too_fast = [(k, gap) for streak in streaks for k, gap in streak if gap < min(5.0, 0.05 * 2**k) - 0.005]
    longest = max(streaks, key=len, default=[])
    fig.runs = len(history.runs)
    fig.lost = len(history.lost())
    fig.duplicated = len(history.duplicated())
    fig.add(
        restarts=restarts,
        outages=outages,
        backends_terminated=terminated,
        worker_process_restarts=len(crashes),
        claim_failures=len(claim_failures),
        longest_backoff_ms=",".join(str(round(gap * 1000)) for _, gap in longest) or "-",
        outcomes_not_recorded=len(messages(logs, "attempt outcome not recorded")),
        lease_expired=history.count_events(RunEventType.LEASE_EXPIRED),
        statuses=dict(history.statuses()),
    )
    fig.check(restarts >= 1 and outages >= 1 and terminated >= 1, "not every kind of fault happened")
    fig.check(len(longest) >= 3, f"no outage long enough to see the backoff grow: {longest}")
    fig.check(not crashes, f"worker processes exited during the outages: {crashes}")
    fig.check(all(code == 0 for code in exit_codes.values()), f"unclean exits after SIGTERM: {exit_codes}")
    fig.check(len(claim_failures) >= 1, "no claim failed: the restart did not reach the workers")
    fig.check(not too_fast, f"claim retries faster than the backoff: {too_fast[:5]}")
    fig.check(history.statuses().get("succeeded", 0) == params.runs, "not every run succeeded")
    fig.check(not history.projection_mismatches(), "stored records differ from their replayed events")
    fig.check(not history.phantom_attempts(), f"ledger rows without a lease: {history.phantom_attempts()}")
    return fig.finish()
