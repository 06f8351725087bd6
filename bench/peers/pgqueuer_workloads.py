"""PgQueuer's benchmark workloads (runs in bench/.peers-venv; same CLI and output as runlane's).

Documented API only: ``Queries(AsyncpgDriver(connection))`` to install and enqueue (a list per
argument enqueues a batch in one statement), ``QueueManager`` with an ``entrypoint`` and
``run(batch_size=..., mode=QueueExecutionMode.drain)`` to work. Handlers are no-ops.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import time
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent))

import asyncpg
from pgqueuer import AsyncpgDriver, Queries, QueueManager
from pgqueuer.models import Job
from pgqueuer.types import QueueExecutionMode

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

SYSTEM = "pgqueuer"
ENTRYPOINT = "bench_noop"
EMPTY = b"{}"


async def connect(dsn: str) -> asyncpg.Connection:
    return await asyncpg.connect(dsn, timeout=10)


async def setup(args: Any) -> None:
    conn = await connect(args.dsn)
    try:
        await Queries(AsyncpgDriver(conn)).install()
    finally:
        await conn.close()


async def enqueue_batches(queries: Queries, count: int) -> None:
    for start in range(0, count, BATCH):
        size = min(BATCH, count - start)
        await queries.enqueue([ENTRYPOINT] * size, [EMPTY] * size, [0] * size)


async def prefill(args: Any) -> None:
    conn = await connect(args.dsn)
    try:
        await enqueue_batches(Queries(AsyncpgDriver(conn)), args.n)
    finally:
        await conn.close()


async def enqueue(args: Any, *, batched: bool) -> None:
    stats = DbStats(args.admin_dsn, args.database)
    conn = await connect(args.dsn)
    queries = Queries(AsyncpgDriver(conn))
    workload = "enqueue_batch" if batched else "enqueue_one"
    before = stats.snapshot()
    cpu0, t0 = cpu_seconds(), time.perf_counter()
    if batched:
        how = f"Queries.enqueue(lists of {BATCH})"
        await enqueue_batches(queries, args.n)
    else:
        how = "Queries.enqueue(entrypoint, payload) one by one"
        for _ in range(args.n):
            await queries.enqueue(ENTRYPOINT, EMPTY)
    elapsed, cpu = time.perf_counter() - t0, cpu_seconds() - cpu0
    await conn.close()
    after = stats.settled_snapshot()
    emit(SYSTEM, workload, "throughput", args.n / elapsed, "runs/s", how=how)
    emit_db_costs(SYSTEM, workload, stats, before, after, args.n)
    emit(SYSTEM, workload, "cpu_ms_per_run", cpu / args.n * 1000, "ms/run", process="producer")


def batch_size(args: Any) -> int:
    return args.batch_size or 10


async def drain_child(args: Any) -> None:
    handled = 0
    conn = await connect(args.dsn)
    manager = QueueManager(Queries(AsyncpgDriver(conn)))

    @manager.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        nonlocal handled
        handled += 1

    child_handshake()
    cpu0 = cpu_seconds()
    await manager.run(batch_size=batch_size(args), mode=QueueExecutionMode.drain)
    finished = time.time()
    cpu = cpu_seconds() - cpu0
    await conn.close()
    child_report(handled=handled, finished_at=finished, peak_rss_mb=peak_rss_mb(), cpu_s=cpu)


def drain(args: Any) -> None:
    run_drain(
        SYSTEM,
        __file__,
        args,
        lambda results: {"batch_size": batch_size(args)},
    )


async def latency_child(args: Any) -> None:
    expected = len(steady_schedule(args.rate, args.seconds))
    delays: list[float] = []
    conn = await connect(args.dsn)
    manager = QueueManager(Queries(AsyncpgDriver(conn)))

    @manager.entrypoint(ENTRYPOINT)
    async def noop(job: Job) -> None:
        delays.append(time.time() - float(json.loads(job.payload or b"{}")["t"]))
        if len(delays) >= expected:
            manager.shutdown.set()

    runner = asyncio.create_task(manager.run(batch_size=batch_size(args)))
    await asyncio.sleep(0.5)  # let it LISTEN before the producer starts
    await asyncio.to_thread(child_handshake)
    done, _ = await asyncio.wait({runner}, timeout=args.seconds + 120)
    if not done:
        manager.shutdown.set()
        with contextlib.suppress(asyncio.CancelledError, TimeoutError):
            await asyncio.wait_for(runner, timeout=30)
    await conn.close()
    child_report(delays=delays, finished_at=time.time())


async def latency(args: Any) -> None:
    children = Children([child_argv(__file__, args, "latency")])
    try:
        children.wait_ready()
        conn = await connect(args.dsn)
        queries = Queries(AsyncpgDriver(conn))
        children.go()

        async def fire() -> None:
            await queries.enqueue(ENTRYPOINT, json.dumps({"t": time.time()}).encode())

        # One connection: asyncpg serialises the calls (the driver holds a lock), as an app would.
        produced = await produce_steadily(fire, args.rate, args.seconds)
        await conn.close()
        (result,) = children.results(timeout=args.seconds + 180)
    finally:
        children.kill()
    emit_latency(SYSTEM, "latency", result["delays"], produced, args, batch_size=batch_size(args))


def main() -> None:
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
