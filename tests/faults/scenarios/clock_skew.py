"""Scenario 6: three maintenance processes with clocks 30 s apart materialise schedules together.

Each ticker process runs on its own controlled clock (start -30 s, start, start +30 s, and a twin
of the last so that claims also race within a round) and the
harness steps all three in lockstep rounds (``step MS`` on stdin, one ``tick()`` each, run
concurrently) over cron and interval schedules for a span of simulated time. The occurrence id is
derived from the schedule and the fire time, and the database accepts one claim per id, so every
occurrence must be materialised exactly once however early or late a ticker's clock is; the set
of occurrences must be exactly the ones some ticker's clock reached.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from runlane import RunSourceType, occurrence_id
from runlane.domain.schedules import Schedule
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures
from tests.faults.history import load_history
from tests.faults.kit import base_config
from tests.faults.processes import ProcessGroup, write_config

NAME = "clock-skew"
SCHEDULES = (
    {"id": "cron-every-minute", "cron": "* * * * *"},
    {"id": "cron-every-5-minutes", "cron": "*/5 * * * *"},
    {"id": "every-45s", "every": "45s"},
    {"id": "every-2m", "every": "2m"},
)
# The three skewed clocks, plus a twin of the fastest one: the twins reach every occurrence in the
# same round, so each claim is also a true concurrent race, not only a late duplicate.
OFFSETS_MS = (-30_000, 0, 30_000, 30_000)
START = datetime(2025, 3, 1, 9, 0, 3, tzinfo=UTC)


@dataclass(frozen=True)
class Params:
    simulated_s: int
    step_ms: int
    round_timeout: float


CI = Params(simulated_s=20 * 60, step_ms=7_000, round_timeout=30)
FULL = Params(simulated_s=2 * 3600, step_ms=7_000, round_timeout=30)


def expected_occurrences(params: Params) -> set[str]:
    """Every occurrence some ticker's clock reached: the latest due fire at each of its ticks."""
    schedules = [Schedule(**entry) for entry in SCHEDULES]  # type: ignore[arg-type]
    rounds = params.simulated_s * 1000 // params.step_ms
    found = set()
    for offset in OFFSETS_MS:
        for index in range(1, rounds + 1):
            now = START + timedelta(milliseconds=offset + index * params.step_ms)
            for schedule in schedules:
                fire = schedule.latest_due_fire(now)
                if fire is not None:
                    found.add(occurrence_id(schedule.id, fire))
    return found


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("skew")
    logs = world.scratch_dir("skew")
    config = base_config(world, schema, logs, schedules=list(SCHEDULES))
    path = str(write_config(logs, "config", config))
    start_ms = int(START.timestamp() * 1000)
    rounds = params.simulated_s * 1000 // params.step_ms
    materialized: Counter[str] = Counter()
    errors: list[str] = []
    with ProcessGroup(logs) as group:
        tickers = []
        for index, offset in enumerate(OFFSETS_MS):
            name = f"tick{offset // 1000:+d}s" + ("-twin" if offset in OFFSETS_MS[:index] else "")
            tickers.append(
                group.spawn(
                    name, "ticker.py", path, name, "lockstep", str(start_ms), str(offset), ready=False
                )
            )
        group.wait_ready()
        for _ in range(rounds):
            for ticker in tickers:
                ticker.send(f"step {params.step_ms}")
            for ticker in tickers:
                answer = ticker.read_line(params.round_timeout)
                if answer.startswith("done "):
                    materialized[ticker.name] += int(json.loads(answer[5:])["materialized_schedules"])
                else:
                    errors.append(f"{ticker.name}: {answer}")
        for ticker in tickers:
            ticker.send("exit")
        for ticker in tickers:
            ticker.expect_exit = True
            fig.check(ticker.wait(timeout=30) == 0, f"{ticker.name} exited uncleanly")
        crashes = group.reap_unexpected() + group.exits
    history = load_history(world.libpq_dsn, schema)
    per_occurrence = Counter(
        run.source.occurrence_id
        for run in history.runs.values()
        if run.source.type is RunSourceType.SCHEDULE and run.source.occurrence_id is not None
    )
    expected = expected_occurrences(params)
    missing = expected - set(per_occurrence)
    unexpected = set(per_occurrence) - expected
    twice = [occurrence for occurrence, count in per_occurrence.items() if count > 1]
    fig.runs = len(history.runs)
    fig.lost = len(missing)
    fig.duplicated = len(twice)
    fig.add(
        simulated_min=params.simulated_s // 60,
        rounds=rounds,
        tickers=len(OFFSETS_MS),
        offsets_s=",".join(f"{offset // 1000:+d}" for offset in OFFSETS_MS),
        occurrences=len(expected),
        by_schedule=dict(Counter(occ.split("@")[0] for occ in per_occurrence)),
        won_by=dict(materialized),
        tick_errors=len(errors),
    )
    fig.check(not unexpected, f"occurrences no clock reached: {sorted(unexpected)[:5]}")
    fig.check(sum(materialized.values()) == fig.runs, "tickers claimed more materialisations than runs exist")
    fig.check(not errors, f"tick errors: {errors[:3]}")
    fig.check(not crashes, f"unexpected exits: {crashes}")
    fig.check(not history.projection_mismatches(), "stored records differ from their replayed events")
    return fig.finish()
