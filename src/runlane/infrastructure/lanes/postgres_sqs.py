"""The Postgres/SQS lane: Postgres storage owns the truth, SQS only carries wakeups.

A pure composition of ``sqs_transport(...)`` and ``postgres_storage(...)`` with ``create_lane``. It
adds no runtime semantics: no worker loops, Lambda parsing, retries, releases, schedules, polling or
outbox recovery. Those stay in core (``execute_delivery``, ``tick``) and in the SQS consumers.
"""

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.ids import IdKind, as_id
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres import postgres_storage
from runlane.infrastructure.sqs import sqs_transport
from runlane.ports.lane import Lane, create_lane

POSTGRES_SQS_LANE_NAME = "postgres-sqs"


def _keywords(factory: Callable[..., object]) -> tuple[frozenset[str], frozenset[str]]:
    """(all, required) keyword names of an adapter factory, so the lane never drifts from it."""
    parameters = inspect.signature(factory).parameters.values()
    keyword_only = [p for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY]
    return (
        frozenset(p.name for p in keyword_only),
        frozenset(p.name for p in keyword_only if p.default is inspect.Parameter.empty),
    )


_POSTGRES_KEYS = _keywords(postgres_storage)
_SQS_KEYS = _keywords(sqs_transport)


def _adapter_options(
    field: str, options: object, keys: tuple[frozenset[str], frozenset[str]], factory: str
) -> dict[str, Any]:
    """Check one adapter's options strictly: a mapping of the factory's keywords, required ones set."""
    if options is None:
        raise configuration_invalid(f"create_postgres_sqs_lane needs {field} options.", field=field)
    if not isinstance(options, Mapping):
        raise configuration_invalid(
            f"create_postgres_sqs_lane {field} must be a mapping of {factory}(...) options.", field=field
        )
    allowed, required = keys
    unknown = sorted(str(key) for key in options if key not in allowed)
    if unknown:
        raise configuration_invalid(
            f"create_postgres_sqs_lane {field}: unknown option(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))}).",
            field=field,
            unknown=unknown,
        )
    missing = sorted(required - set(options))
    if missing:
        raise configuration_invalid(
            f"create_postgres_sqs_lane {field}: missing required option(s) {', '.join(missing)}.",
            field=field,
            missing=missing,
        )
    return dict(options)


def create_postgres_sqs_lane(
    *,
    postgres: Mapping[str, Any] | None = None,
    sqs: Mapping[str, Any] | None = None,
    name: str = POSTGRES_SQS_LANE_NAME,
    **unknown: object,
) -> Lane:
    """Postgres storage plus SQS wakeups as one production-durable lane.

    ``postgres`` holds ``postgres_storage(...)`` options (``connection_string``, ``schema``, pool
    settings); ``sqs`` holds ``sqs_transport(...)`` options (``client``, ``queues``, ``batch_size``,
    ``signer``, ...). Unknown or missing options are ``configuration_invalid`` before anything is built;
    the adapters then check their own values. Nothing connects until ``lane.start()``.
    """
    if unknown:
        raise configuration_invalid(
            f"create_postgres_sqs_lane: unknown option(s) {', '.join(sorted(unknown))}.",
            unknown=sorted(unknown),
        )
    try:
        as_id(IdKind.LANE, name, code=ErrorCode.CONFIGURATION_INVALID)
    except RunlaneError as exc:
        raise configuration_invalid(f"create_postgres_sqs_lane name is invalid: {exc.message}") from exc
    postgres_options = _adapter_options("postgres", postgres, _POSTGRES_KEYS, "postgres_storage")
    sqs_options = _adapter_options("sqs", sqs, _SQS_KEYS, "sqs_transport")
    transport = sqs_transport(**sqs_options)
    storage = postgres_storage(**postgres_options)
    return create_lane(name=name, production_durable=True, storage=storage, transport=transport)
