"""``RunlaneApp``: a deployable definition (queues + tasks) that entrypoints bind to a lane.

Producers can call ``create_runlane`` directly; the CLI, worker and Lambda entrypoints instead
load a ``RunlaneApp`` (``--app module:attribute``) and build the runtime on the lane their settings
select, so a deployment changes configuration, not code.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from runlane.application.runtime import Runlane, create_runlane
from runlane.application.task_definition import TaskDefinition
from runlane.application.task_registry import TaskRegistry
from runlane.domain.errors import configuration_invalid
from runlane.domain.queues import QueueDefinition
from runlane.ports.lane import Lane


@dataclass(frozen=True, eq=False)
class RunlaneApp:
    queues: Sequence[QueueDefinition]
    tasks: Mapping[str, TaskDefinition] | Sequence[TaskDefinition]
    profiles: Mapping[str, Sequence[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        registry = TaskRegistry(self.tasks, self.queues)  # validates now: bad definitions fail at import
        for name, queue_names in self.profiles.items():
            unknown = [q for q in queue_names if q not in registry.queues]
            if unknown:
                raise configuration_invalid(
                    f"profile {name!r} names unregistered queue(s): {', '.join(unknown)}."
                )

    def queues_for_profile(self, profile: str) -> tuple[QueueDefinition, ...]:
        """A named set of queues one deployment's workers consume (the peer system's profiles)."""
        if profile not in self.profiles:
            raise configuration_invalid(
                f"Unknown worker profile {profile!r}; known: {', '.join(self.profiles) or 'none'}."
            )
        by_name = {q.name: q for q in self.queues}
        return tuple(by_name[name] for name in self.profiles[profile])

    def build_runtime(self, lane: Lane, **options: Any) -> Runlane:
        return create_runlane(lane=lane, queues=list(self.queues), tasks=self.tasks, **options)
