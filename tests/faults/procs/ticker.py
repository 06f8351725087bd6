"""A maintenance process: ``runtime.tick()`` on the real clock, or in lockstep on its own clock.

usage: ticker.py CONFIG NAME loop
       ticker.py CONFIG NAME lockstep START_EPOCH_MS OFFSET_MS

``loop``: tick every ``tick_interval`` seconds until SIGTERM; a failed tick (database down) is
logged and retried after a growing pause, never a crash. ``lockstep``: the clock starts at START +
OFFSET and only moves when stdin says ``step MS``; each step runs one tick and answers
``done {counts}`` (or ``error ...``), so the harness can run several tickers round by round.
"""

import asyncio
import contextlib
import json
import signal
import sys
from datetime import UTC, datetime

from tests.faults.procs.app import build_runtime, exit_with_parent, load_config, setup_logging

from runlane.testing import ControlledClock


async def loop(config_path: str, name: str) -> int:
    exit_with_parent()
    config = load_config(config_path)
    setup_logging(config, name)
    runtime = build_runtime(config, name)
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    interval = float(config.get("tick_interval", 0.2))
    await runtime.start()
    print("ready", flush=True)
    errors = 0
    while not stopping.is_set():
        pause = interval
        try:
            await runtime.tick()
            errors = 0
        except Exception as exc:  # storage down: back off and try again
            errors += 1
            pause = min(2.0, interval * 2**errors)
            print(f"tick failed: {type(exc).__name__}: {exc}", file=sys.stderr, flush=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), timeout=pause)
    await runtime.close()
    return 0


async def lockstep(config_path: str, name: str, start_ms: int, offset_ms: int) -> int:
    exit_with_parent()
    config = load_config(config_path)
    setup_logging(config, name)
    clock = ControlledClock(datetime.fromtimestamp((start_ms + offset_ms) / 1000, tz=UTC))
    runtime = build_runtime(config, name, clock=clock)
    await runtime.start()
    print("ready", flush=True)
    reader = asyncio.StreamReader()
    loop_ = asyncio.get_running_loop()
    await loop_.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    try:
        while line := (await reader.readline()).decode().strip():
            if line == "exit":
                break
            command, value = line.split()
            assert command == "step", line
            clock.advance(f"{int(value)}ms")
            try:
                result = await runtime.tick()
                print("done " + json.dumps(result.to_dict()), flush=True)
            except Exception as exc:
                print(f"error {type(exc).__name__}: {exc}", flush=True)
    finally:
        await runtime.close()
    return 0


if __name__ == "__main__":
    config_arg, name_arg, mode = sys.argv[1:4]
    if mode == "loop":
        sys.exit(asyncio.run(loop(config_arg, name_arg)))
    sys.exit(asyncio.run(lockstep(config_arg, name_arg, int(sys.argv[4]), int(sys.argv[5]))))
