"""A scheduled Lambda for maintenance: ``runlane.entrypoints.lambda_tick.handler``.

Target it with an EventBridge rule (``rate(1 minute)``); it runs one bounded ``tick()`` with the
same ``RUNLANE_*`` settings as every other entrypoint. It is deliberately separate from the SQS
delivery handler, which never ticks.
"""

import asyncio
from dataclasses import dataclass

from runlane.application.runtime import Runlane
from runlane.entrypoints.container import RunlaneContainer, build_container
from runlane.entrypoints.logging_setup import configure_logging
from runlane.entrypoints.settings_loading import load_settings


@dataclass(eq=False)
class TickRuntime:
    container: RunlaneContainer
    runtime: Runlane
    runner: asyncio.Runner

    def tick(self) -> dict[str, int]:
        limit = self.container.settings().tick.limit
        return self.runner.run(self.runtime.tick(limit=limit)).to_dict()

    def close(self) -> None:
        try:
            self.runner.run(self.runtime.close())
        finally:
            self.runner.close()
            self.container.shutdown_resources()


def build_tick_runtime(container: RunlaneContainer | None = None) -> TickRuntime:
    if container is None:
        settings = load_settings()
        configure_logging(settings.log)
        container = build_container(settings)
    return TickRuntime(container=container, runtime=container.runtime(), runner=asyncio.Runner())


_cached: TickRuntime | None = None


def handler(event: object = None, context: object = None) -> dict[str, int]:
    """One maintenance pass; returns its counts (visible in the Lambda's result and logs)."""
    global _cached
    if _cached is None:
        _cached = build_tick_runtime()
    return _cached.tick()


def reset() -> None:
    global _cached
    cached, _cached = _cached, None
    if cached is not None:
        cached.close()
