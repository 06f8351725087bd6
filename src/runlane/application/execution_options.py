"""Options shared by every path that executes an attempt (worker, execute_next, delivery, run_now)."""

from dataclasses import dataclass

from runlane.application.signal import AbortSignal
from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.durations import DurationValue, to_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.ids import IdKind, as_id
from runlane.domain.vocabulary import ErrorCode


@dataclass(frozen=True, slots=True, kw_only=True)
class ExecutionOptions:
    lease_duration: DurationValue
    heartbeat_interval: DurationValue
    max_attempt_duration: DurationValue | None
    worker_id: str
    signal: AbortSignal | None


def execution_options(
    *,
    default_worker_id: str,
    lease_duration: object = None,
    heartbeat_interval: object = None,
    max_attempt_duration: object = None,
    worker_id: object = None,
    signal: object = None,
    code: ErrorCode = ErrorCode.VALIDATION_FAILED,
) -> ExecutionOptions:
    lease = to_duration(
        lease_duration if lease_duration is not None else CONTRACT_DEFAULTS.lease.duration,
        code=code,
        field="lease_duration",
    )
    if heartbeat_interval is None:
        beat_ms = max(1, lease.milliseconds // CONTRACT_DEFAULTS.lease.heartbeat_divisor)
        beat = DurationValue(f"{beat_ms}ms", beat_ms)
    else:
        beat = to_duration(heartbeat_interval, code=code, field="heartbeat_interval")
    if beat.milliseconds >= lease.milliseconds:
        raise RunlaneError(code, "heartbeat_interval must be shorter than lease_duration.")
    if signal is not None and not isinstance(signal, AbortSignal):
        raise RunlaneError(code, "signal must be a runlane AbortSignal.")
    return ExecutionOptions(
        lease_duration=lease,
        heartbeat_interval=beat,
        max_attempt_duration=(
            None
            if max_attempt_duration is None
            else to_duration(max_attempt_duration, code=code, field="max_attempt_duration")
        ),
        worker_id=default_worker_id if worker_id is None else as_id(IdKind.WORKER, worker_id, code=code),
        signal=signal,
    )
