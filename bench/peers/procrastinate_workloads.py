"""Procrastinate's benchmark workloads (runs in bench/.peers-venv; same CLI and output as runlane's).

Documented API only: ``App(connector=PsycopgConnector(conninfo=...))``, ``schema_manager
.apply_schema_async()``, ``task.defer_async()`` / ``task.batch_defer_async(...)``, and
``app.run_worker_async(concurrency=..., wait=False)`` to drain (``wait=True`` with LISTEN/NOTIFY,
the default, for the latency run). Worker options otherwise at their defaults. Handlers are no-ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

from procrastinate import App, PsycopgConnector

from bench.common import (
    BATCH,
    Children,
    DbStats,
    child_argv,
    child_handshake,
    child_report,
    cpu_seconds,
    emit,
    emit_db_costs,
    emit_latency,
    peak_rss_mb,
    produce_steadily,
    run_drain,
    steady_schedule,
    workload_args,
)

SYSTEM = "procrastinate"
TASK_NAME = "bench_noop"
COUNTER: dict[str, Any] = {"handled": 0, "delays": [], "expected": 0, "done": None}


def make_app(dsn: str, *, pool_max: int = 10) -> tuple[App, Any]:
    app = App(connector=PsycopgConnector(conninfo=dsn, min_size=1, max_size=pool_max))

    @app.task(name=TASK_NAME)
    async def noop(t: float | None = None) -> None:
        COUNTER["handled"] += 1
        if t is not None:
            COUNTER["delays"].append(time.time() - t)
            if len(COUNTER["delays"]) >= COUNTER["expected"] and COUNTER["done"] is not None:
                COUNTER["done"].set()

    return app, noop


async def setup(args: Any) -> None:
    app, _ = make_app(args.dsn)
    async with app.open_async():
        await app.schema_manager.apply_schema_async()


async def defer_batches(noop: Any, count: int) -> None:
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        await noop.batch_defer_async(*({} for _ in range(size)))


async def prefill(args: Any) -> None:
    app, noop = make_app(args.dsn)
    async with app.open_async():
        await defer_batches(noop, args.n)


async def enqueue(args: Any, *, batched: bool) -> None:
    stats = DbStats(args.admin_dsn, args.database)
    app, noop = make_app(args.dsn)
    workload = "enqueue_batch" if batched else "enqueue_one"
    async with app.open_async():
        await noop.defer_async()  # open the pool's connection outside the measurement
        before = stats.snapshot()
        cpu0, t0 = cpu_seconds(), time.perf_counter()
        if batched:
            how = f"task.batch_defer_async({BATCH} per call)"
            await defer_batches(noop, args.n)
        else:
            how = "await task.defer_async() one by one"
            for _ in range(args.n):
                await noop.defer_async()
        elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    after = stats.settled_snapshot()
    emit(SYSTEM, workload, "throughput", args.n / elapsed, "runs/s", how=how)
    emit_db_costs(SYSTEM, workload, stats, before, after, args.n)
    emit(SYSTEM, workload, "cpu_ms_per_run", cpu / args.n * 1000, "ms/run", process="producer")


async def drain_child(args: Any) -> None:
    app, _ = make_app(args.dsn, pool_max=args.concurrency + 2)
    async with app.open_async():
        await asyncio.to_thread(child_handshake)
        cpu0 = cpu_seconds()
        await app.run_worker_async(concurrency=args.concurrency, wait=False, install_signal_handlers=False)
        finished = time.time()
        cpu = cpu_seconds() - cpu0
    child_report(handled=COUNTER["handled"], finished_at=finished, peak_rss_mb=peak_rss_mb(), cpu_s=cpu)


def drain(args: Any) -> None:
    run_drain(
        SYSTEM,
        __file__,
        args,
        lambda results: {"concurrency": args.concurrency},
    )


async def latency_child(args: Any) -> None:
    COUNTER["expected"] = len(steady_schedule(args.rate, args.seconds))
    COUNTER["done"] = done = asyncio.Event()
    app, _ = make_app(args.dsn, pool_max=args.concurrency + 2)
    async with app.open_async():
        worker = asyncio.create_task(
            app.run_worker_async(concurrency=args.concurrency, wait=True, install_signal_handlers=False)
        )
        await asyncio.sleep(0.5)  # let it LISTEN before the producer starts
        await asyncio.to_thread(child_handshake)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(done.wait(), timeout=args.seconds + 120)
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(worker, timeout=30)
    child_report(delays=COUNTER["delays"], finished_at=time.time())


async def latency(args: Any) -> None:
    children = Children([child_argv(__file__, args, "latency")])
    try:
        children.wait_ready()
        app, noop = make_app(args.dsn)
        async with app.open_async():
            children.go()

            async def fire() -> None:
                await noop.defer_async(t=time.time())

            produced = await produce_steadily(fire, args.rate, args.seconds)
        (result,) = children.results(timeout=args.seconds + 180)
    finally:
        children.kill()
    emit_latency(SYSTEM, "latency", result["delays"], produced, args, concurrency=args.concurrency)


def main() -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    # "App is instantiated in the main Python module": true here, and harmless for a benchmark.
    logging.getLogger("procrastinate.blueprints").setLevel(logging.ERROR)
    args = workload_args()
    if args.child:
        asyncio.run({"drain": drain_child, "latency": latency_child}[args.workload](args))
        return
    if args.workload == "drain":
        drain(args)
        return
    runners: dict[str, Callable[[Any], Coroutine[Any, Any, None]]] = {
        "setup": setup,
        "prefill": prefill,
        "enqueue_one": lambda a: enqueue(a, batched=False),
        "enqueue_batch": lambda a: enqueue(a, batched=True),
        "latency": latency,
    }
    asyncio.run(runners[args.workload](args))


if __name__ == "__main__":
    main()
