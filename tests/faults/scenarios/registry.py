"""Every scenario module, in run order."""

from types import ModuleType

from tests.faults.scenarios import (
    clock_skew,
    commit_faults,
    db_restart,
    fencing,
    golden_replay,
    graceful_shutdown,
    hostile_input,
    kill9,
    poison,
    wakeups,
)

SCENARIOS: tuple[ModuleType, ...] = (
    kill9,
    fencing,
    db_restart,
    commit_faults,
    poison,
    wakeups,
    clock_skew,
    graceful_shutdown,
    hostile_input,
    golden_replay,
)
