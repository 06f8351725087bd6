"""The one dependency-injector container every entrypoint builds from ``RunlaneSettings``.

CLI, worker and Lambda call providers explicitly (``container.runtime()``), never ``@inject``, and
call ``shutdown_resources()`` when done. Tests swap parts with ``container.lane.override(...)``.
:func:`runlane.entrypoints.bootstrap.bootstrap` builds the same objects without this library.
"""

from dependency_injector import containers, providers

from runlane.entrypoints import lane_factories
from runlane.entrypoints.app_loader import load_app
from runlane.entrypoints.settings import RunlaneSettings


class RunlaneContainer(containers.DeclarativeContainer):
    config = providers.Configuration(strict=True)
    settings = providers.Dependency(instance_of=RunlaneSettings)

    app = providers.Singleton(load_app, config.app)

    # Resources start on first use (a local lane never creates an AWS client) and are closed by
    # ``shutdown_resources()``.
    boto3_session = providers.Resource(lane_factories.boto3_session, settings)
    sqs_client = providers.Resource(lane_factories.sqs_client, boto3_session, settings)

    lane = providers.Selector(
        config.lane,
        local=providers.Singleton(lane_factories.local_lane),
        postgres=providers.Singleton(lane_factories.postgres_lane, settings),
        **{"postgres-sqs": providers.Singleton(lane_factories.postgres_sqs_lane, settings, app, sqs_client)},
    )

    runtime = providers.Singleton(lane_factories.build_runtime, app, lane, settings)
    wakeup_verifier = providers.Singleton(lane_factories.wakeup_verifier, settings)


def build_container(settings: RunlaneSettings) -> RunlaneContainer:
    """A container whose ``config`` mirrors ``settings`` (secrets masked; factories read ``settings``)."""
    container = RunlaneContainer(settings=settings)
    container.config.from_dict(settings.redacted())
    return container
