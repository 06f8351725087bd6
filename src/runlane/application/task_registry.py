"""The runtime's named catalog of tasks and its queue registry (validated once at construction)."""

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass

from runlane.application.task_definition import TaskDefinition
from runlane.domain.errors import RunlaneError
from runlane.domain.queues import QueueDefinition
from runlane.domain.schedules import Schedule
from runlane.domain.vocabulary import ErrorCode

_CONFIG = ErrorCode.CONFIGURATION_INVALID


@dataclass(frozen=True, slots=True)
class RegisteredSchedule:
    task: TaskDefinition
    schedule: Schedule
    queue: QueueDefinition


class TaskCatalog(Mapping[str, TaskDefinition]):
    """``runtime.tasks.send_email`` and ``runtime.tasks["send_email"]`` by catalog name."""

    def __init__(self, by_name: Mapping[str, TaskDefinition]) -> None:
        self._by_name = dict(by_name)

    def __getitem__(self, name: str) -> TaskDefinition:
        return self._by_name[name]

    def __getattr__(self, name: str) -> TaskDefinition:
        try:
            return self._by_name[name]
        except KeyError:
            raise AttributeError(name) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


class TaskRegistry:
    def __init__(
        self,
        tasks: Mapping[str, TaskDefinition] | Sequence[TaskDefinition],
        queues: Sequence[QueueDefinition],
    ) -> None:
        self.queues: dict[str, QueueDefinition] = {}
        for queue_definition in queues:
            if not isinstance(queue_definition, QueueDefinition):
                raise RunlaneError(_CONFIG, "queues must be queue definitions (use queue(name=...)).")
            if queue_definition.name in self.queues:
                raise RunlaneError(_CONFIG, f"queue {queue_definition.name!r} is registered twice.")
            self.queues[queue_definition.name] = queue_definition
        defaults = [q for q in self.queues.values() if q.default]
        if len(defaults) > 1:
            raise RunlaneError(_CONFIG, "At most one queue may be the default queue.")
        self.default_queue = defaults[0] if defaults else None

        if isinstance(tasks, Mapping):
            named = dict(tasks)
        else:
            named = {}
            for definition in tasks:
                if not isinstance(definition, TaskDefinition):
                    raise RunlaneError(_CONFIG, "tasks must be task definitions built with task(...).")
                if named.get(definition.id, definition) is not definition:
                    raise RunlaneError(_CONFIG, f"task id {definition.id!r} is registered twice.")
                named[definition.id] = definition
        self.by_id: dict[str, TaskDefinition] = {}
        for name, definition in named.items():
            if not isinstance(definition, TaskDefinition):
                raise RunlaneError(
                    _CONFIG, f"tasks[{name!r}] must be a task definition built with task(...)."
                )
            if definition.id in self.by_id and self.by_id[definition.id] is not definition:
                raise RunlaneError(_CONFIG, f"task id {definition.id!r} is registered twice.")
            self.by_id[definition.id] = definition
            self.queue_for(definition)  # fails early when the task has no registered queue
        self.catalog = TaskCatalog(named)

        self.schedules: list[RegisteredSchedule] = []
        seen: set[str] = set()
        for definition in self.by_id.values():
            for entry in definition.schedule:
                if entry.id in seen:
                    raise RunlaneError(
                        _CONFIG, f"schedule id {entry.id!r} is used by more than one schedule."
                    )
                seen.add(entry.id)
                target = entry.queue or self.queue_for(definition)
                self.require_queue(target, code=_CONFIG)
                self.schedules.append(RegisteredSchedule(definition, entry, target))

    def queue_for(
        self, definition: TaskDefinition, override: QueueDefinition | None = None
    ) -> QueueDefinition:
        chosen = override or definition.queue or self.default_queue
        if chosen is None:
            raise RunlaneError(
                _CONFIG, f"task {definition.id!r} has no queue and the runtime has no default queue."
            )
        return self.require_queue(chosen, code=_CONFIG if override is None else ErrorCode.VALIDATION_FAILED)

    def require_queue(self, definition: QueueDefinition, *, code: ErrorCode) -> QueueDefinition:
        registered = self.queues.get(definition.name)
        if registered is None:
            raise RunlaneError(code, f"queue {definition.name!r} is not registered on this runtime.")
        if registered != definition:
            raise RunlaneError(code, f"queue {definition.name!r} differs from the registered definition.")
        return registered

    def resolve(self, handle: TaskDefinition | str) -> TaskDefinition:
        """A registered task by handle or id; anything else is ``task_not_found``."""
        task_id = handle.id if isinstance(handle, TaskDefinition) else handle
        found = self.by_id.get(task_id) if isinstance(task_id, str) else None
        if found is None or (isinstance(handle, TaskDefinition) and found is not handle):
            raise RunlaneError(
                ErrorCode.TASK_NOT_FOUND,
                f"Task {task_id!r} is not registered on this runtime.",
                meta={"taskId": str(task_id)},
            )
        return found

    def find(self, task_id: str) -> TaskDefinition | None:
        return self.by_id.get(task_id)

    @property
    def bounded_queues(self) -> dict[str, int]:
        return {q.name: q.concurrency_limit for q in self.queues.values() if q.concurrency_limit is not None}
