"""Retry is failure pressure: a total-attempt budget and the backoff between attempts."""

from dataclasses import dataclass
from typing import cast

from runlane.domain.defaults import CONTRACT_DEFAULTS
from runlane.domain.durations import DurationValue, to_duration
from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode, RetryBackoffType

_CONFIG = ErrorCode.CONFIGURATION_INVALID


@dataclass(frozen=True, slots=True)
class RetryBackoff:
    """Strings are accepted and normalised to ``DurationValue`` (read them via ``delay_value``)."""

    type: RetryBackoffType | str
    delay: DurationValue | str
    max_delay: DurationValue | str | None = None

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "type", RetryBackoffType(self.type))
        except ValueError as exc:
            raise RunlaneError(_CONFIG, f"Unknown backoff type {self.type!r}.") from exc
        object.__setattr__(self, "delay", to_duration(self.delay, code=_CONFIG, field="backoff delay"))
        if self.max_delay is not None:
            max_delay = to_duration(self.max_delay, code=_CONFIG, field="backoff max_delay")
            if max_delay.milliseconds < self.delay_value.milliseconds:
                raise RunlaneError(_CONFIG, "backoff max_delay must not be shorter than delay.")
            object.__setattr__(self, "max_delay", max_delay)

    @property
    def delay_value(self) -> DurationValue:
        return cast(DurationValue, self.delay)

    @property
    def max_delay_value(self) -> DurationValue | None:
        return cast(DurationValue | None, self.max_delay)

    @property
    def backoff_type(self) -> RetryBackoffType:
        return cast(RetryBackoffType, self.type)

    def delay_ms(self, retry_number: int) -> int:
        """Delay before retry ``retry_number`` (1 = the retry scheduled after the first failure)."""
        if retry_number < 1:
            raise RunlaneError(ErrorCode.INVARIANT_VIOLATION, "retry numbers start at 1.")
        if self.backoff_type is RetryBackoffType.FIXED:
            return self.delay_value.milliseconds
        cap = self.max_delay_value.milliseconds if self.max_delay_value is not None else None
        # Stop doubling once past the cap so huge retry numbers never build huge integers.
        delay = self.delay_value.milliseconds
        for _ in range(retry_number - 1):
            delay *= 2
            if cap is not None and delay >= cap:
                return cap
        return delay if cap is None else min(delay, cap)


DEFAULT_BACKOFF = RetryBackoff(
    type=CONTRACT_DEFAULTS.retry.backoff_type,
    delay=to_duration(CONTRACT_DEFAULTS.retry.backoff_delay),
    max_delay=to_duration(CONTRACT_DEFAULTS.retry.backoff_max_delay),
)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """``max_attempts`` is the total budget including the first attempt; releases never consume it."""

    max_attempts: int
    backoff: RetryBackoff | str | None = None

    def __post_init__(self) -> None:
        if (
            isinstance(self.max_attempts, bool)
            or not isinstance(self.max_attempts, int)
            or self.max_attempts < 1
        ):
            raise RunlaneError(_CONFIG, "retry max_attempts must be a positive integer.")
        if self.backoff is None:
            object.__setattr__(self, "backoff", DEFAULT_BACKOFF)
        elif isinstance(self.backoff, str | DurationValue):
            object.__setattr__(
                self,
                "backoff",
                RetryBackoff(
                    RetryBackoffType.FIXED, to_duration(self.backoff, code=_CONFIG, field="retry backoff")
                ),
            )
        elif not isinstance(self.backoff, RetryBackoff):
            raise RunlaneError(_CONFIG, "retry backoff must be a duration string or a RetryBackoff.")

    @property
    def resolved_backoff(self) -> RetryBackoff:
        assert isinstance(self.backoff, RetryBackoff)
        return self.backoff

    def next_retry_delay_ms(self, *, failures: int, retryable: bool) -> int | None:
        """After ``failures`` recorded failures: the delay before the next attempt, or ``None`` to fail."""
        if not retryable or failures >= self.max_attempts:
            return None
        return self.resolved_backoff.delay_ms(failures)


NO_RETRY = RetryPolicy(max_attempts=1)


def retry_backoff(type: RetryBackoffType | str, delay: str, max_delay: str | None = None) -> RetryBackoff:
    return RetryBackoff(
        type=type,  # RetryBackoff reports an unknown type as configuration_invalid
        delay=to_duration(delay, code=_CONFIG),
        max_delay=None if max_delay is None else to_duration(max_delay, code=_CONFIG),
    )
