"""The Postgres tables as SQLAlchemy Core: the single source of the storage schema.

``build_tables(schema)`` returns the tables bound to one (validated) schema name; SQLAlchemy quotes
it wherever it is rendered. Migrations are checked against these definitions by a test, so a change
here needs a new migration in ``migrations/``.

Documents (the run record with its payload, events, delivery messages, failure records) are stored
as ``json``, not ``jsonb``: ``jsonb`` rejects ``\\u0000``, reorders object keys and normalises
numbers, and a payload must read back exactly as it was written. The adapter serialises documents
itself and reads the column back as text (``ExactJson``), so neither the engine's JSON settings nor
psycopg's loaders can change them. The columns next to a document copy the fields that queries
filter, order or lock on.
"""

import json
import threading
from dataclasses import dataclass
from functools import lru_cache
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeDecorator, UserDefinedType

from runlane.domain.vocabulary import LEASED_RUN_STATUSES, RUNNABLE_RUN_STATUSES, OutboxMessageStatus
from runlane.infrastructure.postgres.identifiers import validate_schema_name

NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

RUNNABLE_STATUS_VALUES = tuple(sorted(status.value for status in RUNNABLE_RUN_STATUSES))
LEASED_STATUS_VALUES = tuple(sorted(status.value for status in LEASED_RUN_STATUSES))
OPEN_OUTBOX_STATUS_VALUES = tuple(
    sorted(
        s.value
        for s in (OutboxMessageStatus.PENDING, OutboxMessageStatus.FAILED, OutboxMessageStatus.CLAIMED)
    )
)


# ``json.dumps`` with these settings builds a new encoder on every call; one shared encoder
# (stateless between calls) gives the same text without that cost.
_ENCODER = json.JSONEncoder(separators=(",", ":"), ensure_ascii=True, allow_nan=False)


# ``JSONEncoder.encode`` also builds a C encoder (and a float formatter) on every call, which cost a
# third of encoding a run record. Each thread keeps one built like ``iterencode`` builds it, with its
# own circular-reference markers; a call that raised may leave markers behind, so it is rebuilt.
_LOCAL = threading.local()


def _c_encoder() -> Any:
    e = _ENCODER
    encoder = c_make_encoder(
        {} if e.check_circular else None,
        e.default,
        encode_basestring_ascii,
        e.indent,
        e.key_separator,
        e.item_separator,
        e.sort_keys,
        e.skipkeys,
        e.allow_nan,
    )
    _LOCAL.encoder = encoder
    return encoder


def dumps_json(value: Any) -> str:
    """Compact JSON with ASCII escapes: valid in any server encoding, ``\\u0000`` included.

    The same text as ``_ENCODER.encode(value)`` (and the same errors), without its per-call setup.
    """
    if c_make_encoder is None:
        return _ENCODER.encode(value)
    encoder = getattr(_LOCAL, "encoder", None) or _c_encoder()
    try:
        return "".join(encoder(value, 0))
    except BaseException:
        _c_encoder()
        raise


class _JsonTextResult(TypeDecorator[Any]):
    """The text of a ``json`` column, parsed by the adapter (see ``ExactJson``)."""

    impl = sa.Text
    cache_ok = True

    def process_result_value(self, value: Any, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


class ExactJson(UserDefinedType[Any]):
    """A ``json`` column written from ``dumps_json`` and read back as its stored text."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "JSON"

    def bind_processor(self, dialect: Dialect) -> Any:
        def process(value: Any) -> str | None:
            return None if value is None else dumps_json(value)

        return process

    def column_expression(self, colexpr: ColumnElement[Any]) -> ColumnElement[Any]:
        return sa.type_coerce(sa.cast(colexpr, sa.Text), _JsonTextResult())


def _ts(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _text(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Text, nullable=nullable)


# Events and outbox rows carry no foreign key to their run. Every write of them runs in the
# transaction (mostly the very statement) that inserts, or locks and updates, their run row, and
# pruning deletes them with their run, so the check could never fail. It cost three lookups of
# ``runs`` per trigger and one per event on every outcome. Worse, a backend plans such a check
# once: on a table without statistics it picked ``ix_runs_updated`` (environment first, id last)
# and then walked every run of the environment per check until autovacuum analyzed ``runs``; on a
# fresh database a trigger's server time grew from 0.74 to 2.76 ms over 10,000 runs
# (docs/performance.md).


def _run_fk(*, deferred: bool = False) -> sa.ForeignKeyConstraint:
    """Rows owned by a run go with it (pruning deletes the run row; these cascade).

    Ownership rows use a deferred check: a create takes the key before it inserts its run row,
    so concurrent creates serialise on the key (and a create that converges writes no run at all).
    """
    return sa.ForeignKeyConstraint(
        ["environment", "run_id"],
        ["runs.environment", "runs.id"],
        ondelete="CASCADE",
        deferrable=True if deferred else None,
        initially="DEFERRED" if deferred else None,
    )


@dataclass(frozen=True, slots=True)
class StorageTables:
    metadata: sa.MetaData
    schema: str
    runs: sa.Table
    run_events: sa.Table
    outbox_messages: sa.Table
    idempotency_owners: sa.Table
    singleton_owners: sa.Table
    queue_reservations: sa.Table
    schedule_occurrences: sa.Table
    schema_migrations: sa.Table


@lru_cache(maxsize=32)
def build_tables(schema: str) -> StorageTables:
    """Every storage table in ``schema`` (a name ``identifiers.validate_schema_name`` accepts)."""
    md = sa.MetaData(schema=validate_schema_name(schema), naming_convention=NAMING_CONVENTION)
    runs = sa.Table(
        "runs",
        md,
        _text("environment"),
        _text("id"),
        _text("task_id"),
        _text("queue"),
        _text("status"),
        sa.Column("event_sequence", sa.Integer, nullable=False),
        _ts("created_at"),
        _ts("updated_at"),
        _ts("run_at", nullable=True),
        # run_at, else updated_at: when a runnable run becomes due (RunRecord.available_at).
        _ts("available_at"),
        _text("idempotency_key", nullable=True),
        _text("singleton_key", nullable=True),
        _text("concurrency_key", nullable=True),
        _text("lease_worker_id", nullable=True),
        _ts("lease_expires_at", nullable=True),
        sa.Column("record", ExactJson(), nullable=False),
        sa.PrimaryKeyConstraint("environment", "id"),
    )
    runnable = runs.c.status.in_(RUNNABLE_STATUS_VALUES)
    leased = runs.c.status.in_(LEASED_STATUS_VALUES)
    # Hot paths: due-run claims and dispatch reservations, expired-lease recovery, bounded-queue
    # occupancy, operator lists by created/updated time, pruning by status and age.
    # Claims across all queues read this one in order and stop after LIMIT rows (no sort of the
    # whole backlog); claims for given queues use ix_runs_due.
    sa.Index(
        "ix_runs_due_any_queue",
        runs.c.environment,
        runs.c.available_at,
        runs.c.id,
        postgresql_where=runnable,
    )
    sa.Index(
        "ix_runs_due",
        runs.c.environment,
        runs.c.queue,
        runs.c.available_at,
        runs.c.id,
        postgresql_where=runnable,
    )
    sa.Index(
        "ix_runs_lease_expiry",
        runs.c.environment,
        runs.c.lease_expires_at,
        runs.c.id,
        postgresql_where=leased,
    )
    # Concurrency keys are user data too: indexes hold md5(key), queries compare md5 and the key.
    sa.Index(
        "ix_runs_leased_partition",
        runs.c.environment,
        runs.c.queue,
        sa.func.md5(runs.c.concurrency_key),
        postgresql_where=leased,
    )
    sa.Index("ix_runs_created", runs.c.environment, runs.c.created_at, runs.c.id)
    sa.Index("ix_runs_updated", runs.c.environment, runs.c.updated_at, runs.c.id)
    sa.Index("ix_runs_prune", runs.c.environment, runs.c.status, runs.c.updated_at, runs.c.id)

    run_events = sa.Table(
        "run_events",
        md,
        _text("id", nullable=False),
        _text("environment"),
        _text("run_id"),
        sa.Column("sequence", sa.Integer, nullable=False),
        _text("type"),
        _ts("occurred_at"),
        sa.Column("event", ExactJson(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("environment", "run_id", "sequence"),
        # No foreign key to ``runs`` (migration 0002): see the note above ``_run_fk``.
    )

    outbox = sa.Table(
        "outbox_messages",
        md,
        _text("id"),
        # Insertion order: ties on available_at are claimed and listed in the order rows were written.
        sa.Column("position", sa.BigInteger, sa.Identity(always=False), nullable=False),
        _text("environment"),
        _text("run_id"),
        _text("queue"),
        _text("status"),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("message", ExactJson(), nullable=False),
        _ts("available_at"),
        _ts("created_at"),
        _ts("updated_at"),
        _text("claim_token", nullable=True),
        _ts("claimed_at", nullable=True),
        _ts("published_at", nullable=True),
        _text("provider_message_id", nullable=True),
        sa.Column("last_error", ExactJson(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        # No foreign key to ``runs`` (migration 0002): see the note above ``_run_fk``.
    )
    sa.Index(
        "ix_outbox_messages_claim",
        outbox.c.environment,
        outbox.c.available_at,
        outbox.c.position,
        postgresql_where=outbox.c.status.in_(OPEN_OUTBOX_STATUS_VALUES),
    )
    sa.Index("ix_outbox_messages_run", outbox.c.environment, outbox.c.run_id, outbox.c.position)
    sa.Index("ix_outbox_messages_position", outbox.c.environment, outbox.c.position)

    # Keys are user data of any length; the primary key holds their SHA-256 (a btree entry is
    # limited to about 2.7 kB) and the key itself is kept alongside for operators.
    def owner_table(name: str, key_column: str) -> sa.Table:
        table = sa.Table(
            name,
            md,
            _text("environment"),
            _text("task_id"),
            sa.Column("key_digest", sa.LargeBinary, nullable=False),
            _text(key_column),
            _text("run_id"),
            sa.PrimaryKeyConstraint("environment", "task_id", "key_digest"),
            _run_fk(deferred=True),
        )
        sa.Index(f"ix_{name}_run", table.c.environment, table.c.run_id)
        return table

    idempotency_owners = owner_table("idempotency_owners", "idempotency_key")
    singleton_owners = owner_table("singleton_owners", "singleton_key")

    reservations = sa.Table(
        "queue_reservations",
        md,
        _text("environment"),
        _text("run_id"),
        _text("queue"),
        _text("concurrency_key", nullable=True),
        _ts("reserved_at"),
        _ts("expires_at", nullable=True),
        sa.PrimaryKeyConstraint("environment", "run_id"),
        _run_fk(),
    )
    sa.Index(
        "ix_queue_reservations_partition",
        reservations.c.environment,
        reservations.c.queue,
        sa.func.md5(reservations.c.concurrency_key),
    )
    sa.Index(
        "ix_queue_reservations_expiry",
        reservations.c.environment,
        reservations.c.expires_at,
        reservations.c.run_id,
        postgresql_where=reservations.c.expires_at.is_not(None),
    )

    # No foreign key to runs: a pruned run must not free its occurrence, or a once-schedule whose
    # fire time stays "latest due" would be materialised a second time.
    occurrences = sa.Table(
        "schedule_occurrences",
        md,
        _text("environment"),
        _text("occurrence_id"),
        _text("schedule_id"),
        _text("task_id"),
        _ts("fire_time"),
        _text("status"),
        _text("run_id"),
        _ts("claimed_at"),
        sa.PrimaryKeyConstraint("environment", "occurrence_id"),
    )
    sa.Index(
        "ix_schedule_occurrences_schedule",
        occurrences.c.environment,
        occurrences.c.schedule_id,
        occurrences.c.fire_time,
    )

    migrations = sa.Table(
        "schema_migrations",
        md,
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        _text("name"),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.PrimaryKeyConstraint("version"),
    )
    return StorageTables(
        metadata=md,
        schema=schema,
        runs=runs,
        run_events=run_events,
        outbox_messages=outbox,
        idempotency_owners=idempotency_owners,
        singleton_owners=singleton_owners,
        queue_reservations=reservations,
        schedule_occurrences=occurrences,
        schema_migrations=migrations,
    )
