"""A worker process: ``runtime.worker(...)`` in poll mode until SIGTERM, then ``stop(grace=...)``.

usage: worker.py CONFIG WORKER_ID

Prints ``ready`` once started. Exit codes: 0 after a graceful stop, 3 if the worker handle itself
failed (a crash the harness counts), 2 on a startup error.
"""

import asyncio
import signal
import sys
from typing import Any

from tests.faults.procs.app import build_runtime, exit_with_parent, load_config, setup_logging


async def main(config_path: str, worker: str) -> int:
    exit_with_parent()
    config = load_config(config_path)
    setup_logging(config, worker)
    runtime = build_runtime(config, worker)
    await runtime.start()
    handle = runtime.worker(
        concurrency=int(config.get("concurrency", 1)),
        poll_interval=config.get("poll_interval", "100ms"),
        lease_duration=config.get("lease", "2s"),
        heartbeat_interval=config.get("heartbeat"),
        worker_id=worker,
    )
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    print("ready", flush=True)
    stop_waiter = asyncio.ensure_future(stopping.wait())
    waiters: set[asyncio.Future[Any]] = {stop_waiter, handle.closed}
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    if handle.closed.done() and not stopping.is_set():
        print(f"worker handle closed: {handle.closed.exception()!r}", file=sys.stderr, flush=True)
        return 3
    grace = config.get("grace")
    await handle.stop(grace=None if grace is None else float(grace))
    await runtime.close()
    stop_waiter.cancel()
    print(f"stopped executed={handle.executed}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2])))
