"""Trigger ``--count`` runs of the scenario's task, then report.

With ``--batch N`` (N > 1) runs are created with ``trigger_many`` N at a time, else one ``trigger``
per run (``--concurrency`` of them in flight).

Report: ``{"event": "produced", "count": n, "seconds": s}``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence

from runlane import RunlaneError
from tests.integration.postgres.procs import race_app
from tests.integration.postgres.procs.harness import build_runtime, parser, run, start_watchdog
from tests.integration.postgres.procs.jsonlines import emit


async def main(argv: list[str]) -> None:
    options = parser(__doc__ or "")
    options.add_argument("--count", type=int, required=True)
    options.add_argument("--concurrency", type=int, default=10)
    options.add_argument("--batch", type=int, default=1)
    options.add_argument("--prefix", default="p")
    args = options.parse_args(argv)
    start_watchdog(args.watchdog)
    definition = race_app.SCENARIOS[args.scenario][0]
    runtime = build_runtime(args)
    limit = asyncio.Semaphore(args.concurrency)

    payloads = [{"n": f"{args.prefix}{index}"} for index in range(args.count)]

    async def one(payload: object) -> None:
        async with limit:
            await runtime.trigger(definition, payload, dispatch="deferred")

    async def many(chunk: Sequence[object]) -> None:
        async with limit:
            results = await runtime.trigger_many(definition, chunk, dispatch="deferred")
        errors = [result for result in results if isinstance(result, RunlaneError)]
        if errors:
            raise errors[0]

    try:
        await runtime.start()
        started = time.monotonic()
        if args.batch > 1:
            chunks = [payloads[i : i + args.batch] for i in range(0, len(payloads), args.batch)]
            await asyncio.gather(*(many(chunk) for chunk in chunks))
        else:
            await asyncio.gather(*(one(payload) for payload in payloads))
        emit("produced", count=args.count, seconds=round(time.monotonic() - started, 3))
    finally:
        await runtime.close()


if __name__ == "__main__":
    run(main)
