"""The Postgres lane: one database for the truth and for the wakeups (no message broker).

``postgres_storage(...)`` plus ``postgres_notify_transport(...)`` on the same connection string
and schema, composed with ``create_lane(production_durable=True)``: everything durable is in
Postgres; NOTIFY only shortens a worker's wait, and workers still poll, so a lost notification
costs latency, never a run. It adds no runtime semantics.
"""

import inspect
from collections.abc import Callable, Mapping
from typing import Any

from sqlalchemy.engine import URL

from runlane.domain.errors import RunlaneError, configuration_invalid
from runlane.domain.ids import IdKind, as_id
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres import postgres_notify_transport, postgres_storage
from runlane.infrastructure.postgres.connection import resolve_connection
from runlane.infrastructure.postgres.storage import PostgresStorage
from runlane.ports.lane import Lane, create_lane

POSTGRES_LANE_NAME = "postgres"
_SHARED = frozenset({"connection_string", "schema"})


def _options_of(factory: Callable[..., object]) -> frozenset[str]:
    """The factory's keyword options other than the shared connection, so the lane never drifts."""
    parameters = inspect.signature(factory).parameters.values()
    return frozenset(p.name for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY) - _SHARED


_STORAGE_OPTIONS = _options_of(postgres_storage)
_NOTIFY_OPTIONS = _options_of(postgres_notify_transport)


def _check(options: Mapping[str, Any], allowed: frozenset[str], what: str) -> dict[str, Any]:
    unknown = sorted(str(key) for key in options if key not in allowed)
    if unknown:
        raise configuration_invalid(
            f"create_postgres_lane: unknown {what} option(s) {', '.join(unknown)} "
            f"(allowed: {', '.join(sorted(allowed))}).",
            unknown=unknown,
        )
    return dict(options)


def create_postgres_lane(
    *,
    connection_string: str | URL,
    schema: str | None = None,
    name: str = POSTGRES_LANE_NAME,
    notify_options: Mapping[str, Any] | None = None,
    wakeups_in_commit: bool = True,
    **storage_options: Any,
) -> Lane:
    """Postgres storage with LISTEN/NOTIFY wakeups as one production-durable lane.

    ``storage_options`` are ``postgres_storage(...)`` options (``pool_size``, ``synchronous_commit``,
    ...); ``notify_options`` are ``postgres_notify_transport(...)`` options (``name``,
    ``health_check_interval``, ...). Both adapters use ``connection_string`` and ``schema``, so the
    wakeup channels belong to the storage's schema. Unknown options are ``configuration_invalid``;
    nothing connects until ``lane.start()``.

    ``wakeups_in_commit`` (default on): an eager trigger's wakeup is sent by the trigger's own
    commit, and its outbox row is written ``published``: one transaction per trigger instead of
    three (commit, NOTIFY, completion). Off, wakeups go through the outbox and the transport as
    on any other lane. See docs/postgres.md, "Wakeups".
    """
    try:
        as_id(IdKind.LANE, name, code=ErrorCode.CONFIGURATION_INVALID)
    except RunlaneError as exc:
        raise configuration_invalid(f"create_postgres_lane name is invalid: {exc.message}") from exc
    if notify_options is not None and not isinstance(notify_options, Mapping):
        raise configuration_invalid("create_postgres_lane notify_options must be a mapping or None.")
    storage_kwargs = _check(storage_options, _STORAGE_OPTIONS, "storage")
    notify_kwargs = _check(notify_options or {}, _NOTIFY_OPTIONS, "notify")
    # What ``postgres_storage(...)`` builds, plus the one option only this lane may set (the
    # storage validates it like its other options).
    storage = PostgresStorage(
        connection=resolve_connection(connection_string, schema),
        wakeups_in_commit=wakeups_in_commit,
        **storage_kwargs,
    )
    # The storage's resolved URL and schema: a ``?schema=`` parameter counts for both adapters.
    transport = postgres_notify_transport(
        connection_string=storage.url, schema=storage.schema, **notify_kwargs
    )
    return create_lane(name=name, storage=storage, transport=transport, production_durable=True)
