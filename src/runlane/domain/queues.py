"""Queue definitions: routing names plus optional bounded capacity."""

from dataclasses import dataclass
from typing import Any

from runlane.domain.durations import DurationValue, to_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.ids import IdKind, as_id
from runlane.domain.vocabulary import ErrorCode

_CONFIG = ErrorCode.CONFIGURATION_INVALID


@dataclass(frozen=True, slots=True)
class QueueDefinition:
    """A frozen queue value; tasks, schedules, triggers and workers pass the definition, not a name."""

    name: str
    default: bool = False
    concurrency_limit: int | None = None
    dispatch_timeout: DurationValue | None = None

    def __post_init__(self) -> None:
        as_id(IdKind.QUEUE, self.name, code=_CONFIG)
        if not isinstance(self.default, bool):
            raise RunlaneError(_CONFIG, f"queue {self.name!r}: default must be a bool.")
        if self.concurrency_limit is not None and (
            isinstance(self.concurrency_limit, bool)
            or not isinstance(self.concurrency_limit, int)
            or self.concurrency_limit < 1
        ):
            raise RunlaneError(_CONFIG, f"queue {self.name!r}: concurrency_limit must be a positive integer.")
        if self.dispatch_timeout is not None:
            if self.concurrency_limit is None:
                raise RunlaneError(
                    _CONFIG, f"queue {self.name!r}: dispatch_timeout requires concurrency_limit."
                )
            object.__setattr__(
                self,
                "dispatch_timeout",
                to_duration(self.dispatch_timeout, code=_CONFIG, field="dispatch_timeout"),
            )

    @property
    def bounded(self) -> bool:
        return self.concurrency_limit is not None

    def to_wire(self) -> dict[str, Any]:
        wire: dict[str, Any] = {"name": self.name, "default": self.default}
        if self.concurrency_limit is not None:
            wire["concurrencyLimit"] = self.concurrency_limit
        if self.dispatch_timeout is not None:
            wire["dispatchTimeout"] = self.dispatch_timeout.duration
        return wire


def queue(
    name: str,
    *,
    default: bool = False,
    concurrency_limit: int | None = None,
    dispatch_timeout: str | DurationValue | None = None,
    **unknown: object,
) -> QueueDefinition:
    """Define a queue (``configuration_invalid`` on bad or unknown options)."""
    if unknown:
        raise RunlaneError(_CONFIG, f"queue {name!r}: unknown option(s) {', '.join(sorted(unknown))}.")
    return QueueDefinition(
        name=name,
        default=default,
        concurrency_limit=concurrency_limit,
        dispatch_timeout=None if dispatch_timeout is None else to_duration(dispatch_timeout, code=_CONFIG),
    )
