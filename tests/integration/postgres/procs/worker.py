"""A poll worker in its own process: ``ready``, then waits for ``go``, works until ``stop``, reports.

Report: ``{"event": "stopped", "executed": n, "duplicates": [...], "seconds": s}``.
"""

from __future__ import annotations

import asyncio
import logging
import time

from tests.integration.postgres.procs import race_app
from tests.integration.postgres.procs.harness import (
    Commands,
    build_runtime,
    log_runlane,
    parser,
    run,
    start_watchdog,
)
from tests.integration.postgres.procs.jsonlines import emit


async def main(argv: list[str]) -> None:
    options = parser(__doc__ or "")
    options.add_argument("--concurrency", type=int, default=4)
    options.add_argument("--poll-interval", default="50ms")
    options.add_argument("--hold-seconds", type=float, default=0.02)
    args = options.parse_args(argv)
    start_watchdog(args.watchdog)
    log_runlane(logging.WARNING, to_stdout=False)
    commands = Commands()
    race_app.STATE.hold_seconds = args.hold_seconds
    runtime = build_runtime(args)
    try:
        await runtime.start()
        await race_app.STATE.open(args.dsn, args.schema, args.concurrency)
        emit("ready")
        if (command := await commands.next()) != "go":
            emit("not_started", command=command)
            return
        started = time.monotonic()
        handle = runtime.worker(concurrency=args.concurrency, poll_interval=args.poll_interval)
        emit("working")
        await commands.next()  # "stop", or EOF
        await asyncio.wait_for(handle.stop(), timeout=30)
        emit(
            "stopped",
            executed=handle.executed,
            duplicates=race_app.STATE.duplicates,
            seconds=round(time.monotonic() - started, 3),
        )
    finally:
        await runtime.close()
        await race_app.STATE.close()


if __name__ == "__main__":
    run(main)
