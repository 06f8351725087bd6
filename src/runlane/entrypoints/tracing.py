"""W3C Trace Context for runs: a ``traceparent`` header carried in the run's ``trace_carrier``.

Producers pass the carrier to ``trigger``; the runtime stores it with the run, hands it to the
handler as ``context.run.trace_carrier`` and logs its ``traceparent`` on every attempt line, so a
worker's logs join the producer's trace. No tracing SDK is needed for that.
"""

import re
import secrets

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")


def check_traceparent(value: str) -> str:
    """Return ``value`` if it is a valid version-00 style ``traceparent``; ``validation_failed`` otherwise."""
    match = _TRACEPARENT.fullmatch(value)
    if (
        match is None
        or match.group(1) == "ff"
        or set(match.group(2)) == {"0"}
        or set(match.group(3)) == {"0"}
    ):
        raise RunlaneError(
            ErrorCode.VALIDATION_FAILED,
            f"traceparent {value[:60]!r} is not a W3C traceparent (00-<32 hex>-<16 hex>-<2 hex>).",
        )
    return value


def new_traceparent(*, sampled: bool = True) -> str:
    """A fresh root context: a new trace id and span id."""
    trace_id = secrets.token_hex(16)
    span_id = secrets.token_hex(8)
    return f"00-{trace_id}-{span_id}-{'01' if sampled else '00'}"


def trace_carrier(traceparent: str | None, tracestate: str | None = None) -> dict[str, str] | None:
    if traceparent is None:
        return None
    carrier = {TRACEPARENT: check_traceparent(traceparent)}
    if tracestate:
        carrier[TRACESTATE] = tracestate
    return carrier
