"""Render ``CREATE`` statements straight from the SQLAlchemy tables (``schema.py``).

Used to write a new migration's first draft and by the test that applies every migration and
compares the resulting catalog with a schema created from the tables. Run
``python -m runlane.infrastructure.postgres.migrations`` to print the tables' DDL with the schema
placeholder that migration files use.
"""

from sqlalchemy.dialects import postgresql
from sqlalchemy.schema import CreateIndex, CreateTable

from runlane.infrastructure.postgres.schema import build_tables

# Migration files name the schema with this quoted placeholder; loading substitutes the quoted name.
SCHEMA_PLACEHOLDER = "__RUNLANE_SCHEMA__"


def render_table_ddl(schema: str, *, include_migrations_table: bool = True) -> list[str]:
    """One statement per table and index, in dependency order, without trailing semicolons.

    Meant for ``SCHEMA_PLACEHOLDER`` (see ``render_migrations_table_ddl`` on why not a real name).
    """
    tables = build_tables(schema)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    statements: list[str] = []
    for table in tables.metadata.sorted_tables:
        if table is tables.schema_migrations and not include_migrations_table:
            continue
        statements.append(str(CreateTable(table).compile(dialect=dialect)).strip())
        for index in sorted(table.indexes, key=lambda ix: str(ix.name)):
            statements.append(str(CreateIndex(index).compile(dialect=dialect)).strip())
    return statements


def render_migrations_table_ddl() -> str:
    """``CREATE TABLE IF NOT EXISTS`` for the version table, naming the schema by the placeholder.

    Compiled text is never given a real schema name: SQLAlchemy escapes ``%`` in identifiers for
    the driver's paramstyle, which would change a name run as plain SQL. Callers substitute the
    quoted name for the placeholder instead.
    """
    tables = build_tables(SCHEMA_PLACEHOLDER)
    dialect = postgresql.dialect()  # type: ignore[no-untyped-call]
    return str(CreateTable(tables.schema_migrations, if_not_exists=True).compile(dialect=dialect)).strip()
