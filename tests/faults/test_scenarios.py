"""The fault scenarios in their CI form (``python -m tests.faults --full`` runs the full form)."""

from __future__ import annotations

from types import ModuleType

from tests.faults.environment import FaultWorld
from tests.faults.reporting import verify
from tests.faults.scenarios import (
    clock_skew,
    commit_faults,
    db_restart,
    fencing,
    graceful_shutdown,
    hostile_input,
    kill9,
    poison,
    wakeups,
)


def _run(scenario: ModuleType, world: FaultWorld) -> None:
    verify(scenario.run(world, scenario.CI))


def test_kill9_mid_attempt_loses_nothing(world: FaultWorld) -> None:
    _run(kill9, world)


def test_a_paused_holder_is_fenced_out(world: FaultWorld) -> None:
    _run(fencing, world)


def test_database_restarts_and_dropped_connections(world: FaultWorld) -> None:
    _run(db_restart, world)


def test_writes_that_commit_but_lose_their_reply(world: FaultWorld) -> None:
    _run(commit_faults, world)


def test_a_poison_run_fails_after_its_budget_without_a_hot_loop(world: FaultWorld) -> None:
    _run(poison, world)


def test_duplicate_and_stale_wakeups_through_sqs(world: FaultWorld) -> None:
    _run(wakeups, world)


def test_skewed_clocks_materialise_each_occurrence_once(world: FaultWorld) -> None:
    _run(clock_skew, world)


def test_sigterm_mid_drain_loses_and_burns_nothing(world: FaultWorld) -> None:
    _run(graceful_shutdown, world)


def test_hostile_input_is_rejected_cleanly_or_stored_exactly(world: FaultWorld) -> None:
    _run(hostile_input, world)


def test_every_scenario_runs_from_the_command_line() -> None:
    from tests.faults.scenarios.registry import SCENARIOS

    tested = {
        clock_skew,
        commit_faults,
        db_restart,
        fencing,
        graceful_shutdown,
        hostile_input,
        kill9,
        poison,
        wakeups,
    }
    assert tested <= set(SCENARIOS)
    assert len({scenario.NAME for scenario in SCENARIOS}) == len(SCENARIOS) == len(tested) + 1  # + golden
