"""Golden run histories: event logs written by runlane, with the run each one projects to.

The files next to this module (``*.json``) are fixtures, written by ``python -m tests.faults.golden
--write`` and committed. Tests only read them: replaying each log through ``project_run_events``
must give exactly the recorded run (compared as wire JSON), so a reducer or wire-format change that
would reinterpret stored history fails loudly instead of silently changing old runs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from runlane import RunEventRecord, RunEventType, project_run_events

GOLDEN_DIR = Path(__file__).resolve().parent


@dataclass(frozen=True)
class GoldenRun:
    name: str
    description: str
    events: list[dict[str, Any]]
    run: dict[str, Any]


def load_golden(directory: Path = GOLDEN_DIR) -> list[GoldenRun]:
    runs = []
    for path in sorted(directory.glob("*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        runs.append(GoldenRun(path.stem, data["description"], data["events"], data["run"]))
    return runs


def replay(golden: GoldenRun) -> list[str]:
    """What differs when the recorded events are replayed through this version's reducer."""
    problems = []
    records = [RunEventRecord.from_wire(event) for event in golden.events]
    for record, wire in zip(records, golden.events, strict=True):
        if record.to_wire() != wire:
            problems.append(f"{golden.name}: event {wire.get('sequence')} does not round-trip its wire form")
    projected = project_run_events(records, 0).to_wire()
    if projected != golden.run:
        changed = sorted(
            k for k in projected.keys() | golden.run.keys() if projected.get(k) != golden.run.get(k)
        )
        problems.append(f"{golden.name}: projects to a different run (fields {', '.join(changed)})")
    return problems


def covered_event_types(runs: list[GoldenRun]) -> set[RunEventType]:
    return {RunEventType(event["type"]) for golden in runs for event in golden.events}
