"""bench/run.py end to end at a tiny N: every runlane figure comes out as JSON with a positive value.

No timing is asserted (the machine may be busy); only that the benchmark runs, starts and stops
its own cluster, and reports each figure docs/performance.md relies on.
"""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]

THROUGHPUT_AND_COST = {"throughput", "tx_per_run", "wal_bytes_per_run", "cpu_ms_per_run"}
DRAIN = {*THROUGHPUT_AND_COST, "worker_peak_rss_mb"}
LATENCY = {"latency_p50_ms", "latency_p99_ms", "producer_rate"}
EXPECTED = {
    "enqueue_one": THROUGHPUT_AND_COST,
    "enqueue_batch": THROUGHPUT_AND_COST,
    "drain_1p": DRAIN,
    "drain_2p": DRAIN,
    "latency": LATENCY,
    "latency_poll_50ms": LATENCY,
    "rss": {"rss_mb_after_n", "rss_mb_after_total", "rss_growth_ratio", "throughput"},
}


def _bench(tmp_path: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """``bench/run.py --only=runlane`` with ``options``, its JSON lines saved under ``tmp_path``."""
    command = [
        sys.executable,
        str(ROOT / "bench" / "run.py"),
        "--only=runlane",
        *options,
        f"--save={tmp_path / 'figures.jsonl'}",
    ]
    proc = subprocess.run(
        command, capture_output=True, text=True, timeout=240, cwd=ROOT, stdin=subprocess.DEVNULL
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


def test_bench_prints_every_runlane_figure_as_json(tmp_path: Path) -> None:
    proc = _bench(
        tmp_path,
        "--n=200",
        "--json-only",
        "--rss-runs=400",
        "--latency-seconds=1",
        "--latency-rate=50",
        "--drain-settings=c10,c20b5",
    )

    figures = [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]
    seen: dict[str, set[str]] = {}
    for figure in figures:
        assert figure["system"] == "runlane"
        assert figure["unit"]
        assert figure["better"] in ("higher", "lower")
        assert isinstance(figure["value"], int | float)
        assert figure["value"] > 0, figure
        seen.setdefault(figure["workload"], set()).add(figure["figure"])
    for workload, expected in EXPECTED.items():
        assert expected <= seen.get(workload, set()), (workload, expected - seen.get(workload, set()))
    # Every drain setting ran to completion (a drain that misses runs exits non-zero instead).
    settings = {
        json.dumps(f["detail"])
        for f in figures
        if f["workload"] == "drain_1p" and f["figure"] == "throughput"
    }
    assert len(settings) == 2
    # Worker processes tune their collector as ``runlane worker`` does (entrypoints.gc_tuning).
    workers = [f for f in figures if f["workload"] in ("drain_1p", "drain_2p", "latency", "rss")]
    assert workers and all(f["detail"]["gc_tuning"] is True for f in workers)
    saved = (tmp_path / "figures.jsonl").read_text().splitlines()
    assert len(saved) == len(figures) + 1  # the environment line, then every figure


def test_rounds_repeat_each_workload_and_the_table_reports_medians(tmp_path: Path) -> None:
    proc = _bench(tmp_path, "--n=100", "--rounds=2", "--rss-runs=200", "--workloads=enqueue_one,rss")

    figures = [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]
    rounds = {(f["workload"], f["round"]) for f in figures if f["figure"] == "throughput"}
    # enqueue_one runs in both rounds; the long RSS drain (no peer to compare with) in the first only.
    assert rounds == {("enqueue_one", 1), ("enqueue_one", 2), ("rss", 1)}
    assert "Each value is the median of 2 interleaved rounds" in proc.stdout
    # Each workload records the host's steal time while it ran, and the table sums it up per round.
    assert all(isinstance(f["host_steal_pct"], float) and 0 <= f["host_steal_pct"] <= 100 for f in figures)
    assert "Host steal time (/proc/stat" in proc.stdout
    saved = [json.loads(line) for line in (tmp_path / "figures.jsonl").read_text().splitlines()]
    assert saved[0]["environment"]["rounds"] == 2
    assert len(saved) == len(figures) + 1
