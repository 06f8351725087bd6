"""Helpers shared by every workload script, in runlane's venv and in the peers' venv alike.

Only the standard library and psycopg (present in both venvs) are imported here. A workload script
prints its results as JSON lines on stdout, one per figure (``emit``); the orchestrator
(``bench/run.py``) collects them. Worker child processes speak a tiny line protocol on
stdin/stdout: they print ``ready`` once connected, wait for ``go``, then print one JSON result.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import queue
import resource
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

REPO_ROOT = Path(__file__).resolve().parent.parent
BATCH = 1000  # enqueue batch size for every system (the figure)
PRODUCER_IN_FLIGHT = 8  # latency producer: calls in flight at most (below every producer's pool size)
CHILD_TIMEOUT = 900.0  # seconds a worker child may take from "go" to its result line


def emit(system: str, workload: str, figure: str, value: float, unit: str, **detail: Any) -> None:
    """One figure as one JSON line; ``better`` says which direction wins for the ratio table."""
    lower = figure.startswith(("tx_", "wal_", "cpu_", "latency_", "rss_", "worker_peak_rss"))
    line = {
        "system": system,
        "workload": workload,
        "figure": figure,
        "value": round(float(value), 4),
        "unit": unit,
        "better": "lower" if lower else "higher",
        **({"detail": detail} if detail else {}),
    }
    print(json.dumps(line), flush=True)


def peak_rss_mb() -> float:
    """Peak resident set size of this process (``ru_maxrss`` is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_rss_mb() -> float:
    """Current resident set size of this process, from /proc/self/statm."""
    with open("/proc/self/statm", encoding="ascii") as fh:
        resident_pages = int(fh.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / (1024 * 1024)


def cpu_seconds() -> float:
    """User + system CPU of this process (children excluded)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def host_cpu_ticks() -> tuple[int, int] | None:
    """(steal, total) CPU ticks of the whole host since boot, from /proc/stat; None where unreadable.

    Steal is the time the hypervisor ran something else while this machine's CPUs wanted to run:
    on a shared virtual machine it slows whatever runs meanwhile, so each figure records it.
    """
    try:
        with open("/proc/stat", encoding="ascii") as fh:
            fields = fh.readline().split()
    except OSError:
        return None
    if len(fields) < 9 or fields[0] != "cpu":
        return None
    ticks = [int(value) for value in fields[1:]]
    # user nice system idle iowait irq softirq steal; guest time is already counted in user and nice.
    return ticks[7], sum(ticks[:8])


def steal_pct(before: tuple[int, int] | None, after: tuple[int, int] | None) -> float | None:
    """Steal as a percentage of all CPU time between two ``host_cpu_ticks`` readings."""
    if before is None or after is None or after[1] <= before[1]:
        return None
    return round(100.0 * (after[0] - before[0]) / (after[1] - before[1]), 1)


def percentile(values: Sequence[float], pct: float) -> float:
    """Nearest-rank percentile; ``values`` need not be sorted."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100 * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class DbCounters:
    """Transactions committed + rolled back in one database, and the cluster's WAL position."""

    transactions: int
    wal_lsn: str


class DbStats:
    """Reads pg_stat_database / pg_current_wal_lsn through the ``postgres`` maintenance database.

    The reading connection is not in the measured database, so it never counts itself. Backends
    flush their counters when they exit (and at most once a second while idle), so ``after`` is
    taken once the measured clients closed their connections, after a short settle.
    """

    def __init__(self, admin_dsn: str, database: str) -> None:
        self.admin_dsn = admin_dsn
        self.database = database

    def snapshot(self) -> DbCounters:
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            conn.execute("select pg_stat_clear_snapshot()")
            row = conn.execute(
                "select xact_commit + xact_rollback from pg_stat_database where datname = %s",
                (self.database,),
            ).fetchone()
            lsn = conn.execute("select pg_current_wal_lsn()::text").fetchone()
        assert row is not None
        assert lsn is not None
        return DbCounters(transactions=int(row[0]), wal_lsn=str(lsn[0]))

    def settled_snapshot(self, settle: float = 1.5) -> DbCounters:
        time.sleep(settle)
        return self.snapshot()

    def wal_bytes(self, before: DbCounters, after: DbCounters) -> int:
        with psycopg.connect(self.admin_dsn, autocommit=True, connect_timeout=10) as conn:
            row = conn.execute("select pg_wal_lsn_diff(%s, %s)", (after.wal_lsn, before.wal_lsn)).fetchone()
        assert row is not None
        return int(row[0])


def emit_db_costs(
    system: str,
    workload: str,
    stats: DbStats,
    before: DbCounters,
    after: DbCounters,
    runs: int,
    **detail: Any,
) -> None:
    """``tx_per_run`` and ``wal_bytes_per_run`` for ``runs`` runs between two snapshots."""
    runs = max(runs, 1)
    transactions = (after.transactions - before.transactions) / runs
    emit(system, workload, "tx_per_run", transactions, "tx/run", **detail)
    emit(system, workload, "wal_bytes_per_run", stats.wal_bytes(before, after) / runs, "B/run", **detail)


def workload_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line every workload script accepts (the orchestrator passes all of it)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("workload")
    parser.add_argument("--dsn", required=True, help="libpq URL of the benchmark database")
    parser.add_argument("--admin-dsn", required=True, help="libpq URL of the postgres database")
    parser.add_argument("--database", required=True)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--total", type=int, default=0, help="runs in the queue (rss workload)")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=0)
    parser.add_argument("--rate", type=float, default=200.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--poll-interval", default="", help="worker poll interval, e.g. 50ms")
    parser.add_argument("--label", default="")
    parser.add_argument("--child", action="store_true", help="internal: run as a worker child")
    return parser.parse_args(argv)


def child_argv(script: str, args: argparse.Namespace, workload: str) -> list[str]:
    """The command line of a worker child of ``script`` (same interpreter, same options)."""
    return [
        sys.executable,
        script,
        workload,
        "--child",
        f"--dsn={args.dsn}",
        f"--admin-dsn={args.admin_dsn}",
        f"--database={args.database}",
        f"--n={args.n}",
        f"--total={args.total}",
        f"--processes={args.processes}",
        f"--concurrency={args.concurrency}",
        f"--batch-size={args.batch_size}",
        f"--rate={args.rate}",
        f"--seconds={args.seconds}",
        f"--poll-interval={args.poll_interval}",
    ]


class Children:
    """Worker child processes: start them, wait until every one is ready, say go, collect results.

    A reader thread per child turns its stdout into a queue of lines, so every wait is bounded.
    """

    def __init__(self, argvs: Sequence[Sequence[str]], *, ready_timeout: float = 120.0) -> None:
        self.procs = [
            subprocess.Popen(
                list(argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=None,  # the child's errors show up in the orchestrator's stderr
                text=True,
                cwd=REPO_ROOT,
            )
            for argv in argvs
        ]
        self.lines: list[queue.Queue[str | None]] = []
        for proc in self.procs:
            lines: queue.Queue[str | None] = queue.Queue()
            threading.Thread(target=_pump, args=(proc, lines), daemon=True).start()
            self.lines.append(lines)
        self.ready_timeout = ready_timeout

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.ready_timeout
        for index in range(len(self.procs)):
            self._expect(index, deadline, lambda line: line.strip() == "ready")

    def go(self) -> float:
        """Release every child at once; returns the wall-clock time of the release."""
        started = time.time()
        for proc in self.procs:
            assert proc.stdin is not None
            proc.stdin.write("go\n")
            proc.stdin.flush()
        return started

    def results(self, timeout: float = CHILD_TIMEOUT) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        try:
            out = [
                json.loads(self._expect(index, deadline, lambda line: line.startswith("{")))
                for index in range(len(self.procs))
            ]
            for proc in self.procs:
                proc.wait(timeout=max(1.0, deadline - time.monotonic()))
        finally:
            self.kill()
        return out

    def kill(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)

    def _expect(self, index: int, deadline: float, wanted: Callable[[str], bool]) -> str:
        """The child's next protocol line; anything else a library printed to stdout is skipped."""
        while True:
            try:
                line = self.lines[index].get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                self.kill()
                raise TimeoutError("worker child timed out") from None
            if line is None:
                code = self.procs[index].wait(timeout=10)
                raise RuntimeError(f"worker child exited with {code} before reporting")
            if wanted(line):
                return line


def _pump(proc: subprocess.Popen[str], lines: queue.Queue[str | None]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)
    lines.put(None)


def child_handshake() -> None:
    """In a worker child: announce readiness, then block until the parent says go."""
    print("ready", flush=True)
    line = sys.stdin.readline()
    if line.strip() != "go":
        raise SystemExit(f"expected go, got {line!r}")


def child_report(**result: Any) -> None:
    print(json.dumps(result), flush=True)


def steady_schedule(rate: float, seconds: float) -> list[float]:
    """Offsets (seconds from start) of ``rate * seconds`` evenly spaced triggers."""
    count = int(rate * seconds)
    return [i / rate for i in range(count)]


async def produce_steadily(
    fire: Callable[[], Awaitable[None]], rate: float, seconds: float, in_flight: int = PRODUCER_IN_FLIGHT
) -> float:
    """Call ``fire`` on a fixed schedule, at most ``in_flight`` at once; returns the achieved rate.

    A producer slower than the schedule falls behind (``producer_rate`` shows it) instead of
    piling up calls until its connection pool times out.
    """
    gate = asyncio.Semaphore(in_flight)

    async def one() -> None:
        try:
            await fire()
        finally:
            gate.release()

    offsets = steady_schedule(rate, seconds)
    origin = time.perf_counter() + 0.2
    pending: list[asyncio.Task[None]] = []
    for offset in offsets:
        wait = origin + offset - time.perf_counter()
        if wait > 0:
            await asyncio.sleep(wait)
        await gate.acquire()
        pending.append(asyncio.create_task(one()))
    await asyncio.gather(*pending)
    return len(offsets) / (time.perf_counter() - origin)


def emit_latency(
    system: str,
    workload: str,
    delays_s: Sequence[float],
    produced: float,
    args: argparse.Namespace,
    **detail: Any,
) -> None:
    """p50/p99 of trigger-call-to-handler-start delays, and the rate the producer achieved."""
    expected = len(steady_schedule(args.rate, args.seconds))
    delays = [d * 1000 for d in delays_s]
    detail = {"rate": args.rate, "seconds": args.seconds, "in_flight": PRODUCER_IN_FLIGHT, **detail}
    if len(delays) < expected:
        detail["started"] = f"{len(delays)} of {expected} within the deadline"
    emit(system, workload, "latency_p50_ms", percentile(delays, 50), "ms", **detail)
    emit(system, workload, "latency_p99_ms", percentile(delays, 99), "ms", **detail)
    emit(system, workload, "producer_rate", produced, "runs/s", **detail)


def drain_wall(go_at: float, results: Sequence[dict[str, Any]]) -> float:
    """From the release to the last child's finish (children report their wall-clock finish)."""
    return max(float(r["finished_at"]) for r in results) - go_at


def run_drain(
    system: str,
    script: str,
    args: argparse.Namespace,
    setting: Callable[[list[dict[str, Any]]], dict[str, Any]],
) -> None:
    """The drain workload, the same for every system: start ``args.processes`` children of
    ``script`` (its ``drain`` child), release them together, check that exactly ``args.n`` jobs ran,
    and emit throughput, database costs, peak RSS and CPU. ``setting`` labels the figures from the
    children's reports."""
    stats = DbStats(args.admin_dsn, args.database)
    children = Children([child_argv(script, args, "drain") for _ in range(args.processes)])
    children.wait_ready()
    before = stats.snapshot()
    go = children.go()
    results = children.results()
    after = stats.settled_snapshot()
    handled = sum(int(r["handled"]) for r in results)
    if handled != args.n:
        raise SystemExit(f"{system} drain executed {handled} jobs, expected {args.n}")
    workload = f"drain_{args.processes}p"
    labels = setting(results)
    emit(system, workload, "throughput", handled / drain_wall(go, results), "runs/s", **labels)
    emit_db_costs(system, workload, stats, before, after, handled, **labels)
    emit(system, workload, "worker_peak_rss_mb", max(r["peak_rss_mb"] for r in results), "MiB", **labels)
    cpu = sum(float(r["cpu_s"]) for r in results)
    emit(system, workload, "cpu_ms_per_run", cpu / handled * 1000, "ms/run", process="worker", **labels)
