"""Script-side plumbing: argv, a runtime on the Postgres adapter, JSON lines out, commands in.

Each script builds its runtime with ``postgres_storage`` plus the in-memory transport composed by
``runlane.create_lane`` (wakeups go nowhere: workers poll storage, which is the point of these
tests). A watchdog ends the process if the test forgets it.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, TextIO

from runlane import Clock, Runlane, create_lane, create_runlane
from runlane.infrastructure.memory import create_local_transport
from runlane.infrastructure.postgres import postgres_storage
from tests.integration.postgres.procs import jsonlines, race_app


def parser(description: str) -> argparse.ArgumentParser:
    """Options every script takes: where the schema is, which scenario's tasks, and a watchdog."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--dsn", required=True, help="libpq URL (postgresql://...)")
    parser.add_argument("--schema", required=True)
    parser.add_argument("--environment", default="races")
    parser.add_argument("--scenario", required=True, choices=sorted(race_app.SCENARIOS))
    parser.add_argument("--pool-size", type=int, default=5)
    parser.add_argument("--application-name", default="runlane-race")
    parser.add_argument("--watchdog", type=float, default=240.0, help="seconds before the process exits")
    return parser


def build_runtime(args: argparse.Namespace, *, clock: Clock | None = None) -> Runlane:
    storage = postgres_storage(
        connection_string=args.dsn,
        schema=args.schema,
        pool_size=args.pool_size,
        max_overflow=2,
        application_name=args.application_name,
    )
    lane = create_lane(storage=storage, transport=create_local_transport(), name="races")
    return create_runlane(
        lane=lane,
        queues=list(race_app.QUEUES),
        tasks=list(race_app.SCENARIOS[args.scenario]),
        environment=args.environment,
        clock=clock,
    )


class Commands:
    """stdin lines, read by a daemon thread (a blocked read never holds up the process exit).

    ``await commands.next()`` returns the next line, stripped; ``""`` at EOF (the test went away).
    """

    def __init__(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._lines: asyncio.Queue[str] = asyncio.Queue()
        threading.Thread(target=self._read, name="commands", daemon=True).start()

    def _read(self) -> None:
        for line in sys.stdin:
            self._loop.call_soon_threadsafe(self._lines.put_nowait, line.strip())
        self._loop.call_soon_threadsafe(self._lines.put_nowait, "")

    async def next(self) -> str:
        return await self._lines.get()


def start_watchdog(seconds: float) -> None:
    """Exit hard after ``seconds`` even if the event loop is stuck (tests also kill us)."""

    def expire() -> None:
        jsonlines.emit("watchdog_expired", seconds=seconds)
        os._exit(3)

    timer = threading.Timer(seconds, expire)
    timer.daemon = True
    timer.start()


class JsonLogHandler(logging.Handler):
    """runlane's structured log records as JSON lines (``event="log"``) on a stream."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self._stream = stream

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "runlane", {})
        if self._stream is None:
            jsonlines.emit("log", level=record.levelname, message=record.getMessage(), **fields)
            return
        payload = {"event": "log", "level": record.levelname, "message": record.getMessage(), **fields}
        self._stream.write(json.dumps(payload, default=str) + "\n")
        self._stream.flush()


def log_runlane(level: int, *, to_stdout: bool) -> None:
    """Send runlane's log records at ``level`` and above to stdout (as events) or stderr."""
    logger = logging.getLogger("runlane")
    logger.setLevel(level)
    logger.addHandler(JsonLogHandler(None if to_stdout else sys.stderr))
    logger.propagate = False


def run(main: Callable[[list[str]], Coroutine[Any, Any, None]], argv: Sequence[str] | None = None) -> None:
    """``asyncio.run(main(argv))``; an exception is reported as an ``error`` line and exit code 1."""
    try:
        asyncio.run(main(list(sys.argv[1:] if argv is None else argv)))
    except Exception as exc:
        jsonlines.emit("error", error=type(exc).__name__, message=str(exc))
        raise SystemExit(1) from exc
