"""The AWS Lambda entrypoint for SQS wakeups: ``runlane.entrypoints.lambda_handler.handler``.

Configure it with the same ``RUNLANE_*`` settings as the worker (``RUNLANE_APP``, ``RUNLANE_LANE``,
``RUNLANE_DATABASE_URL`` ...). The container, runtime and event loop are built on the first
invocation and reused by every warm one. Enable ``ReportBatchItemFailures`` on the event source
mapping: only failed records are returned. ``tick()`` never runs here; schedule ``runlane tick``.
"""

import asyncio
import functools
import logging
from dataclasses import dataclass
from typing import Any

from runlane.application.runtime import Runlane
from runlane.entrypoints.container import RunlaneContainer, build_container
from runlane.entrypoints.logging_setup import configure_logging, log_delivery_failure
from runlane.entrypoints.settings_loading import load_settings

logger = logging.getLogger("runlane.lambda")


@dataclass(eq=False)
class LambdaRuntime:
    container: RunlaneContainer
    runtime: Runlane
    sqs_handler: Any
    runner: asyncio.Runner

    def invoke(self, event: object, context: object) -> dict[str, list[dict[str, str]]]:
        result: dict[str, list[dict[str, str]]] = self.runner.run(self.sqs_handler(event, context))
        return result

    def close(self) -> None:
        try:
            self.runner.run(self.runtime.close())
        finally:
            self.runner.close()
            self.container.shutdown_resources()


def build_lambda_runtime(container: RunlaneContainer | None = None) -> LambdaRuntime:
    """Everything one Lambda execution environment keeps between invocations."""
    from runlane.infrastructure.sqs import create_sqs_lambda_handler

    if container is None:
        settings = load_settings()
        configure_logging(settings.log)
        container = build_container(settings)
    settings = container.settings()
    runtime = container.runtime()
    worker = settings.worker
    options = {
        "lease_duration": worker.lease_duration,
        "heartbeat_interval": worker.heartbeat_interval,
        "max_attempt_duration": worker.max_attempt_duration,
    }
    sqs_handler = create_sqs_lambda_handler(
        execute_delivery=runtime.execute_delivery,
        delivery_options={key: value for key, value in options.items() if value is not None},
        fifo=settings.sqs.lambda_fifo,
        verifier=container.wakeup_verifier(),
        on_delivery_failure=functools.partial(log_delivery_failure, logger),
    )
    return LambdaRuntime(
        container=container, runtime=runtime, sqs_handler=sqs_handler, runner=asyncio.Runner()
    )


_cached: LambdaRuntime | None = None


def handler(event: object, context: object = None) -> dict[str, list[dict[str, str]]]:
    """SQS event in, ``{"batchItemFailures": [...]}`` out."""
    global _cached
    if _cached is None:
        _cached = build_lambda_runtime()
    return _cached.invoke(event, context)


def reset() -> None:
    """Close the cached runtime (tests; a Lambda environment simply ends)."""
    global _cached
    cached, _cached = _cached, None
    if cached is not None:
        cached.close()
