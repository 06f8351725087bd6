"""Versioned schema migrations: numbered SQL files plus a ``schema_migrations`` version table.

``get_postgres_storage_migration_sql(schema)`` returns one script holding every migration, each
wrapped so it runs only when its version is not recorded yet: the same text installs a fresh
schema and upgrades an older one, and running it twice changes nothing. Nothing migrates at
startup; apply the script with your migration tooling (``psql -1 -f``), or call
``apply_postgres_storage_migrations`` (which serialises concurrent migrators with an advisory
lock). The schema name enters the text only as a quoted identifier.
"""

from dataclasses import dataclass
from importlib import resources

import psycopg
from sqlalchemy.engine import URL

from runlane.domain.errors import RunlaneError
from runlane.domain.vocabulary import ErrorCode
from runlane.infrastructure.postgres.capacity import ADVISORY_LOCK_CLASS
from runlane.infrastructure.postgres.connection import resolve_connection
from runlane.infrastructure.postgres.identifiers import DEFAULT_SCHEMA, quote_identifier, validate_schema_name
from runlane.infrastructure.postgres.migrations.ddl import SCHEMA_PLACEHOLDER, render_migrations_table_ddl

# Second key of the advisory lock migrators take (the first is runlane's lock class).
_MIGRATION_LOCK_KEY = 0x4D494752  # "MIGR"


@dataclass(frozen=True, slots=True)
class Migration:
    version: int
    name: str

    def body(self, schema: str) -> str:
        """The migration's statements for ``schema`` (placeholder replaced by the quoted name)."""
        text = resources.files(__package__).joinpath(f"{self.name}.sql").read_text(encoding="utf-8")
        return with_schema(text, schema).strip()


def with_schema(text: str, schema: str) -> str:
    """Replace the quoted schema placeholder with the quoted schema name."""
    return text.replace(f'"{SCHEMA_PLACEHOLDER}"', quote_identifier(schema))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "0001_initial"),
    Migration(2, "0002_unchecked_run_children"),
)
LATEST_VERSION = MIGRATIONS[-1].version


def _dollar_quote(body: str, version: int) -> str:
    """A dollar-quote tag that does not occur in ``body`` (a schema name may contain ``$``)."""
    tag = f"runlane_migration_{version}"
    while f"${tag}$" in body:
        tag += "_"
    return f"${tag}$"


def _guarded(migration: Migration, schema: str) -> str:
    quoted = quote_identifier(schema)
    body = migration.body(schema)
    record = (
        f"INSERT INTO {quoted}.schema_migrations (version, name) "
        f"VALUES ({migration.version:d}, '{migration.name}');"
    )
    recorded = f"SELECT 1 FROM {quoted}.schema_migrations WHERE version = {migration.version:d}"
    inner = f"IF NOT EXISTS ({recorded}) THEN\n{body}\n{record}\nEND IF;"
    quote = _dollar_quote(inner, migration.version)
    return f"DO {quote}\nBEGIN\n{inner}\nEND\n{quote};"


def get_postgres_storage_migration_sql(schema: str = DEFAULT_SCHEMA) -> str:
    """Every migration for ``schema`` as one re-runnable script (run it in one transaction)."""
    name = validate_schema_name(schema)
    quoted = quote_identifier(name)
    parts = [
        f"-- runlane Postgres storage schema, migrations 1..{LATEST_VERSION}, for schema {quoted}.",
        "-- Re-runnable: each migration runs once and is recorded in schema_migrations.",
        f"CREATE SCHEMA IF NOT EXISTS {quoted};",
        with_schema(render_migrations_table_ddl(), name) + ";",
        *(_guarded(migration, name) for migration in MIGRATIONS),
    ]
    return "\n\n".join(parts) + "\n"


def get_postgres_storage_grant_sql(role: str, schema: str = DEFAULT_SCHEMA) -> str:
    """What a runtime role needs on a migrated schema: read and write rows, nothing else.

    Run it as the migrator (the schema owner). ``ALTER DEFAULT PRIVILEGES`` extends the grant to
    tables later migrations create, so upgrades need no new grants.
    """
    on_schema = quote_identifier(validate_schema_name(schema))
    to_role = quote_identifier(role, "role")
    rows = "SELECT, INSERT, UPDATE, DELETE"
    statements = (
        f"GRANT USAGE ON SCHEMA {on_schema} TO {to_role};",
        f"GRANT {rows} ON ALL TABLES IN SCHEMA {on_schema} TO {to_role};",
        f"ALTER DEFAULT PRIVILEGES IN SCHEMA {on_schema} GRANT {rows} ON TABLES TO {to_role};",
    )
    return "\n".join(statements) + "\n"


async def apply_postgres_storage_migrations(
    connection_string: str | URL, schema: str | None = None
) -> list[int]:
    """Apply pending migrations in one transaction; returns the versions this call applied.

    The schema resolves as for ``postgres_storage`` (option, ``?schema=``, ``public``). Run it with a
    role that may create the schema and its tables (see docs/postgres.md: migrator vs runtime role).
    """
    resolved = resolve_connection(connection_string, schema)
    quoted = quote_identifier(resolved.schema)
    script = get_postgres_storage_migration_sql(resolved.schema)
    try:
        async with await psycopg.AsyncConnection.connect(resolved.libpq_conninfo) as conn, conn.transaction():
            await conn.execute(
                "SELECT pg_advisory_xact_lock(%s, %s)", (ADVISORY_LOCK_CLASS, _MIGRATION_LOCK_KEY)
            )
            before = await _versions(conn, resolved.schema)
            await conn.execute(script)
            after = await _versions(conn, resolved.schema)
    except psycopg.Error as exc:
        raise RunlaneError(
            ErrorCode.CONFIGURATION_INVALID,
            f"Applying the Postgres storage migrations to schema {quoted} failed: {str(exc).strip()[:300]}",
            retryable=isinstance(exc, psycopg.OperationalError),
            meta={"sqlstate": exc.sqlstate} if exc.sqlstate else None,
        ) from exc
    return sorted(after - before)


async def _versions(conn: psycopg.AsyncConnection[tuple[object, ...]], schema: str) -> set[int]:
    exists = await conn.execute("SELECT to_regclass(%s)", (f"{quote_identifier(schema)}.schema_migrations",))
    row = await exists.fetchone()
    if row is None or row[0] is None:
        return set()
    cursor = await conn.execute(
        psycopg.sql.SQL("SELECT version FROM {}.schema_migrations").format(psycopg.sql.Identifier(schema))
    )
    versions: set[int] = set()
    for (version,) in await cursor.fetchall():
        assert isinstance(version, int)
        versions.add(version)
    return versions
