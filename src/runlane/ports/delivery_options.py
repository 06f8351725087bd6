"""``ExecuteDeliveryOptions``: the option names consumers may forward to ``execute_delivery``.

Transport consumers (Lambda handler, long-running SQS consumer) validate their ``delivery_options``
at construction but cannot import the application layer; this is the one shared definition. A test
keeps it equal to the keyword arguments of ``Runlane.execute_delivery``.
"""

from collections.abc import Mapping
from typing import Any

from runlane.domain.durations import to_duration
from runlane.domain.errors import configuration_invalid
from runlane.domain.ids import IdKind, as_id
from runlane.domain.vocabulary import ErrorCode

DURATION_OPTIONS = ("heartbeat_interval", "lease_duration", "max_attempt_duration")
EXECUTE_DELIVERY_OPTIONS = (*DURATION_OPTIONS, "signal", "worker_id")


def check_delivery_options(options: object) -> dict[str, Any]:
    """Strict keys and valid values (``configuration_invalid``); the values are forwarded unchanged."""
    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise configuration_invalid("delivery_options must be a mapping of execute_delivery options.")
    for key, value in options.items():
        if key not in EXECUTE_DELIVERY_OPTIONS:
            raise configuration_invalid(
                f"delivery_options {key!r} is not an execute_delivery option "
                f"(allowed: {', '.join(EXECUTE_DELIVERY_OPTIONS)}).",
                field=str(key),
            )
        if value is None:
            continue
        if key in DURATION_OPTIONS:
            to_duration(value, code=ErrorCode.CONFIGURATION_INVALID, field=key)
        elif key == "worker_id":
            as_id(IdKind.WORKER, value, code=ErrorCode.CONFIGURATION_INVALID)
        elif not hasattr(value, "aborted"):
            raise configuration_invalid("delivery_options signal must be an abort signal (with .aborted).")
    return dict(options)
