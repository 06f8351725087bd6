"""Maintenance in its own process: each stdin command is one step of ``--ticks`` calls to ``tick()``.

Commands: ``at <ISO time>`` (the clock stands at that instant for the step), ``now`` (system time),
``stop`` or EOF. After each step: ``{"event": "ticked", "at": ..., "totals": {TickResult field: sum}}``.
"""

from __future__ import annotations

import logging
from collections import Counter
from datetime import datetime

from runlane.domain.timestamps import utc_ms
from runlane.ports.clock import SYSTEM_CLOCK
from tests.integration.postgres.procs.harness import (
    Commands,
    build_runtime,
    log_runlane,
    parser,
    run,
    start_watchdog,
)
from tests.integration.postgres.procs.jsonlines import emit


class CommandClock:
    """Stands at the step's instant (shared by every process given the same command), else system time."""

    def __init__(self) -> None:
        self.fixed: datetime | None = None

    def now(self) -> datetime:
        return self.fixed if self.fixed is not None else SYSTEM_CLOCK.now()


async def main(argv: list[str]) -> None:
    options = parser(__doc__ or "")
    options.add_argument("--ticks", type=int, default=3)
    args = options.parse_args(argv)
    start_watchdog(args.watchdog)
    log_runlane(logging.WARNING, to_stdout=False)
    commands = Commands()
    clock = CommandClock()
    runtime = build_runtime(args, clock=clock)
    try:
        await runtime.start()
        emit("ready")
        while (command := await commands.next()) not in ("", "stop"):
            verb, _, value = command.partition(" ")
            clock.fixed = utc_ms(datetime.fromisoformat(value)) if verb == "at" else None
            totals: Counter[str] = Counter()
            for _ in range(args.ticks):
                totals.update((await runtime.tick()).to_dict())
            emit("ticked", at=value or "now", totals=dict(totals))
    finally:
        await runtime.close()


if __name__ == "__main__":
    run(main)
