"""What commands print: wire-shaped JSON (records' ``to_wire()``) or rich tables for people."""

import json
import sys
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table

from runlane.application.trigger_run import TriggerRunResult
from runlane.domain.attempts import RunAttemptSummary
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord, RunSummary
from runlane.domain.timestamps import to_wire_time

_STATUS_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "running": "cyan",
    "retrying": "magenta",
    "released": "blue",
    "cancellation_requested": "yellow",
}


def console() -> Console:
    return Console(highlight=False, soft_wrap=False)


def emit_json(value: object) -> None:
    """One JSON document on stdout (UTF-8, compact enough to pipe to ``jq``)."""
    sys.stdout.write(json.dumps(value, ensure_ascii=False, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def _status(value: str) -> str:
    style = _STATUS_STYLE.get(value)
    return f"[{style}]{value}[/{style}]" if style else value


def _time(value: Any) -> str:
    return "" if value is None else to_wire_time(value)


def runs_table(runs: Iterable[RunSummary], title: str | None = None) -> Table:
    table = Table(title=title)
    for column in ("id", "task", "queue", "status", "attempts", "created", "updated"):
        table.add_column(column, no_wrap=column == "id")
    for run in runs:
        table.add_row(
            run.id,
            run.task_id,
            run.queue,
            _status(run.status.value),
            str(run.attempts),
            _time(run.created_at),
            _time(run.updated_at),
        )
    return table


def record_table(run: RunRecord) -> Table:
    table = Table(title=f"run {run.id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    wire = run.to_wire()
    for key, value in wire.items():
        shown = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
        table.add_row(key, _status(shown) if key == "status" else shown)
    return table


def events_table(events: Sequence[RunEventRecord]) -> Table:
    table = Table(title="events")
    for column in ("seq", "type", "at", "detail"):
        table.add_column(column)
    for event in events:
        detail = ""
        if event.failure is not None:
            detail = f"{event.failure.code.value}: {event.failure.message}"
        elif event.run_at is not None:
            detail = f"run_at {_time(event.run_at)}"
        elif event.reason is not None:
            detail = event.reason
        table.add_row(str(event.sequence), event.type.value, _time(event.occurred_at), detail)
    return table


def attempts_table(attempts: Sequence[RunAttemptSummary]) -> Table:
    table = Table(title="attempts")
    wires = [attempt.to_wire() for attempt in attempts]
    columns = list(dict.fromkeys(key for wire in wires for key in wire))
    for column in columns:
        table.add_column(column)
    for wire in wires:
        table.add_row(*(_cell(wire.get(column)) for column in columns))
    return table


def _cell(value: object) -> str:
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def trigger_wire(result: TriggerRunResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome.value,
        "run": result.run.to_wire(),
        "published": len(result.published),
        "failed": len(result.failed),
    }


def show_mapping(title: str, values: Mapping[str, object]) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    for key, value in values.items():
        table.add_row(key, _cell(value))
    return table
