"""``ready``, wait for ``go``, then ``gather`` ``--count`` triggers with one idempotency key.

Report: ``{"event": "triggered", "run_ids": [...], "outcomes": [...], "errors": [...]}``.
"""

from __future__ import annotations

import asyncio

from tests.integration.postgres.procs import race_app
from tests.integration.postgres.procs.harness import Commands, build_runtime, parser, run, start_watchdog
from tests.integration.postgres.procs.jsonlines import emit


async def main(argv: list[str]) -> None:
    options = parser(__doc__ or "")
    options.add_argument("--count", type=int, required=True)
    options.add_argument("--key", required=True)
    args = options.parse_args(argv)
    start_watchdog(args.watchdog)
    commands = Commands()
    runtime = build_runtime(args)
    try:
        await runtime.start()
        emit("ready")
        if (command := await commands.next()) != "go":
            emit("not_started", command=command)
            return
        results = await asyncio.gather(
            *(
                runtime.trigger(race_app.idempotent_task, {"key": args.key}, idempotency_key=args.key)
                for _ in range(args.count)
            ),
            return_exceptions=True,
        )
        emit(
            "triggered",
            run_ids=[r.run.id for r in results if not isinstance(r, BaseException)],
            outcomes=[r.outcome.value for r in results if not isinstance(r, BaseException)],
            errors=[repr(r) for r in results if isinstance(r, BaseException)],
        )
    finally:
        await runtime.close()


if __name__ == "__main__":
    run(main)
