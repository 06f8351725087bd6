"""A worker process freezes its startup heap and collects young objects less often."""

import gc
import weakref
from collections.abc import Iterator

import pytest

from runlane.entrypoints.gc_tuning import YOUNG_GENERATION_THRESHOLD, tune_worker_gc


@pytest.fixture(autouse=True)
def _restore_collector() -> Iterator[None]:
    """The test process's collector as it was: thresholds, enabled, nothing frozen."""
    threshold, enabled = gc.get_threshold(), gc.isenabled()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)
    if enabled:
        gc.enable()
    else:
        gc.disable()


class _Node:
    def __init__(self) -> None:
        self.other: object = self


def test_freezes_what_is_alive_and_raises_only_the_young_threshold() -> None:
    gc.set_threshold(700, 10, 10)
    frozen = tune_worker_gc()
    assert frozen > 1_000  # pytest's and runlane's own modules, at least
    assert gc.get_freeze_count() == frozen
    assert gc.get_threshold() == (YOUNG_GENERATION_THRESHOLD, 10, 10)


def test_a_higher_young_threshold_is_kept() -> None:
    gc.set_threshold(50_000, 20, 30)
    tune_worker_gc()
    assert gc.get_threshold() == (50_000, 20, 30)


def test_garbage_of_startup_is_collected_before_the_freeze() -> None:
    startup_cycle = _Node()
    alive = weakref.ref(startup_cycle)
    del startup_cycle  # a cycle: only the collector frees it
    tune_worker_gc()
    assert alive() is None


def test_cycles_made_after_the_tuning_are_still_collected_by_the_collector_itself() -> None:
    tune_worker_gc()
    later = _Node()
    alive = weakref.ref(later)
    del later
    # No gc.collect(): allocating past the young threshold has to run a collection on its own.
    kept = [[] for _ in range(3 * YOUNG_GENERATION_THRESHOLD)]
    assert len(kept) == 3 * YOUNG_GENERATION_THRESHOLD
    assert alive() is None


@pytest.mark.parametrize("how", ["disabled", "zero threshold"])
def test_a_collector_the_process_turned_off_is_left_alone(how: str) -> None:
    if how == "disabled":
        gc.disable()
    else:
        gc.set_threshold(0, 10, 10)
    before = gc.get_threshold()
    assert tune_worker_gc() == 0
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
