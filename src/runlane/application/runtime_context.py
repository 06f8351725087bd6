"""What every use case needs: the lane, the catalog, the clock and the runtime's identity."""

import logging
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from runlane.application.outcome_batcher import OutcomeBatcher
from runlane.application.task_registry import TaskRegistry
from runlane.domain.errors import capability_unsupported
from runlane.domain.values import Environment
from runlane.domain.vocabulary import TriggerDispatchMode
from runlane.ports.clock import Clock
from runlane.ports.lane import Lane

if TYPE_CHECKING:
    from runlane.application.task_context import AttemptHandle

LOGGER = logging.getLogger("runlane")


@dataclass(eq=False, kw_only=True)
class RuntimeContext:
    lane: Lane
    registry: TaskRegistry
    clock: Clock
    environment: Environment
    worker_id: str
    dispatch: TriggerDispatchMode
    max_payload_bytes: int
    executor: ThreadPoolExecutor
    in_flight: dict[str, "AttemptHandle"] = field(default_factory=dict)
    logger: logging.Logger = LOGGER
    _outcomes: OutcomeBatcher | None = None

    @property
    def outcomes(self) -> OutcomeBatcher:
        """The runtime-wide group commit for attempt outcomes."""
        if self._outcomes is None:
            self._outcomes = OutcomeBatcher(self.lane.storage, self.environment)
        return self._outcomes

    def now(self) -> datetime:
        return self.clock.now()

    def require_storage(self, flag: str) -> None:
        if not getattr(self.lane.capabilities.storage, flag):
            raise capability_unsupported(flag, f"The lane's storage does not support {flag}.")

    def require_operator_reads(self) -> None:
        if not self.lane.capabilities.operator_reads or not self.lane.capabilities.storage.reads_run_history:
            raise capability_unsupported(
                "operator_reads", "Operator reads need lane.operator_reads and storage.reads_run_history."
            )

    def log(self, level: int, message: str, **fields: Any) -> None:
        """Structured log line: run/task/queue/attempt/event ids only, never payloads."""
        if not self.logger.isEnabledFor(level):
            return
        self.logger.log(level, message, extra={"runlane": {k: v for k, v in fields.items() if v is not None}})
