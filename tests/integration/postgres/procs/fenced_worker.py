"""One attempt with a short lease, narrating what happened to it (for the fencing test).

``ready``, wait for ``go``, then ``execute_next`` (retried until a run is claimable, bounded by
``--claim-deadline``) and report ``{"event": "executed", "run": {...}}``: the run as this process
last saw it. runlane's WARNING log lines ("lease lost", "attempt outcome discarded: lease lost")
come out as ``{"event": "log", ...}``. The ``release`` command opens the handler's gate.
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


async def relay_commands(commands: Commands) -> None:
    while (command := await commands.next()) not in ("", "stop"):
        if command == "release":
            assert race_app.STATE.gate is not None
            race_app.STATE.gate.set()


async def main(argv: list[str]) -> None:
    options = parser(__doc__ or "")
    options.add_argument("--lease", default="1s")
    options.add_argument("--heartbeat", default="300ms")
    options.add_argument("--claim-deadline", type=float, default=20.0)
    args = options.parse_args(argv)
    start_watchdog(args.watchdog)
    log_runlane(logging.WARNING, to_stdout=True)
    commands = Commands()
    runtime = build_runtime(args)
    try:
        await runtime.start()
        await race_app.STATE.open(args.dsn, args.schema, 1)
        emit("ready", worker_id=runtime.worker_id)
        if (command := await commands.next()) != "go":
            emit("not_started", command=command)
            return
        relay = asyncio.create_task(relay_commands(commands))
        deadline = time.monotonic() + args.claim_deadline
        record = None
        while record is None and time.monotonic() < deadline:
            record = await runtime.execute_next(lease_duration=args.lease, heartbeat_interval=args.heartbeat)
            if record is None:
                await asyncio.sleep(0.02)
        relay.cancel()
        emit(
            "executed",
            run=None
            if record is None
            else {
                "id": record.id,
                "status": record.status.value,
                "attempts": record.attempts,
                "sequence": record.event_sequence,
                "lease_worker_id": record.lease.worker_id if record.lease else None,
            },
        )
    finally:
        await runtime.close()
        await race_app.STATE.close()


if __name__ == "__main__":
    run(main)
