"""Golden histories (``tests/faults/golden/*.json``) replay to exactly the runs they recorded."""

from __future__ import annotations

import pytest

from runlane import RunEventType
from tests.faults.golden import GoldenRun, covered_event_types, load_golden, replay

GOLDEN = load_golden()


@pytest.mark.parametrize("golden", GOLDEN, ids=[golden.name for golden in GOLDEN])
def test_each_golden_log_projects_to_its_recorded_run(golden: GoldenRun) -> None:
    assert replay(golden) == []


def test_the_golden_logs_cover_every_event_type() -> None:
    assert len(GOLDEN) >= 10
    assert covered_event_types(GOLDEN) == set(RunEventType)


def test_a_changed_history_is_detected() -> None:
    """The comparison is not vacuous: altering one recorded field makes the replay differ."""
    golden = next(g for g in GOLDEN if g.name == "retried_then_succeeded")
    tampered = GoldenRun(golden.name, golden.description, golden.events, {**golden.run, "failures": 0})
    assert replay(tampered) != []
