"""Scenario 3b: writes that commit but whose reply is lost, then are retried.

Part one is exact, in-process, on a controlled clock (``CommitThenFailStorage`` around real
Postgres): for each write on the hot paths the first call commits and raises a retryable
``internal_error``, the caller retries the way real callers do, and the test checks that the retry
met a conflict or an existing run instead of writing twice:

* trigger with a caller-chosen run id: the retry is a ``storage_conflict`` (``sequence``);
* trigger with an idempotency key: the retry returns the existing run;
* an attempt's outcome: replaying the identical append is a ``sequence`` conflict;
* a batch claim: the leased-but-unexecuted run comes back through lease expiry (one failure);
* lease recovery and due-delivery requests in ``tick``: the retried tick finds nothing to do.

Part two runs worker processes and a ticker whose storage loses the reply of a share of all
appends, claims, heartbeats and outbox completions, and checks the usual figures plus "one outbox
row per ``run.delivery_requested`` event".
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from runlane import (
    ErrorCode,
    RunEventType,
    Runlane,
    RunlaneError,
    StorageConflictKind,
    TriggerOutcomeType,
)
from runlane.application.execute_next import claim_runs
from runlane.application.execution_options import execution_options
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES
from runlane.ports.storage_commands import GetRun, ListRunEvents
from runlane.testing import ControlledClock
from tests.faults.environment import FaultWorld
from tests.faults.faulty_storage import CommitThenFailStorage, fail_next
from tests.faults.figures import Figures
from tests.faults.history import count_status, load_history
from tests.faults.kit import base_config, seed_runs
from tests.faults.logs import messages
from tests.faults.processes import ProcessGroup, write_config
from tests.faults.procs.app import ASYNC_TASK, SYNC_TASK, build_runtime

NAME = "commit-faults"
TERMINAL = [s.value for s in TERMINAL_RUN_STATUSES]
ALL_WRITES = (
    "append_run_events",
    "append_many_run_events",
    "claim_due_runs",
    "heartbeat_run_lease",
    "complete_outbox_messages",
)


@dataclass(frozen=True)
class Params:
    runs: int
    workers: int
    rate: float
    timeout: float


CI = Params(runs=200, workers=2, rate=0.05, timeout=120)
FULL = Params(runs=1000, workers=3, rate=0.05, timeout=600)


class _Exact:
    """The in-process half: one runtime on a controlled clock over the faulty storage."""

    def __init__(self, runtime: Runlane, storage: CommitThenFailStorage, clock: ControlledClock) -> None:
        self.runtime = runtime
        self.storage = storage
        self.clock = clock
        self.checks: list[tuple[bool, str]] = []
        self.cases = 0

    def check(self, ok: bool, message: str) -> None:
        self.checks.append((ok, message))

    def arm(self, *operations: str) -> None:
        self.storage.fail_with(fail_next(*operations))

    async def events(self, run_id: str) -> list[RunEventType]:
        page = await self.storage.inner.list_run_events(
            ListRunEvents(environment=self.runtime.environment, run_id=run_id)
        )
        return [event.type for event in page.data]

    async def lost_reply(self, call: Any) -> RunlaneError | None:
        try:
            await call
        except RunlaneError as exc:
            return exc
        return None

    async def trigger_with_run_id(self) -> str:
        self.arm("append_run_events")
        error = await self.lost_reply(self.runtime.trigger(ASYNC_TASK, {"work_ms": 0}, run_id="run_cf_id"))
        self.check(error is not None and error.code is ErrorCode.INTERNAL_ERROR, "create: reply not lost")
        retry = await self.lost_reply(self.runtime.trigger(ASYNC_TASK, {"work_ms": 0}, run_id="run_cf_id"))
        self.check(
            retry is not None and retry.conflict_kind is StorageConflictKind.SEQUENCE,
            f"create retry: expected a sequence conflict, got {retry!r}",
        )
        self.cases += 1
        return "run_cf_id"

    async def trigger_with_key(self) -> str:
        self.arm("append_run_events")
        first = await self.lost_reply(
            self.runtime.trigger(ASYNC_TASK, {"work_ms": 0}, idempotency_key="cf-key")
        )
        self.check(first is not None, "keyed create: reply not lost")
        again = await self.runtime.trigger(ASYNC_TASK, {"work_ms": 0}, idempotency_key="cf-key")
        self.check(again.outcome is TriggerOutcomeType.RETURNED_EXISTING, "keyed retry created a new run")
        self.cases += 1
        return again.run.id

    async def outcome(self) -> None:
        self.arm("append_run_events")
        error = await self.lost_reply(self.runtime.execute_next())
        self.check(error is not None and error.retryable, f"outcome: reply not lost ({error!r})")
        replay = await self.lost_reply(
            self.storage.inner.append_run_events(self.storage.last["append_run_events"])
        )
        self.check(
            replay is not None and replay.conflict_kind is StorageConflictKind.SEQUENCE,
            f"outcome replay: expected a sequence conflict, got {replay!r}",
        )
        self.check(await self.runtime.execute_next() is None, "outcome retry found the run due again")
        self.cases += 1

    async def claim_and_recover(self) -> str:
        run = await self.runtime.trigger(ASYNC_TASK, {"work_ms": 0}, dispatch="deferred")
        self.arm("claim_due_runs")
        options = execution_options(default_worker_id="cf-claimer", lease_duration="2s")
        error = await self.lost_reply(claim_runs(self.runtime.context, options, queues=None, limit=10))
        self.check(error is not None, "claim: reply not lost")
        self.clock.advance("3s")
        self.arm("append_run_events")  # lease recovery commits, reply lost; tick is retried
        self.check(await self.lost_reply(self.runtime.tick()) is not None, "tick: reply not lost")
        self.check((await self.runtime.tick()).expired_leases == 0, "retried tick expired the lease again")
        self.clock.advance("1s")  # past the retry backoff
        self.arm("append_run_events")  # the due-delivery request of the retrying run
        self.check(await self.lost_reply(self.runtime.tick()) is not None, "delivery tick: reply not lost")
        self.check((await self.runtime.tick()).requested_deliveries == 0, "delivery requested twice")
        final = await self.runtime.execute_next()
        self.check(final is not None and final.status.value == "succeeded", f"recovered run: {final!r}")
        self.cases += 4
        return run.run.id

    async def run_all(self) -> list[str]:
        ids = [await self.trigger_with_run_id()]
        await self.outcome()  # one due run at a time, so execute_next picks exactly that one
        ids.append(await self.trigger_with_key())
        await self.outcome()
        ids.append(await self.claim_and_recover())
        for run_id in ids:
            fresh = await self.storage.inner.get_run(
                GetRun(environment=self.runtime.environment, run_id=run_id)
            )
            self.check(fresh is not None and fresh.is_terminal, f"{run_id} not terminal")
        return ids


async def _exact(config: dict[str, Any]) -> tuple[_Exact, list[str]]:
    clock = ControlledClock()
    wrapped: list[CommitThenFailStorage] = []

    def wrap(inner: Any) -> CommitThenFailStorage:
        wrapped.append(CommitThenFailStorage(inner, fail_next()))
        return wrapped[0]

    retry = {"max_attempts": 3, "backoff": "500ms"}
    async with build_runtime({**config, "retry": retry}, "exact", clock=clock, wrap_storage=wrap) as runtime:
        exact = _Exact(runtime, wrapped[0], clock)
        ids = await exact.run_all()
    return exact, ids


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("commit")
    logs = world.scratch_dir("commit")
    config = base_config(world, schema, logs, retry={"max_attempts": 10, "backoff": "200ms"})
    exact, exact_ids = asyncio.run(_exact(config))
    faulty = {**config, "commit_then_fail": {"rate": params.rate, "operations": list(ALL_WRITES), "seed": 7}}
    path = str(write_config(logs, "config", faulty))
    items = [(SYNC_TASK if i % 2 else ASYNC_TASK, {"work_ms": 20}) for i in range(params.runs)]
    run_ids = seed_runs(config, items)
    with ProcessGroup(logs) as group:
        group.spawn("ticker", "ticker.py", path, "ticker", "loop", ready=False)
        for index in range(params.workers):
            group.spawn(f"w{index}", "worker.py", path, f"w{index}", ready=False)
        group.wait_ready()
        deadline = time.monotonic() + params.timeout
        while time.monotonic() < deadline:
            if count_status(world.libpq_dsn, schema, TERMINAL) >= params.runs + len(exact_ids):
                break
            group.reap_unexpected()
            time.sleep(0.2)
        for process in group.processes.values():
            process.terminate()
        for process in group.processes.values():
            process.wait(timeout=30)
        crashes = group.reap_unexpected() + group.exits
    history = load_history(world.libpq_dsn, schema)
    fig.runs = len(history.runs)
    fig.lost = len(history.lost())
    fig.duplicated = len(history.duplicated())
    exact_failed = [message for ok, message in exact.checks if not ok]
    outbox_rows = sum(history.outbox_rows.values())
    delivery_events = history.count_events(RunEventType.DELIVERY_REQUESTED)
    fig.add(
        exact_cases=exact.cases,
        exact_checks=len(exact.checks),
        lost_claim_replies=len(messages(logs, "worker claim failed")),
        lost_outcome_replies=len(messages(logs, "attempt outcome not recorded")),
        lease_expired=history.count_events(RunEventType.LEASE_EXPIRED),
        outbox_rows=outbox_rows,
        delivery_requested=delivery_events,
        statuses=dict(history.statuses()),
        crashes=len(crashes),
    )
    for message in exact_failed:
        fig.check(False, f"exact: {message}")
    exact_history = history.select(exact_ids)
    for run_id in exact_ids:
        types = [e.type for e in exact_history.events.get(run_id, [])]
        fig.check(
            types.count(RunEventType.CREATED) == 1, f"{run_id}: {types.count(RunEventType.CREATED)} creates"
        )
    fig.check(
        exact_history.count_events(RunEventType.LEASE_EXPIRED) == 1,
        "the lost claim was not recovered by exactly one lease expiry",
    )
    fig.check(len(history.select(run_ids).runs) == params.runs, "the seeded runs are not all there")
    fig.check(
        outbox_rows == delivery_events, f"{outbox_rows} outbox rows for {delivery_events} delivery events"
    )
    fig.check(history.statuses().get("succeeded", 0) == fig.runs, "not every run succeeded")
    fig.check(len(messages(logs, "worker claim failed")) >= 1, "no claim reply was lost: raise the rate")
    fig.check(not crashes, f"unexpected process exits: {crashes}")
    fig.check(not history.projection_mismatches(), "stored records differ from their replayed events")
    fig.check(not history.phantom_attempts(), f"ledger rows without a lease: {history.phantom_attempts()}")
    return fig.finish()
