"""``runlane demo``: run the demo application on the local lane with a live view, then summarise."""

import asyncio
import time
from collections import Counter

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table

from runlane import RunRecord, RunStatus, TriggerOutcomeType
from runlane.application.runtime import Runlane
from runlane.entrypoints.demo_app import DemoState, build_demo_runtime

_STATUS_STYLE = {
    RunStatus.SUCCEEDED: "green",
    RunStatus.FAILED: "red",
    RunStatus.CANCELLED: "yellow",
    RunStatus.RUNNING: "cyan",
    RunStatus.RETRYING: "magenta",
    RunStatus.RELEASED: "blue",
    RunStatus.CANCELLATION_REQUESTED: "yellow",
}


def _runs_table(runs: list[RunRecord], title: str) -> Table:
    table = Table(title=title, expand=False)
    for column in ("run", "task", "source", "status", "attempts", "retries", "releases"):
        table.add_column(column)
    for run in sorted(runs, key=lambda r: (r.created_at, r.id)):
        style = _STATUS_STYLE.get(run.status, "white")
        table.add_row(
            run.id[:16],
            run.task_id,
            run.source.type.value,
            f"[{style}]{run.status.value}[/{style}]",
            str(run.attempts),
            str(run.retries),
            str(run.releases),
        )
    return table


async def _all_runs(runtime: Runlane) -> list[RunRecord]:
    runs: list[RunRecord] = []
    cursor: str | None = None
    while True:
        page = await runtime.runs.list(limit=100, cursor=cursor)
        for summary in page.data:
            record = await runtime.runs.get(summary.id)
            if record is not None:
                runs.append(record)
        if page.next_cursor is None:
            return runs
        cursor = page.next_cursor


async def run_demo(console: Console, *, max_seconds: float = 15.0) -> int:
    """Returns a process exit code: 0 when every demo expectation held."""
    state = DemoState()
    runtime = build_demo_runtime(state)
    tasks = runtime.tasks
    notes: list[str] = []
    async with runtime:
        first = await runtime.trigger(tasks.send_email, {"to": "ada@example.com"})
        duplicate = await runtime.trigger(tasks.send_email, {"to": "ada@example.com"})
        notes.append(
            f"idempotent duplicate trigger: {duplicate.outcome.value} "
            f"(same run: {duplicate.run.id == first.run.id})"
        )
        await runtime.trigger(tasks.send_email, {"to": "grace@example.com"})
        flaky = await runtime.trigger(tasks.flaky_report, {"day": 1})
        poll = await runtime.trigger(tasks.poll_export, {"export_id": "exp_42"})
        slow = await runtime.trigger(tasks.slow_job, {"n": 1})

        worker = runtime.worker(concurrency=4, poll_interval="50ms", lease_duration="5s")
        started = time.monotonic()
        cancelled = rerun_done = False
        rerun_id: str | None = None
        with Live(console=console, refresh_per_second=8, transient=True) as live:
            while time.monotonic() - started < max_seconds:
                tick = await runtime.tick()
                if tick.materialized_schedules:
                    notes.append(f"tick materialized {tick.materialized_schedules} scheduled run(s)")
                slow_run = await runtime.runs.get(slow.run.id)
                if not cancelled and slow_run is not None and slow_run.status is RunStatus.RUNNING:
                    after = await runtime.runs.cancel(slow.run.id, reason="operator_requested")
                    notes.append(f"cancel while running: {after.status.value}")
                    cancelled = True
                first_run = await runtime.runs.get(first.run.id)
                if not rerun_done and first_run is not None and first_run.status is RunStatus.SUCCEEDED:
                    child = await runtime.runs.rerun(first.run.id)
                    rerun_id = child.run.id
                    notes.append(f"rerun of a succeeded run: new child {child.run.id[:16]}")
                    rerun_done = True
                runs = await _all_runs(runtime)
                live.update(Group(_runs_table(runs, "runlane demo — local lane (live)")))
                if _finished(runs, state, rerun_done):
                    break
                await asyncio.sleep(0.12)
        await worker.stop()
        runs = await _all_runs(runtime)
        console.print(_runs_table(runs, "runlane demo — final runs"))
        events = await runtime.runs.events(flaky.run.id)
        history = Table(title=f"event history of {flaky.run.id[:16]} (reports.flaky)")
        for column in ("seq", "type", "at", "detail"):
            history.add_column(column)
        for event in events.data:
            detail = ""
            if event.failure is not None:
                detail = f"{event.failure.code.value}: {event.failure.message}"
            elif event.run_at is not None:
                detail = f"run_at {event.run_at.time().isoformat(timespec='milliseconds')}"
            history.add_row(
                str(event.sequence),
                event.type.value,
                event.occurred_at.time().isoformat("milliseconds"),
                detail,
            )
        console.print(history)
        for note in notes:
            console.print(f"• {note}")
        counts = Counter(run.status.value for run in runs)
        console.print(f"statuses: {dict(sorted(counts.items()))}; emails sent: {state.sent_emails}")
        ok = _expectations(runs, first.run.id, duplicate.outcome, poll.run.id, slow.run.id, rerun_id, state)
        console.print(
            "[green]demo finished: every job shape behaved as documented[/green]"
            if ok
            else "[red]demo expectations failed[/red]"
        )
        return 0 if ok else 1


def _finished(runs: list[RunRecord], state: DemoState, rerun_done: bool) -> bool:
    return rerun_done and state.pings >= 1 and all(run.is_terminal for run in runs)


def _expectations(
    runs: list[RunRecord],
    first_id: str,
    duplicate_outcome: TriggerOutcomeType,
    poll_id: str,
    slow_id: str,
    rerun_id: str | None,
    state: DemoState,
) -> bool:
    by_id = {run.id: run for run in runs}
    flaky = [run for run in runs if run.task_id == "reports.flaky"]
    return (
        duplicate_outcome is TriggerOutcomeType.RETURNED_EXISTING
        and by_id[first_id].status is RunStatus.SUCCEEDED
        and by_id[poll_id].status is RunStatus.SUCCEEDED
        and by_id[poll_id].releases == 2
        and by_id[slow_id].status is RunStatus.CANCELLED
        and len(flaky) == 1
        and flaky[0].status is RunStatus.SUCCEEDED
        and flaky[0].retries == 2
        and rerun_id is not None
        and by_id[rerun_id].status is RunStatus.SUCCEEDED
        and state.pings >= 1
    )
