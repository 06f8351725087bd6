"""Scenario 9: golden histories written by this version replay to exactly the runs they recorded."""

from __future__ import annotations

from dataclasses import dataclass

from runlane import RunEventType
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures
from tests.faults.golden import covered_event_types, load_golden, replay

NAME = "golden-replay"


@dataclass(frozen=True)
class Params:
    pass


CI = FULL = Params()


def run(world: FaultWorld | None, params: Params) -> Figures:
    fig = Figures(NAME)
    runs = load_golden()
    problems = [problem for golden in runs for problem in replay(golden)]
    covered = covered_event_types(runs)
    fig.runs = len(runs)
    fig.lost = len(problems)
    fig.add(
        events=sum(len(golden.events) for golden in runs),
        event_types=f"{len(covered)}/{len(RunEventType)}",
    )
    fig.check(len(runs) >= 10, f"only {len(runs)} golden runs found")
    fig.check(
        covered == set(RunEventType), f"event types without a golden run: {set(RunEventType) - covered}"
    )
    for problem in problems:
        fig.check(False, problem)
    return fig.finish()
