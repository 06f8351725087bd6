"""runlane's benchmark workloads; ``bench/run.py`` runs each one in a fresh process.

    python bench/runlane_workloads.py WORKLOAD --dsn ... --admin-dsn ... --database ... [--n N]

Workloads: ``setup`` (migrate), ``prefill`` (N due runs, deferred dispatch, not measured),
``enqueue_one``, ``enqueue_batch``, ``drain`` (``--processes``, ``--concurrency``, ``--batch-size``),
``latency`` (``--rate``, ``--seconds``, ``--poll-interval``), ``rss`` (drain ``--total`` runs, RSS
sampled after ``--n`` and at the end). Each prints its figures as JSON lines (bench/common.py).
Every handler is a no-op; only runlane's own cost is measured.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BATCH,
    Children,
    DbStats,
    child_argv,
    child_handshake,
    child_report,
    cpu_seconds,
    current_rss_mb,
    drain_wall,
    emit,
    emit_db_costs,
    emit_latency,
    peak_rss_mb,
    produce_steadily,
    run_drain,
    steady_schedule,
    workload_args,
)
from runlane import Runlane, create_runlane, queue, task
from runlane.entrypoints.gc_tuning import tune_worker_gc
from runlane.entrypoints.settings_loading import load_settings
from runlane.infrastructure.lanes import create_postgres_lane
from runlane.infrastructure.postgres import apply_postgres_storage_migrations
from runlane.ports.lane import Lane

SYSTEM = "runlane"
TASK_ID = "bench.noop"
GATHER_CONCURRENCY = 32  # in-flight triggers when the runtime has no trigger_many yet

Handler = Callable[[Any, Any], Awaitable[None]]


async def _noop(payload: Any, context: Any) -> None:
    return None


def make_lane(dsn: str, pool_size: int) -> tuple[Lane, str]:
    """The Postgres lane: Postgres storage plus LISTEN/NOTIFY wakeups on the same database."""
    lane = create_postgres_lane(connection_string=dsn, pool_size=pool_size)
    return lane, "create_postgres_lane (LISTEN/NOTIFY wakeups)"


def tune_like_the_cli_worker() -> bool:
    """What ``runlane worker`` does once started (``entrypoints.gc_tuning``), read from the same
    setting: ``RUNLANE_WORKER_GC_TUNING=false`` leaves the collector alone (for an A/B), and a bad
    value fails the workload as it fails the command. Whether it tuned."""
    if not load_settings(env_file=None).worker.gc_tuning:
        return False
    return tune_worker_gc() > 0


def make_runtime(dsn: str, *, handler: Handler = _noop, pool_size: int = 5) -> tuple[Runlane, Any, str]:
    lane, label = make_lane(dsn, pool_size)
    bench_queue = queue("bench", default=True)
    noop_task = task(TASK_ID, run=handler, queue=bench_queue)
    runtime = create_runlane(lane=lane, queues=[bench_queue], tasks=[noop_task], dispatch="eager")
    return runtime, noop_task, label


def worker_options(runtime: Runlane, args: Any) -> dict[str, Any]:
    """``batch_size`` / ``poll_interval`` only when asked for and supported by this runtime."""
    options: dict[str, Any] = {}
    params = inspect.signature(runtime.worker).parameters
    if args.batch_size and "batch_size" in params:
        options["batch_size"] = args.batch_size
    if args.poll_interval:
        options["poll_interval"] = args.poll_interval
    return options


# --------------------------------------------------------------------------- creation helpers


async def create_many(
    runtime: Runlane, noop_task: Any, payloads: list[dict[str, Any]], **options: Any
) -> str:
    """Create runs in bulk through the public API; returns how (for the figure's label)."""
    trigger_many = getattr(runtime, "trigger_many", None)
    if trigger_many is not None:
        for start in range(0, len(payloads), BATCH):
            results = await trigger_many(noop_task, payloads[start : start + BATCH], **options)
            errors = [r for r in results if isinstance(r, Exception)]
            if errors:
                raise SystemExit(f"trigger_many rejected {len(errors)} items: {errors[0]!r}")
        return f"trigger_many({BATCH} per call)"
    gate = asyncio.Semaphore(GATHER_CONCURRENCY)

    async def one(payload: dict[str, Any]) -> None:
        async with gate:
            await runtime.trigger(noop_task, payload, **options)

    await asyncio.gather(*(one(p) for p in payloads))
    return f"asyncio.gather of trigger, {GATHER_CONCURRENCY} in flight (no trigger_many yet)"


# --------------------------------------------------------------------------- workloads


async def setup(args: Any) -> None:
    await apply_postgres_storage_migrations(args.dsn, "public")


async def prefill(args: Any) -> None:
    runtime, noop_task, _ = make_runtime(args.dsn, pool_size=GATHER_CONCURRENCY)
    async with runtime:
        await create_many(runtime, noop_task, [{} for _ in range(args.n)], dispatch="deferred")


async def enqueue(args: Any, *, batched: bool) -> None:
    stats = DbStats(args.admin_dsn, args.database)
    runtime, noop_task, lane = make_runtime(args.dsn, pool_size=GATHER_CONCURRENCY if batched else 5)
    workload = "enqueue_batch" if batched else "enqueue_one"
    await runtime.start()
    before = stats.snapshot()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    if batched:
        how = await create_many(runtime, noop_task, [{} for _ in range(args.n)])
    else:
        how = "await runtime.trigger(task, {}) one by one, dispatch eager"
        for _ in range(args.n):
            await runtime.trigger(noop_task, {})
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    await runtime.close()
    after = stats.settled_snapshot()
    emit(SYSTEM, workload, "throughput", args.n / elapsed, "runs/s", how=how, lane=lane)
    emit_db_costs(SYSTEM, workload, stats, before, after, args.n)
    emit(SYSTEM, workload, "cpu_ms_per_run", cpu / args.n * 1000, "ms/run", process="producer")


async def drain_child(args: Any) -> None:
    handled = 0

    async def handler(payload: Any, context: Any) -> None:
        nonlocal handled
        handled += 1

    runtime, _, lane = make_runtime(args.dsn, handler=handler, pool_size=args.concurrency + 2)
    await runtime.start()
    tuned = tune_like_the_cli_worker()
    options = worker_options(runtime, args)
    child_handshake()
    cpu0 = cpu_seconds()
    await runtime.worker(mode="drain", concurrency=args.concurrency, **options)
    finished = time.time()
    cpu = cpu_seconds() - cpu0
    await runtime.close()
    child_report(
        handled=handled,
        finished_at=finished,
        peak_rss_mb=peak_rss_mb(),
        cpu_s=cpu,
        lane=lane,
        gc_tuning=tuned,
        **options,
    )


def drain(args: Any) -> None:
    run_drain(
        SYSTEM,
        __file__,
        args,
        lambda results: {
            "concurrency": args.concurrency,
            "batch_size": results[0].get("batch_size", "default"),
            "gc_tuning": results[0].get("gc_tuning", False),
        },
    )


async def latency_child(args: Any) -> None:
    expected = len(steady_schedule(args.rate, args.seconds))
    delays: list[float] = []
    done = asyncio.Event()

    async def handler(payload: Any, context: Any) -> None:
        delays.append(time.time() - float(payload["t"]))
        if len(delays) >= expected:
            done.set()

    runtime, _, lane = make_runtime(args.dsn, handler=handler, pool_size=args.concurrency + 2)
    await runtime.start()
    tuned = tune_like_the_cli_worker()
    options = worker_options(runtime, args)
    handle = runtime.worker(mode="poll", concurrency=args.concurrency, **options)
    await asyncio.to_thread(child_handshake)  # the worker keeps polling meanwhile
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(done.wait(), timeout=args.seconds + 120)
    await handle.stop()
    await runtime.close()
    child_report(delays=delays, finished_at=time.time(), lane=lane, gc_tuning=tuned, **options)


async def latency(args: Any) -> None:
    children = Children([child_argv(__file__, args, "latency")])
    try:
        children.wait_ready()
        runtime, noop_task, _ = make_runtime(args.dsn, pool_size=10)
        await runtime.start()
        children.go()

        async def fire() -> None:
            await runtime.trigger(noop_task, {"t": time.time()})

        produced = await produce_steadily(fire, args.rate, args.seconds)
        await runtime.close()
        (result,) = children.results(timeout=args.seconds + 180)
    finally:
        children.kill()
    poll = args.poll_interval or "default"
    tuned = result.get("gc_tuning", False)
    label = args.label or "latency"
    emit_latency(SYSTEM, label, result["delays"], produced, args, poll_interval=poll, gc_tuning=tuned)


async def rss_child(args: Any) -> None:
    handled = 0
    at_n = 0.0

    async def handler(payload: Any, context: Any) -> None:
        nonlocal handled, at_n
        handled += 1
        if handled == args.n:
            at_n = current_rss_mb()

    runtime, _, _ = make_runtime(args.dsn, handler=handler, pool_size=args.concurrency + 2)
    await runtime.start()
    tuned = tune_like_the_cli_worker()
    options = worker_options(runtime, args)
    child_handshake()
    await runtime.worker(mode="drain", concurrency=args.concurrency, **options)
    finished = time.time()
    at_end = current_rss_mb()
    await runtime.close()
    rss_mb = {"rss_at_n": at_n, "rss_at_end": at_end, "peak": peak_rss_mb()}
    child_report(handled=handled, finished_at=finished, gc_tuning=tuned, **rss_mb)


def rss(args: Any) -> None:
    children = Children([child_argv(__file__, args, "rss")])
    children.wait_ready()
    go = children.go()
    (result,) = children.results()
    if result["handled"] != args.total:
        raise SystemExit(f"rss drain executed {result['handled']} runs, expected {args.total}")
    detail = {"concurrency": args.concurrency, "gc_tuning": result.get("gc_tuning", False)}
    emit(SYSTEM, "rss", "rss_mb_after_n", result["rss_at_n"], "MiB", runs=args.n, **detail)
    emit(SYSTEM, "rss", "rss_mb_after_total", result["rss_at_end"], "MiB", runs=args.total, **detail)
    growth = result["rss_at_end"] / result["rss_at_n"]
    emit(SYSTEM, "rss", "rss_growth_ratio", growth, "x", runs=f"{args.n} -> {args.total}", **detail)
    emit(SYSTEM, "rss", "throughput", args.total / drain_wall(go, [result]), "runs/s", **detail)


def main() -> None:
    args = workload_args()
    name = args.workload
    if args.child:
        child = {"drain": drain_child, "latency": latency_child, "rss": rss_child}[name]
        asyncio.run(child(args))
        return
    if name in ("drain", "rss"):
        {"drain": drain, "rss": rss}[name](args)
        return
    runners: dict[str, Callable[[Any], Coroutine[Any, Any, None]]] = {
        "setup": setup,
        "prefill": prefill,
        "enqueue_one": lambda a: enqueue(a, batched=False),
        "enqueue_batch": lambda a: enqueue(a, batched=True),
        "latency": latency,
    }
    asyncio.run(runners[name](args))


if __name__ == "__main__":
    main()
