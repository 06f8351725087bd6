"""An SQS consumer process: ``create_sqs_delivery_consumer`` feeding ``runtime.execute_delivery``.

usage: sqs_consumer.py CONFIG WORKER_ID QUEUE_URL

Every delivery result (executed, or ignored with its reason) is written to ``fault_deliveries`` so
the harness can count them. SIGTERM stops the consumer gracefully.
"""

import asyncio
import signal
import sys
from typing import Any

from tests.faults.procs.app import build_runtime, exit_with_parent, load_config, setup_logging
from tests.faults.procs.ledger_client import LedgerClient
from tests.support.moto_server import make_sqs_client

from runlane import DeliveryMessage
from runlane.infrastructure.sqs import create_sqs_delivery_consumer


async def main(config_path: str, worker: str, queue_url: str) -> int:
    exit_with_parent()
    config = load_config(config_path)
    setup_logging(config, worker)
    runtime = build_runtime(config, worker)
    await runtime.start()
    ledger = LedgerClient(config["libpq_dsn"], config["schema"], worker)

    async def execute(message: DeliveryMessage, **options: Any) -> object:
        try:
            result = await runtime.execute_delivery(message, **options)
        except Exception as exc:
            await asyncio.to_thread(ledger.delivery, message.run_id, message.queue, "error", repr(exc)[:200])
            raise
        reason = None if result.reason is None else result.reason.value
        await asyncio.to_thread(ledger.delivery, message.run_id, message.queue, result.type.value, reason)
        return result

    consumer = create_sqs_delivery_consumer(
        client=make_sqs_client(config["transport"]["endpoint"]),
        queue_url=queue_url,
        execute_delivery=execute,
        delivery_options={"lease_duration": config.get("lease", "30s"), "worker_id": worker},
        concurrency=int(config.get("concurrency", 4)),
        wait_time_seconds=1,
        visibility_timeout_seconds=int(config.get("visibility_timeout", 30)),
    )
    stopping = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stopping.set)
    await consumer.start()
    print("ready", flush=True)
    stop_waiter = asyncio.ensure_future(stopping.wait())
    waiters: set[asyncio.Future[Any]] = {stop_waiter, consumer.closed}
    await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    failed = consumer.closed.done() and not stopping.is_set()
    if not failed:
        await consumer.stop()
    await runtime.close()
    stop_waiter.cancel()
    return 3 if failed else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main(sys.argv[1], sys.argv[2], sys.argv[3])))
