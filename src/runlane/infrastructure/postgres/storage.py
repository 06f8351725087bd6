"""``PostgresStorage``: the storage port on SQLAlchemy Core (async) and psycopg 3.

One time source: every decision that depends on time (due runs, lease expiry, reservation expiry,
idempotency retention, stranded outbox claims, pruning cutoffs) uses the ``now`` the command carries,
which core takes from the runtime's injected clock. The database clock (``now()``) is never
consulted, so tests with a controlled clock and several processes with the same clock agree with
the in-memory adapter, and a skewed database server cannot change an outcome.

Every command runs in one transaction (READ COMMITTED); a conflict rolls it back, so a conflict
never leaves a partial write. Commands that are a single statement (a plain append: no keys,
schedule occurrence or capacity check; a batch of only such appends or only such creates; outbox
completions) run as that one statement on an autocommit connection, which is just as atomic and
saves the BEGIN/COMMIT round trips; those connections come from the storage's own psycopg pool
(``driver_pool``), which hands them out for a fraction of the CPU SQLAlchemy's checkout costs. So
does a due-run claim of unbounded queues (only driver statements, in a psycopg transaction). Other
transactions and reads use SQLAlchemy's engine.

``AppendRunEvents.transaction`` may carry the caller's SQLAlchemy ``AsyncConnection``: the append
then runs inside a savepoint of the caller's transaction and is committed (or rolled back) by the
caller.
"""

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy import select
from sqlalchemy.engine import URL
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from runlane.domain.errors import RunlaneError, configuration_invalid, validation_failed
from runlane.domain.pages import Page
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres import (
    batch_appends,
    bulk,
    claims,
    outbox,
    ownership,
    pruning,
    reads,
    runs,
)
from runlane.infrastructure.postgres.commit_durability import (
    apply_synchronous_commit,
    check_synchronous_commit,
)
from runlane.infrastructure.postgres.connection import ResolvedConnection, resolve_connection
from runlane.infrastructure.postgres.driver_pool import DriverConnections, DriverPool, open_driver_pool
from runlane.infrastructure.postgres.errors import MIGRATION_HINT, driver_detail, translate_error
from runlane.infrastructure.postgres.identifiers import quote_identifier
from runlane.infrastructure.postgres.liveness import SOCKET, PrePing, check_pre_ping, install_liveness_check
from runlane.infrastructure.postgres.migrations import LATEST_VERSION
from runlane.infrastructure.postgres.schema import StorageTables, build_tables
from runlane.infrastructure.postgres.writes import StagedWrite
from runlane.ports.capabilities import ALL_STORAGE_CAPABILITIES
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    AppendManyRunEventsResult,
    AppendRunEvents,
    AppendRunEventsResult,
    ClaimDueRuns,
    ClaimedRun,
    ClaimOutboxMessages,
    CompleteOutboxMessages,
    GetRun,
    GetRunByIdempotencyKey,
    HeartbeatRunLease,
    ListDueRuns,
    ListExpiredLeases,
    ListOutboxMessages,
    ListRunEvents,
    ListRuns,
    OutboxMessage,
    PruneRuns,
    PruneRunsResult,
    ReleaseExpiredReservations,
    ReserveDispatch,
    ResetIdempotencyKey,
)
from runlane.ports.storage_rules import sequence_conflict

# Postgres enforces every storage rule durably: the full capability set.
POSTGRES_STORAGE_CAPABILITIES = ALL_STORAGE_CAPABILITIES

# UnicodeEncodeError: psycopg cannot encode a lone surrogate in a text parameter (e.g. a run id).
_DB_ERRORS = (sa_exc.SQLAlchemyError, psycopg.Error, OSError, UnicodeEncodeError)


class PostgresStorage:
    """Durable, shared storage; build it with ``postgres_storage(...)`` and ``await start()``."""

    name = "postgres"
    capabilities = POSTGRES_STORAGE_CAPABILITIES

    def __init__(
        self,
        *,
        connection: ResolvedConnection,
        pool_size: int = 5,
        max_overflow: int = 5,
        pool_timeout: float = 30.0,
        pool_recycle: float = 1800.0,
        pool_pre_ping: PrePing = SOCKET,
        connect_timeout: float = 10.0,
        application_name: str = "runlane",
        connect_args: Mapping[str, Any] | None = None,
        synchronous_commit: str | None = None,
        wakeups_in_commit: bool = False,
    ) -> None:
        """``wakeups_in_commit``: eager appends send their own ``NOTIFY`` wakeups in their commit
        (``commit_wakeups``). Only for a lane whose transport is the NOTIFY transport on this
        database and schema: ``create_postgres_lane`` sets it. With any other transport the wakeups
        would never reach it, so ``postgres_storage(...)`` does not offer it.
        """
        if not isinstance(wakeups_in_commit, bool):
            raise configuration_invalid("wakeups_in_commit must be a bool.", field="wakeups_in_commit")
        if isinstance(pool_size, bool) or not isinstance(pool_size, int) or pool_size < 1:
            raise configuration_invalid("pool_size must be a positive integer.", field="pool_size")
        if isinstance(max_overflow, bool) or not isinstance(max_overflow, int) or max_overflow < 0:
            raise configuration_invalid("max_overflow must be a non-negative integer.", field="max_overflow")
        self._connection = connection
        self._notify = wakeups_in_commit
        self._synchronous_commit = check_synchronous_commit(synchronous_commit)
        self._tables = build_tables(connection.schema)
        self._pre_ping = check_pre_ping(pool_pre_ping)
        self._engine_options: dict[str, Any] = {
            "pool_size": pool_size,
            "max_overflow": max_overflow,
            "pool_timeout": pool_timeout,
            "pool_recycle": pool_recycle,
            "pool_pre_ping": pool_pre_ping is True,
            "connect_args": {
                "connect_timeout": max(1, int(connect_timeout)),
                "application_name": application_name,
                **(connect_args or {}),
            },
        }
        self._engine: AsyncEngine | None = None
        self._driver: DriverConnections | None = None

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def schema(self) -> str:
        return self._connection.schema

    @property
    def url(self) -> URL:
        """The connection URL as used (psycopg driver, ``?schema=`` removed)."""
        return self._connection.url

    @property
    def wakeups_in_commit(self) -> bool:
        """Whether eager appends send their NOTIFY wakeups in their own commit (``commit_wakeups``)."""
        return self._notify

    @property
    def tables(self) -> StorageTables:
        return self._tables

    @property
    def engine(self) -> AsyncEngine:
        """The started engine (e.g. to open a connection whose transaction an append joins)."""
        if self._engine is None:
            raise configuration_invalid("Postgres storage is not started; call start() first.")
        return self._engine

    async def start(self) -> None:
        """Create the engine and probe the migrated ``runs`` table; ``configuration_invalid`` if unusable."""
        if self._engine is not None:
            return
        engine = create_async_engine(self._connection.url, **self._engine_options)
        if self._pre_ping == SOCKET:
            install_liveness_check(engine)
        if self._synchronous_commit is not None:
            apply_synchronous_commit(engine, self._synchronous_commit)
        options = self._engine_options
        try:
            await self._probe(engine)
            self._driver = await open_driver_pool(
                # What the engine's connections get: the same server, role and options.
                connect_kwargs={**self._connection.connect_kwargs, **options["connect_args"]},
                max_size=options["pool_size"],
                max_overflow=options["max_overflow"],
                checkout_timeout=options["pool_timeout"],
                max_lifetime=options["pool_recycle"],
                pre_ping=self._pre_ping,
                synchronous_commit=self._synchronous_commit,
                name=f"runlane-{self.schema}",
            )
        except BaseException as exc:
            await engine.dispose()
            if isinstance(exc, _DB_ERRORS):  # the psycopg pool's first connection (PoolTimeout)
                raise translate_error(exc, operation="start") from exc
            raise
        self._engine = engine

    async def _probe(self, engine: AsyncEngine) -> None:
        t = self._tables
        quoted = quote_identifier(self.schema)
        latest = t.schema_migrations.c.version
        try:
            async with engine.connect() as conn:
                await conn.execute(select(t.runs.c.id).limit(0))
                newest = await conn.execute(select(latest).order_by(latest.desc()).limit(1))
                version = newest.scalar_one_or_none()
        except _DB_ERRORS as exc:
            error = translate_error(exc, operation="start")
            meta = {**(error.meta or {}), "schema": self.schema}
            detail = driver_detail(exc)
            if error.code is ErrorCode.CONFIGURATION_INVALID:
                message = f"Postgres storage cannot use schema {quoted}: {detail}. {MIGRATION_HINT}."
            else:
                target = self._connection.url.render_as_string(hide_password=True)
                message = f"Postgres storage cannot reach {target}: {detail}"
            raise RunlaneError(
                ErrorCode.CONFIGURATION_INVALID, message, retryable=error.retryable, meta=meta
            ) from exc
        if version is None or version < LATEST_VERSION:
            raise configuration_invalid(
                f"Postgres schema {quoted} is at migration {version or 0}; this runlane needs "
                f"{LATEST_VERSION}. {MIGRATION_HINT}.",
                schema=self.schema,
            )

    async def close(self) -> None:
        engine, self._engine = self._engine, None
        driver, self._driver = self._driver, None
        if driver is not None:
            await driver.close()
        if engine is not None:
            await engine.dispose()

    # -- transactions ------------------------------------------------------------------------

    @asynccontextmanager
    async def _transaction(
        self, operation: str, external: object | None = None
    ) -> AsyncIterator[AsyncConnection]:
        """One transaction per command, or a savepoint inside the caller's transaction."""
        try:
            if external is None:
                async with self.engine.begin() as conn:
                    yield conn
            else:
                if not isinstance(external, AsyncConnection):
                    raise validation_failed(
                        "transaction must be a SQLAlchemy AsyncConnection for Postgres storage.",
                        field="transaction",
                    )
                async with external.begin_nested():
                    yield external
        except _DB_ERRORS as exc:
            raise translate_error(exc, operation=operation) from exc

    @asynccontextmanager
    async def _connect(self, operation: str) -> AsyncIterator[AsyncConnection]:
        """A pooled SQLAlchemy connection for reads."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except _DB_ERRORS as exc:
            raise translate_error(exc, operation=operation) from exc

    @property
    def driver_pool(self) -> DriverPool:
        """The started psycopg pool of single-statement writes and claims (``driver_pool``; diagnostics)."""
        return self._driver_connections().pool

    def _driver_connections(self) -> DriverConnections:
        if self._driver is None:
            raise configuration_invalid("Postgres storage is not started; call start() first.")
        return self._driver

    @asynccontextmanager
    async def _autocommit(self, operation: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A connection of the psycopg pool for a command that is one atomic statement."""
        connections = self._driver_connections()
        try:
            async with connections.checked_out() as conn:
                yield conn
        except _DB_ERRORS as exc:
            raise translate_error(exc, operation=operation) from exc

    @asynccontextmanager
    async def _driver_transaction(self, operation: str) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        """A transaction (explicit ``BEGIN``, then ``COMMIT``, or ``ROLLBACK`` on any error) on a
        connection of the psycopg pool, for commands made only of driver statements."""
        async with self._autocommit(operation) as conn, conn.transaction():
            yield conn

    # -- writes ------------------------------------------------------------------------------

    async def append_run_events(self, command: AppendRunEvents) -> AppendRunEventsResult:
        if command.transaction is None:
            staged = batch_appends.plain_staged(command, notify=self._notify)
            if staged is not None:
                return await self._append_plain(staged)
        try:
            async with self._transaction("append_run_events", command.transaction) as conn:
                return await runs.append_run_events(conn, self._tables, command, notify=self._notify)
        except runs.ConvergedOnOwner as converged:
            return AppendRunEventsResult(run=converged.owner, returned_existing=True)

    async def _append_plain(self, staged: StagedWrite) -> AppendRunEventsResult:
        """A plain append (no keys, occurrence or capacity check) as one autocommit statement."""
        mode = bulk.RunWrite.CREATE if staged.is_create else bulk.RunWrite.UPDATE
        async with self._autocommit("append_run_events") as conn:
            won = await bulk.write_staged(conn, self._tables, [staged], mode)
            if not won:
                run_id = staged.new.id
                actual = await bulk.current_sequences(conn, self._tables, staged.environment.name, [run_id])
                raise sequence_conflict(run_id, staged.expected_sequence, actual.get(run_id))
        return staged.result()

    async def append_many_run_events(self, command: AppendManyRunEvents) -> AppendManyRunEventsResult:
        """One transaction, set-based where possible; conflicts are returned per item (``batch_appends``)."""
        if not command.commands:
            return AppendManyRunEventsResult(results=())
        batch_appends.check_items(command)
        if batch_appends.pipelined_creates(command):
            async with self._driver_transaction("append_many_run_events") as driver:
                results = await batch_appends.write_pipelined_creates(
                    driver, self._tables, command, notify=self._notify
                )
            return AppendManyRunEventsResult(results=results)
        plans = batch_appends.stage_all(command, notify=self._notify)
        single = batch_appends.one_statement(plans)
        if single is not None:
            async with self._autocommit("append_many_run_events") as conn:
                results = await batch_appends.write_one_statement(conn, self._tables, single)
        else:
            async with self._transaction("append_many_run_events") as conn:
                results = await batch_appends.append_many_run_events(
                    conn, self._tables, command, plans, notify=self._notify
                )
        return AppendManyRunEventsResult(results=results)

    async def claim_due_runs(self, command: ClaimDueRuns) -> tuple[ClaimedRun, ...]:
        """A worker's hottest transaction: on the psycopg pool, unless a bounded queue needs the
        capacity checks (SQLAlchemy's transaction)."""
        if claims.bounded_queues(command):
            async with self._transaction("claim_due_runs") as conn:
                return await claims.claim_due_runs(conn, self._tables, command)
        async with self._driver_transaction("claim_due_runs") as driver:
            return await claims.claim_due_runs(driver, self._tables, command)

    async def heartbeat_run_lease(self, command: HeartbeatRunLease) -> RunRecord:
        async with self._transaction("heartbeat_run_lease") as conn:
            return await runs.heartbeat_run_lease(conn, self._tables, command)

    async def reset_idempotency_key(self, command: ResetIdempotencyKey) -> bool:
        key = ownership.OwnerKey(command.environment.name, command.task_id, command.key)
        async with self._transaction("reset_idempotency_key") as conn:
            return await ownership.reset_idempotency_key(conn, self._tables, key, command.now)

    async def reserve_dispatch(self, command: ReserveDispatch) -> tuple[ClaimedRun, ...]:
        async with self._transaction("reserve_dispatch") as conn:
            return await claims.reserve_dispatch(conn, self._tables, command)

    async def release_expired_reservations(self, command: ReleaseExpiredReservations) -> int:
        async with self._transaction("release_expired_reservations") as conn:
            return await claims.release_expired_reservations(conn, self._tables, command)

    async def claim_outbox_messages(self, command: ClaimOutboxMessages) -> tuple[OutboxMessage, ...]:
        async with self._transaction("claim_outbox_messages") as conn:
            return await outbox.claim_outbox_messages(conn, self._tables, command)

    async def complete_outbox_messages(self, command: CompleteOutboxMessages) -> int:
        async with self._autocommit("complete_outbox_messages") as conn:
            return await outbox.complete_outbox_messages(conn, self._tables, command)

    async def prune_runs(self, command: PruneRuns) -> PruneRunsResult:
        async with self._transaction("prune_runs") as conn:
            return await pruning.prune_runs(conn, self._tables, command)

    # -- reads -------------------------------------------------------------------------------

    async def get_run(self, query: GetRun) -> RunRecord | None:
        async with self._connect("get_run") as conn:
            return await reads.get_run(conn, self._tables, query)

    async def get_run_by_idempotency_key(self, query: GetRunByIdempotencyKey) -> RunRecord | None:
        key = ownership.OwnerKey(query.environment.name, query.task_id, query.key)
        async with self._connect("get_run_by_idempotency_key") as conn:
            return await ownership.find_idempotency_owner(conn, self._tables, key, query.now)

    async def list_runs(self, query: ListRuns) -> Page[RunRecord]:
        async with self._connect("list_runs") as conn:
            return await reads.list_runs(conn, self._tables, query)

    async def list_run_events(self, query: ListRunEvents) -> Page[RunEventRecord]:
        async with self._connect("list_run_events") as conn:
            return await reads.list_run_events(conn, self._tables, query)

    async def list_due_runs(self, query: ListDueRuns) -> tuple[RunRecord, ...]:
        async with self._connect("list_due_runs") as conn:
            return await reads.list_due_runs(conn, self._tables, query)

    async def list_expired_leases(self, query: ListExpiredLeases) -> tuple[RunRecord, ...]:
        async with self._connect("list_expired_leases") as conn:
            return await reads.list_expired_leases(conn, self._tables, query)

    async def list_outbox_messages(self, query: ListOutboxMessages) -> tuple[OutboxMessage, ...]:
        async with self._connect("list_outbox_messages") as conn:
            return await outbox.list_outbox_messages(conn, self._tables, query)


def postgres_storage(
    *,
    connection_string: str | URL,
    schema: str | None = None,
    pool_size: int = 5,
    max_overflow: int = 5,
    pool_timeout: float = 30.0,
    pool_recycle: float = 1800.0,
    pool_pre_ping: PrePing = SOCKET,
    connect_timeout: float = 10.0,
    application_name: str = "runlane",
    connect_args: Mapping[str, Any] | None = None,
    synchronous_commit: str | None = None,
) -> PostgresStorage:
    """Postgres storage for ``connection_string`` (``postgresql://`` or ``postgresql+psycopg://``).

    The schema is ``schema``, else the URL's ``?schema=`` parameter (removed from the URL), else
    ``public``. Nothing connects until ``start()``, which probes the migrated tables; nothing is
    migrated automatically (see ``get_postgres_storage_migration_sql``).

    ``synchronous_commit`` (``None``: the server's setting) is set on every pooled connection;
    ``"off"`` trades the last few hundred milliseconds of acknowledged commits on a server crash
    for commit throughput (docs/postgres.md, "Tuning"). Only an explicit choice turns it off.

    ``pool_pre_ping``: ``"socket"`` (default) replaces pooled connections the server closed without
    a round trip; ``True`` pings with a query on every checkout; ``False`` does neither (see
    ``liveness``).
    """
    return PostgresStorage(
        connection=resolve_connection(connection_string, schema),
        pool_size=pool_size,
        max_overflow=max_overflow,
        pool_timeout=pool_timeout,
        pool_recycle=pool_recycle,
        pool_pre_ping=pool_pre_ping,
        connect_timeout=connect_timeout,
        application_name=application_name,
        connect_args=connect_args,
        synchronous_commit=synchronous_commit,
    )
