"""bench/report.py over several rounds: medians per figure, the drain setting by its median, and
the range of per-round ratios, so one noisy round cannot decide a ratio alone."""

from typing import Any

from bench.common import host_cpu_ticks, steal_pct
from bench.report import markdown_tables, medians, rounds_of, steal_summary


def _fig(system: str, workload: str, value: float, round_number: int, **extra: Any) -> dict[str, Any]:
    return {
        "system": system,
        "workload": workload,
        "figure": extra.pop("figure", "throughput"),
        "value": value,
        "unit": "runs/s",
        "better": "higher",
        "step": extra.pop("step", workload),
        "round": round_number,
        **extra,
    }


def _row(table: str, workload: str) -> str:
    section = table.split(f"### {workload}\n", 1)[1]
    return next(line for line in section.splitlines() if line.startswith("| throughput"))


def test_each_figure_is_the_median_of_its_rounds_with_the_values_kept_by_round() -> None:
    figures = [_fig("runlane", "enqueue_one", v, r) for r, v in ((1, 900.0), (2, 500.0), (3, 700.0))]
    (median,) = medians(figures)
    assert median["value"] == 700.0
    assert median["by_round"] == {1: 900.0, 2: 500.0, 3: 700.0}
    assert rounds_of(figures) == 3


def test_the_ratio_is_of_medians_and_its_brackets_are_the_per_round_extremes() -> None:
    runlane = [(1, 900.0), (2, 500.0), (3, 700.0)]
    peer = [(1, 1000.0), (2, 1000.0), (3, 2000.0)]
    figures = [_fig("runlane", "enqueue_one", v, r) for r, v in runlane]
    figures += [_fig("pgqueuer", "enqueue_one", v, r) for r, v in peer]

    row = _row(markdown_tables(figures, ["pgqueuer"]), "enqueue_one")

    # medians 700 / 1000; per round 0.90, 0.50, 0.35
    assert "| 700.0 runs/s | 1,000 | 0.70x (0.35-0.90) |" in row
    assert "median of 3 interleaved rounds" in markdown_tables(figures, ["pgqueuer"])


def test_the_drain_setting_shown_is_the_one_with_the_best_median_not_the_best_single_round() -> None:
    lucky = [(1, 5000.0), (2, 1000.0), (3, 1100.0)]  # one fast round, median 1,100
    steady = [(1, 2000.0), (2, 2100.0), (3, 1900.0)]  # median 2,000
    figures = [
        _fig("runlane", "drain_1p", v, r, step="drain_1p_c10", detail={"concurrency": 10}) for r, v in lucky
    ]
    figures += [
        _fig("runlane", "drain_1p", v, r, step="drain_1p_c100", detail={"concurrency": 100})
        for r, v in steady
    ]

    row = _row(markdown_tables(figures, []), "drain_1p")

    assert "concurrency=100" in row
    assert "2,000 runs/s" in row


def test_a_single_round_prints_the_plain_ratio_without_brackets_or_a_rounds_line() -> None:
    figures = [_fig("runlane", "enqueue_one", 700.0, 1), _fig("pgqueuer", "enqueue_one", 1000.0, 1)]
    table = markdown_tables(figures, ["pgqueuer"])
    assert "| 0.70x |" in _row(table, "enqueue_one")
    assert "interleaved rounds" not in table


def test_the_table_ends_with_each_systems_host_steal_per_round_mean_and_highest() -> None:
    figures = [
        _fig("runlane", "enqueue_one", 700.0, 1, host_steal_pct=2.0),
        _fig("runlane", "enqueue_one", 700.0, 1, figure="cpu_ms_per_run", host_steal_pct=2.0),
        _fig("runlane", "drain_1p", 3000.0, 1, host_steal_pct=6.0),
        _fig("runlane", "enqueue_one", 500.0, 2, host_steal_pct=30.0),
        _fig("pgqueuer", "enqueue_one", 1000.0, 1, host_steal_pct=None),
        _fig("pgqueuer", "enqueue_one", 900.0, 2, host_steal_pct=12.5),
    ]
    summary = steal_summary(figures)
    # runlane round 1: two steps (one reading each, however many figures) -> mean 4.0, highest 6.0
    assert summary is not None
    assert "runlane 4.0% (max 6.0%) / 30.0% (max 30.0%)" in summary
    assert "pgqueuer 12.5% (max 12.5%)" in summary  # round 1 had no reading
    assert markdown_tables(figures, ["pgqueuer"]).endswith(summary)
    assert steal_summary([_fig("runlane", "enqueue_one", 1.0, 1)]) is None


def test_steal_is_the_share_of_all_cpu_ticks_between_two_readings() -> None:
    assert steal_pct((100, 1000), (150, 2000)) == 5.0
    assert steal_pct(None, (150, 2000)) is None
    assert steal_pct((100, 1000), (100, 1000)) is None  # no time passed
    ticks = host_cpu_ticks()  # this machine is Linux: /proc/stat is there
    assert ticks is not None and 0 <= ticks[0] <= ticks[1]
