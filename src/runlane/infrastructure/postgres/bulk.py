"""Set-based writes of many staged runs: one statement per batch, whatever the batch size.

Rows travel as one array per column (``unnest($1::text[], $2::int[], ...)``,
each an array literal encoded by ``array_literals``), so the SQL text never depends on how many
runs a batch holds: SQLAlchemy compiles each statement once per schema and psycopg prepares it on
the server after a few executions (``prepare_threshold``). A per-row ``VALUES`` list or an
expanding ``IN`` would give every batch size its own text, cache entry and prepared statement. An
update of one run has a text of its own, with scalar parameters (``RunWrite.ONE``), so that the
server keeps its generic plan; so does the create of one run with one outbox row (a ``trigger``:
``RunWrite.CREATE_ONE``), which spares encoding 29 one-element arrays and unnesting them.

``write_staged`` is a single statement of data-modifying CTEs: the head writes the run rows
(a compare-and-set ``UPDATE``, after locking the batch's rows in id order or, for rows the
transaction already holds, by their row version; or an ``INSERT ... ON CONFLICT DO NOTHING``)
and returns the ids it won; the events, the derived outbox
rows and the ended reservations are joined to those ids, so a run that lost its compare-and-set
gets nothing written, in the same round trip."""

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import TypeEngine

from runlane.domain.errors import invariant_violation
from runlane.domain.vocabulary import RUNNABLE_RUN_STATUSES
from runlane.infrastructure.postgres import commit_wakeups, driver_statements
from runlane.infrastructure.postgres.array_literals import (
    array_literal,
    array_param,
    document_array,
    int_array,
    text_array,
    timestamp_array,
)
from runlane.infrastructure.postgres.row_versions import Tid, row_version
from runlane.infrastructure.postgres.rows import event_values, run_values
from runlane.infrastructure.postgres.schema import (
    RUNNABLE_STATUS_VALUES,
    ExactJson,
    StorageTables,
    build_tables,
    dumps_json,
)
from runlane.infrastructure.postgres.writes import StagedWrite

RUN_COLUMNS = (
    "environment",
    "id",
    "task_id",
    "queue",
    "status",
    "event_sequence",
    "created_at",
    "updated_at",
    "run_at",
    "available_at",
    "idempotency_key",
    "singleton_key",
    "concurrency_key",
    "lease_worker_id",
    "lease_expires_at",
    "record",
)
_UPDATED_RUN_COLUMNS = tuple(name for name in RUN_COLUMNS if name not in ("environment", "id"))
EVENT_COLUMNS = ("id", "environment", "run_id", "sequence", "type", "occurred_at", "event")
OUTBOX_COLUMNS = (
    "id",
    "environment",
    "run_id",
    "queue",
    "status",
    "attempts",
    "message",
    "available_at",
    "created_at",
    "updated_at",
    "claim_token",
    "claimed_at",
    "published_at",
)
_ENVIRONMENT = "w_environment"
_EXPECTED = "w_expected"
_RUN_IDS = "w_run_ids"
_ORDINAL = "w_ordinal"
_VERSION = "w_version"


class RunWrite(Enum):
    """How the head of ``write_staged`` writes the run rows."""

    CREATE = "create"  # INSERT ... ON CONFLICT DO NOTHING: an existing id loses
    UPDATE = "update"  # UPDATE ... WHERE event_sequence = expected: a moved run loses
    # UPDATE of rows this transaction holds FOR UPDATE since an earlier statement, by row version
    # (``row_versions``), same compare-and-set: no lock to take again, no join back by id.
    HELD = "held"
    # ``UPDATE`` of a single run (``staged_statement`` picks it): the run's values are scalar
    # parameters, so the generic plan has the custom plan's shape and the server keeps it.
    ONE = "one"
    # ``CREATE`` of a single run with exactly one outbox row (``staged_statement`` picks it): the
    # run's and the outbox row's values are scalar parameters; the events stay arrays.
    CREATE_ONE = "create_one"


_CREATES = (RunWrite.CREATE, RunWrite.CREATE_ONE)
_SINGLE_RUN = (RunWrite.ONE, RunWrite.CREATE_ONE)


def _item_type(column: sa.Column[Any]) -> TypeEngine[Any]:
    """Documents travel as text and are cast to ``json`` in SQL (exact text, see ``ExactJson``)."""
    return sa.Text() if isinstance(column.type, ExactJson) else column.type


def _bind(prefix: str, name: str) -> str:
    return f"{prefix}_{name}"


def ids_array(name: str) -> ColumnElement[Any]:
    """One ``text[]`` parameter for ``column = ANY(:name)``: the same SQL text for any number of ids."""
    return array_param(name, sa.Text())


# A whole column (``unnest`` rows) or, for a ``single`` row, its one value.
_Encoder = Callable[[Any], object]


def _as_is(value: object) -> object:
    """A ``single`` row's value, bound as it is (psycopg adapts it; the SQL casts it)."""
    return value


def locked_in_id_order(table: sa.Table, environment: str, ids: str, name: str) -> sa.CTE:
    """A CTE locking ``table``'s rows with the ids of the ``ids`` text[] parameter, in id order.

    Set-based updates join it, so whatever join the planner picks, the rows are locked in one
    order: two statements sharing rows queue behind each other instead of deadlocking. The join
    also drives the update's primary-key lookups while a table has no statistics yet (see
    docs/postgres.md: an uncorrelated gate instead of the join let the planner scan the whole
    environment per statement on a fresh database).

    Each id is locked by a ``LATERAL`` subquery of its own (``environment = $1 AND id = ids.id``),
    which Postgres cannot flatten (it holds ``FOR UPDATE``) and must run once per id, in the
    sorted ids' order: a primary-key lookup whatever the statistics say. A plain join of the
    unnest'ed ids was planned, on a table without statistics, as a hash join over every run of the
    environment (and ``id = ANY(...)`` as a filter over them), so psycopg's generic plan walked the
    whole environment for every claim and outcome until autovacuum analyzed the table.
    """
    unnested = sa.func.unnest(ids_array(ids)).table_valued(sa.column("id", sa.Text())).render_derived()
    wanted = sa.select(unnested.c.id).order_by(unnested.c.id).subquery(f"{name}_ids")
    row = (
        sa.select(table.c.id)
        .where(table.c.environment == sa.bindparam(environment), table.c.id == wanted.c.id)
        .with_for_update(of=table)
        .lateral(f"{name}_row")
    )
    return sa.select(row.c.id).select_from(wanted.join(row, sa.true())).cte(name)


@dataclass(frozen=True, slots=True)
class Rows:
    """``unnest`` of one array parameter per column, aliased ``alias(col, ...)``; or (``single``)
    one row of scalar parameters."""

    table: sa.Table
    prefix: str
    names: tuple[str, ...]
    source: sa.FromClause
    # (name, bind parameter, encoder) for ``names`` and the extra columns: of a column's values,
    # or (``single``) of the one row's value.
    encoders: tuple[tuple[str, str, _Encoder], ...]
    single: bool

    @classmethod
    def of(
        cls,
        table: sa.Table,
        prefix: str,
        names: Sequence[str],
        extra: Sequence[tuple[str, TypeEngine[Any]]] = (),
        *,
        single: bool = False,
    ) -> "Rows":
        """``unnest`` of one array per column; ``single``: ``(SELECT CAST($1 AS type) AS col, ...) AS
        prefix``, one row, whose values Postgres pulls up into the conditions that use them."""
        typed = [(name, _item_type(table.c[name])) for name in names] + list(extra)
        source: sa.FromClause
        if single:
            source = sa.select(
                *(sa.cast(sa.bindparam(_bind(prefix, name)), item).label(name) for name, item in typed)
            ).subquery(prefix)
        else:
            arrays = [array_param(_bind(prefix, name), item) for name, item in typed]
            # WITH ORDINALITY: rows keep the order they were staged in, whatever the join does.
            source = (
                sa.func.unnest(*arrays)
                .table_valued(
                    *(sa.column(name, item) for name, item in typed), name=prefix, with_ordinality=_ORDINAL
                )
                .render_derived()
            )
        encoders = tuple(
            (name, _bind(prefix, name), cls._encoder(table.c[name].type if name in table.c else item, single))
            for name, item in typed
        )
        return cls(
            table=table, prefix=prefix, names=tuple(names), source=source, encoders=encoders, single=single
        )

    @staticmethod
    def _encoder(column_type: TypeEngine[Any], single: bool) -> _Encoder:
        """The whole-column encoder for a column type (each encodes as ``array_literal`` would), or
        (``single``) the one row's value as psycopg binds it."""
        if isinstance(column_type, ExactJson):
            return dumps_json if single else Rows._documents
        if single:
            return _as_is
        if isinstance(column_type, sa.DateTime):
            return timestamp_array
        if isinstance(column_type, sa.Integer):
            return int_array
        if isinstance(column_type, sa.String):
            return text_array
        return array_literal

    @staticmethod
    def _documents(values: Sequence[object]) -> str:
        """Documents serialised exactly as ``ExactJson`` would, cast back to ``json`` in SQL."""
        return document_array([dumps_json(value) for value in values])

    def value(self, name: str) -> ColumnElement[Any]:
        column = self.source.c[name]
        if name in self.table.c and isinstance(self.table.c[name].type, ExactJson):
            return sa.cast(column, sa.JSON)
        return column

    def params(self, rows: Sequence[dict[str, Any]], extra: Iterable[str] = ()) -> dict[str, object]:
        """Column-wise arrays of ``rows``, or a ``single`` row's values (documents serialised exactly
        as ``ExactJson`` would)."""
        wanted = frozenset((*self.names, *extra))
        if self.single:
            (row,) = rows
            return {bind: encode(row[name]) for name, bind, encode in self.encoders if name in wanted}
        return {
            bind: encode([row[name] for row in rows])
            for name, bind, encode in self.encoders
            if name in wanted
        }


@dataclass(frozen=True, slots=True)
class _Statement:
    statement: sa.Select[Any]
    runs: Rows
    events: Rows
    outbox: Rows


def _children(
    t: StorageTables, head: sa.CTE, events: Rows, outbox: Rows, *, ends_reservations: bool, notify: bool
) -> tuple[list[sa.CTE], sa.ColumnElement[bool] | None]:
    """The CTEs written for the runs ``head`` won, and (``notify``) the filter that runs the NOTIFY."""
    won_events = events.source.join(head, head.c.id == events.source.c.run_id)
    insert_events = sa.insert(t.run_events).from_select(
        list(EVENT_COLUMNS),
        sa.select(*(events.value(name) for name in EVENT_COLUMNS)).select_from(won_events),
    )
    won_outbox = outbox.source.join(head, head.c.id == outbox.source.c.run_id)
    written = sa.select(*(outbox.value(name) for name in OUTBOX_COLUMNS)).select_from(won_outbox)
    if _ORDINAL in outbox.source.c:  # one row of scalars has no order to keep
        written = written.order_by(outbox.source.c[_ORDINAL])
    insert_outbox = sa.insert(t.outbox_messages).from_select(list(OUTBOX_COLUMNS), written)
    gate: sa.ColumnElement[bool] | None = None
    if notify:
        insert_outbox = insert_outbox.returning(t.outbox_messages.c.id)
    written_outbox = insert_outbox.cte("w_outbox")
    ctes = [insert_events.cte("w_events"), written_outbox]
    if notify:
        notices = commit_wakeups.notify_written(written_outbox)
        ctes.append(notices)
        gate = commit_wakeups.evaluated(notices)
    if ends_reservations:
        # A reservation ends when its run leaves the runnable statuses (ReserveDispatch).
        q = t.queue_reservations
        ended = (
            sa.delete(q)
            .where(
                q.c.environment == sa.bindparam(_ENVIRONMENT),
                q.c.run_id == sa.any_(ids_array(_RUN_IDS)),  # a primary-key lookup, whatever the stats
                q.c.run_id == head.c.id,
                # Constants rendered inline (no expanding parameter): see ``driver_statements``.
                head.c.status.not_in([sa.literal_column(f"'{value}'") for value in RUNNABLE_STATUS_VALUES]),
            )
            .cte("w_reservations")
        )
        ctes.append(ended)
    return ctes, gate


def _update_head(r: sa.Table, mode: RunWrite) -> tuple[Rows, sa.CTE]:
    """The compare-and-set ``UPDATE`` of ``UPDATE``, ``HELD`` and ``ONE`` writes, and its rows' source."""
    extra: tuple[tuple[str, TypeEngine[Any]], ...] = ((_EXPECTED, sa.Integer()),)
    if mode is RunWrite.HELD:
        extra += ((_VERSION, Tid()),)
    runs = Rows.of(r, "r", ("id", *_UPDATED_RUN_COLUMNS), extra=extra, single=mode is RunWrite.ONE)
    v = runs.source
    if mode is RunWrite.ONE:
        # One row: the UPDATE's own row lock is the whole lock order, and ``environment = $1
        # AND id = $2`` matches every column of ``pk_runs`` (test_fresh_table_plans checks the
        # generic and custom plans on a table without statistics). With one-element arrays
        # the server took the generic plan (ten rows assumed per array) as dearer and planned
        # every execution again (0.6 ms of a 0.9 ms statement); and a generic plan of the lock
        # CTE's join, made while ``runs`` was small, hashed every run of the environment.
        reached = [r.c.environment == sa.bindparam(_ENVIRONMENT)]
    elif mode is RunWrite.HELD:
        # No ``environment = $1``: on a table without statistics that condition looks selective
        # and the planner walks the environment instead of fetching each version. The version
        # was read from this environment's row under the lock this transaction still holds.
        reached = [row_version(r) == v.c[_VERSION]]
    else:
        # Two batches sharing runs (a worker's outcomes, maintenance expiring leases) queue.
        locked = locked_in_id_order(r, _ENVIRONMENT, _RUN_IDS, "w_locked")
        reached = [r.c.environment == sa.bindparam(_ENVIRONMENT), r.c.id == locked.c.id]
    head = (
        sa.update(r)
        .where(*reached, r.c.id == v.c.id, r.c.event_sequence == v.c[_EXPECTED])
        .values({name: runs.value(name) for name in _UPDATED_RUN_COLUMNS})
        .returning(r.c.id, r.c.status)
        .cte("w_runs")
    )
    return runs, head


@lru_cache(maxsize=64)
def _statement(schema: str, mode: RunWrite, notify: bool = False) -> _Statement:
    """Built once per (schema, mode, notify): the same object, hence one compiled form, for every batch.

    ``notify``: the statement also sends the wakeups of the outbox rows it writes ``published``
    (``commit_wakeups``), only for the runs that won.
    """
    t = build_tables(schema)
    r = t.runs
    events = Rows.of(t.run_events, "e", EVENT_COLUMNS)
    outbox = Rows.of(t.outbox_messages, "o", OUTBOX_COLUMNS, single=mode is RunWrite.CREATE_ONE)
    if mode in _CREATES:
        runs = Rows.of(r, "r", RUN_COLUMNS, single=mode is RunWrite.CREATE_ONE)
        head = (
            pg_insert(r)
            .from_select(list(RUN_COLUMNS), sa.select(*(runs.value(name) for name in RUN_COLUMNS)))
            .on_conflict_do_nothing()
            .returning(r.c.id, r.c.status)
            .cte("w_runs")
        )
    else:
        runs, head = _update_head(r, mode)
    ends = mode not in _CREATES
    ctes, gate = _children(t, head, events, outbox, ends_reservations=ends, notify=notify)
    statement = sa.select(head.c.id).add_cte(*ctes)
    if gate is not None:
        statement = statement.where(gate)
    return _Statement(statement=statement, runs=runs, events=events, outbox=outbox)


async def write_staged(
    conn: driver_statements.Driver,
    t: StorageTables,
    staged: Sequence[StagedWrite],
    mode: RunWrite,
    versions: Mapping[str, str] | None = None,
) -> set[str]:
    """Write ``staged`` (distinct runs of one environment) in one statement; the ids that won.

    ``UPDATE`` and ``HELD``: a run wins when it is still at the item's ``expected_sequence``
    (``HELD`` reaches each row by its version in ``versions``, run id to ``ctid`` text).
    ``CREATE``: a run wins when its id is new. Losers get nothing written (no events, outbox rows
    or deletes).
    """
    if not staged:
        return set()
    statement, params = staged_statement(t.schema, staged, mode, versions)
    # A held write is planned with its versions every time: a generic plan made while ``runs``
    # was small scans the table instead of fetching each version, and keeps doing so as it grows.
    prepare = False if mode is RunWrite.HELD else None
    return set(await driver_statements.scalars(conn, statement, params, prepare=prepare))


def staged_statement(
    schema: str,
    staged: Sequence[StagedWrite],
    mode: RunWrite,
    versions: Mapping[str, str] | None = None,
) -> tuple[sa.Select[Any], dict[str, Any]]:
    """``write_staged``'s statement and its parameters (also what plan tests explain)."""
    environment = staged[0].environment.name
    ids = [item.new.id for item in staged]
    if len(set(ids)) != len(ids) or any(item.environment.name != environment for item in staged):
        raise invariant_violation("A set-based write needs distinct runs of one environment.")
    if (mode is RunWrite.HELD) != (versions is not None):
        raise invariant_violation("Row versions go with, and only with, a write of held rows.")
    if mode in _SINGLE_RUN and len(staged) != 1:
        raise invariant_violation("A single-run write takes exactly one run.")
    if mode is RunWrite.CREATE_ONE and len(staged[0].outbox) != 1:
        raise invariant_violation("A single-run create writes exactly one outbox row.")
    if mode is RunWrite.UPDATE and len(staged) == 1:
        mode = RunWrite.ONE
    if mode is RunWrite.CREATE and len(staged) == 1 and len(staged[0].outbox) == 1:
        mode = RunWrite.CREATE_ONE
    published = [row for item in staged for row in item.published_outbox]
    built = _statement(schema, mode, bool(published))
    runs = [run_values(item.new) for item in staged]
    if mode in _CREATES:
        run_params = built.runs.params(runs)
    else:
        for row, item in zip(runs, staged, strict=True):
            row[_EXPECTED] = item.expected_sequence
        if versions is not None:
            missing = [run_id for run_id in ids if run_id not in versions]
            if missing:
                raise invariant_violation("A held run has no row version.", run_ids=missing[:10])
            for row, run_id in zip(runs, ids, strict=True):
                row[_VERSION] = versions[run_id]
        run_params = built.runs.params(runs, extra=(_EXPECTED, _VERSION))
    events = [event_values(record) for item in staged for record in item.records]
    outbox = [row for item in staged for row in item.outbox_rows]
    params = {**run_params, **built.events.params(events), **built.outbox.params(outbox)}
    if mode not in _CREATES:  # an insert neither reaches runs by environment nor ends reservations
        params.update({_ENVIRONMENT: environment, _RUN_IDS: array_literal(ids)})
    if published:
        params.update(commit_wakeups.notify_params(schema, published))
    return built.statement, params


async def update_locked_runs(
    conn: driver_statements.Driver,
    t: StorageTables,
    staged: Sequence[StagedWrite],
    versions: Mapping[str, str] | None = None,
) -> None:
    """Write plans for runs this transaction holds ``FOR UPDATE`` (claims, reservations): all must win.

    With ``versions`` (run id to the ``ctid`` its locking ``SELECT`` returned) each row is reached
    by that version (``RunWrite.HELD``); without, it is locked again by id (``RunWrite.UPDATE``).
    """
    mode = RunWrite.UPDATE if versions is None else RunWrite.HELD
    won = await write_staged(conn, t, staged, mode, versions)
    if len(won) != len(staged):
        missing = sorted({item.new.id for item in staged} - won)
        raise invariant_violation("A locked run changed under its lock.", run_ids=missing[:10])


@dataclass(frozen=True, slots=True)
class _ChildStatements:
    events: sa.Insert
    event_rows: Rows
    outbox: sa.Insert
    outbox_rows: Rows
    end_reservations: sa.Delete


@lru_cache(maxsize=32)
def _child_statements(schema: str) -> _ChildStatements:
    t = build_tables(schema)
    events = Rows.of(t.run_events, "e", EVENT_COLUMNS)
    outbox = Rows.of(t.outbox_messages, "o", OUTBOX_COLUMNS)
    q = t.queue_reservations
    return _ChildStatements(
        events=sa.insert(t.run_events).from_select(
            list(EVENT_COLUMNS), sa.select(*(events.value(name) for name in EVENT_COLUMNS))
        ),
        event_rows=events,
        outbox=sa.insert(t.outbox_messages).from_select(
            list(OUTBOX_COLUMNS),
            sa.select(*(outbox.value(name) for name in OUTBOX_COLUMNS)).order_by(outbox.source.c[_ORDINAL]),
        ),
        outbox_rows=outbox,
        end_reservations=sa.delete(q).where(
            q.c.environment == sa.bindparam(_ENVIRONMENT), q.c.run_id == sa.any_(ids_array(_RUN_IDS))
        ),
    )


async def write_children(conn: AsyncConnection, t: StorageTables, staged: Sequence[StagedWrite]) -> None:
    """Events, outbox rows and ended reservations of runs whose rows were already written."""
    if not staged:
        return
    built = _child_statements(t.schema)
    events = [event_values(record) for item in staged for record in item.records]
    if events:
        await conn.execute(built.events, built.event_rows.params(events))
    outbox = [row for item in staged for row in item.outbox_rows]
    if outbox:
        await conn.execute(built.outbox, built.outbox_rows.params(outbox))
    published = [row for item in staged for row in item.published_outbox]
    if published:  # delivered when this transaction commits (``commit_wakeups``)
        params = commit_wakeups.rows_publish_params(t.schema, published)
        await driver_statements.execute(conn, commit_wakeups.PUBLISH, params)
    ended = [
        item.new.id for item in staged if not item.is_create and item.new.status not in RUNNABLE_RUN_STATUSES
    ]
    if ended:
        await conn.execute(
            built.end_reservations,
            {_ENVIRONMENT: staged[0].environment.name, _RUN_IDS: array_literal(ended)},
        )


@lru_cache(maxsize=32)
def _sequences_statement(schema: str) -> sa.Select[Any]:
    r = build_tables(schema).runs
    return sa.select(r.c.id, r.c.event_sequence).where(
        r.c.environment == sa.bindparam(_ENVIRONMENT), r.c.id == sa.any_(ids_array(_RUN_IDS))
    )


async def current_sequences(
    conn: driver_statements.Driver, t: StorageTables, environment: str, run_ids: Sequence[str]
) -> dict[str, int]:
    """Stored sequences of ``run_ids`` in one read (conflict details for runs that lost)."""
    if not run_ids:
        return {}
    params = {_ENVIRONMENT: environment, _RUN_IDS: array_literal(run_ids)}
    cursor = await driver_statements.execute(conn, _sequences_statement(t.schema), params)
    return {run_id: sequence for run_id, sequence in await cursor.fetchall()}
