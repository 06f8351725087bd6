"""``bootstrap(settings)``: the container's wiring as plain calls, so dependency-injector stays optional.

Same factories, same order; useful in scripts and as the fallback if the DI library goes stale.
"""

from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import Any

from runlane.application.app_definition import RunlaneApp
from runlane.application.runtime import Runlane
from runlane.entrypoints import lane_factories
from runlane.entrypoints.app_loader import load_app
from runlane.entrypoints.settings import RunlaneSettings
from runlane.ports.lane import Lane


@dataclass(eq=False)
class Bootstrapped:
    settings: RunlaneSettings
    app: RunlaneApp
    lane: Lane
    runtime: Runlane
    _resources: ExitStack = field(default_factory=ExitStack, repr=False)

    async def aclose(self) -> None:
        """Close the runtime (lane), then release clients (the SQS client's HTTP pool)."""
        try:
            await self.runtime.close()
        finally:
            self._resources.close()


def _enter(stack: ExitStack, generator: Any) -> Any:
    value = next(generator)
    stack.callback(generator.close)
    return value


def bootstrap(
    settings: RunlaneSettings, *, app: RunlaneApp | None = None, lane: Lane | None = None
) -> Bootstrapped:
    resources = ExitStack()
    try:
        chosen_app = app if app is not None else load_app(settings.app)
        if lane is None:
            if settings.lane == "local":
                lane = lane_factories.local_lane()
            elif settings.lane == "postgres":
                lane = lane_factories.postgres_lane(settings)
            else:
                session = _enter(resources, lane_factories.boto3_session(settings))
                client = _enter(resources, lane_factories.sqs_client(session, settings))
                lane = lane_factories.postgres_sqs_lane(settings, chosen_app, client)
        runtime = lane_factories.build_runtime(chosen_app, lane, settings)
    except BaseException:
        resources.close()
        raise
    return Bootstrapped(settings=settings, app=chosen_app, lane=lane, runtime=runtime, _resources=resources)
