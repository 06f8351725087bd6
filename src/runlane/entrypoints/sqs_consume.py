"""``runlane sqs-consume``: long-running SQS consumers that hand each wakeup to ``execute_delivery``.

One consumer per logical queue. On SIGTERM/SIGINT the consumers stop receiving and let the
deliveries in progress finish (their messages are then deleted); after the shutdown grace the
attempts' signals are aborted. A second signal exits at once (130); undeleted messages reappear
after their visibility timeout, and core ignores a wakeup whose run already moved on.
"""

import asyncio
import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from runlane.application.runtime import Runlane
from runlane.application.signal import AbortSignal
from runlane.domain.durations import parse_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.entrypoints.lane_factories import queue_settings
from runlane.entrypoints.logging_setup import log_delivery_failure
from runlane.entrypoints.settings import RunlaneSettings
from runlane.entrypoints.shutdown import ShutdownSignals, exit_now
from runlane.entrypoints.worker import ABORT_WINDOW_SECONDS, STUCK_EXIT_CODE

logger = logging.getLogger("runlane.sqs_consume")


async def queue_url(client: Any, settings: RunlaneSettings, name: str) -> str:
    entry = queue_settings(settings, name)
    if entry.url is not None:
        return entry.url
    request: dict[str, str] = {"QueueName": str(entry.name)}
    if entry.owner_account_id is not None:
        request["QueueOwnerAWSAccountId"] = entry.owner_account_id
    try:
        response = await asyncio.to_thread(client.get_queue_url, **request)
    except Exception as exc:
        raise RunlaneError(
            ErrorCode.TRANSPORT_UNAVAILABLE,
            f"SQS queue {entry.name!r} (for {name!r}) could not be resolved: {type(exc).__name__}: {exc}",
            retryable=True,
        ) from exc
    return str(response["QueueUrl"])


async def run_sqs_consumers(
    runtime: Runlane,
    settings: RunlaneSettings,
    client: Any,
    verifier: Any,
    *,
    queue_names: Sequence[str],
    report: Callable[[str], None],
) -> int:
    from runlane.infrastructure.sqs import create_sqs_delivery_consumer

    names = list(queue_names) or sorted(settings.sqs.queues)
    if not names:
        raise RunlaneError(ErrorCode.CONFIGURATION_INVALID, "RUNLANE_SQS_QUEUES: no SQS queues configured")
    shutdown = AbortSignal()
    worker = settings.worker
    options: dict[str, Any] = {
        "lease_duration": worker.lease_duration,
        "heartbeat_interval": worker.heartbeat_interval,
        "max_attempt_duration": worker.max_attempt_duration,
        "signal": shutdown,
    }
    grace = parse_duration(settings.worker.shutdown_grace)
    with ShutdownSignals() as signals:
        async with runtime:
            consumers = []
            for name in names:
                url = await queue_url(client, settings, name)
                entry = queue_settings(settings, name)
                consumers.append(
                    create_sqs_delivery_consumer(
                        client=client,
                        queue_url=url,
                        execute_delivery=runtime.execute_delivery,
                        delivery_options={k: v for k, v in options.items() if v is not None},
                        fifo=entry.fifo_options is not None,
                        max_number_of_messages=settings.sqs.max_messages,
                        wait_time_seconds=settings.sqs.wait_time_seconds,
                        visibility_timeout_seconds=settings.sqs.visibility_timeout_seconds,
                        concurrency=settings.sqs.consumer_concurrency,
                        verifier=verifier,
                        on_delivery_failure=functools.partial(log_delivery_failure, logger),
                    )
                )
            for consumer in consumers:
                await consumer.start()
            logger.info(
                "sqs consumers started",
                extra={"runlane": {"queues": ",".join(names), "lane": runtime.lane.name}},
            )
            stop_requested = asyncio.create_task(signals.wait())
            closed = {consumer.closed for consumer in consumers}
            try:
                await asyncio.wait({*closed, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                stop_requested.cancel()
            await _stop_all(consumers, shutdown, grace.milliseconds / 1000)
            for consumer in consumers:
                consumer.closed.result()  # a receive error ends the loop: surface it (exit 1)
    report(f"sqs consumers stopped ({', '.join(names)})")
    return 0


async def _stop_all(consumers: list[Any], shutdown: AbortSignal, grace: float) -> None:
    stopping = asyncio.gather(*(consumer.stop() for consumer in consumers), return_exceptions=True)
    done, _ = await asyncio.wait({stopping}, timeout=grace)
    if done:
        return
    shutdown.abort("worker_shutdown")
    done, _ = await asyncio.wait({stopping}, timeout=ABORT_WINDOW_SECONDS)
    if not done:
        exit_now(STUCK_EXIT_CODE, "error: SQS deliveries still running after the shutdown grace; exiting")
