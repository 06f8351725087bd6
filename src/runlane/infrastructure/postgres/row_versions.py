"""Row versions (``ctid``): the way back to rows a transaction already holds ``FOR UPDATE``.

A claim locks its candidates with ``SELECT ... FOR UPDATE SKIP LOCKED`` and writes them in a later
statement of the same transaction. Nothing else can change a row this transaction holds, and the
transaction does not change it in between, so the version the ``SELECT`` returned is still the
row's current one when the write runs: the write fetches each row by its ``ctid`` (a TID scan)
instead of locking it again by primary key and joining the locked ids back to ``runs`` (which on a
5,000-run table the planner did by scanning every run of the environment). The write still
matches id and expected sequence, so a version that no longer held the run would update nothing
and the claim would fail loudly (``bulk.update_locked_runs``), never write another row.

Only for rows held since an earlier statement: a statement that locks rows itself sees, through
its snapshot, only versions older than a concurrent update it waited for, so its update by the
newer version finds nothing (``test_held_run_writes.py`` pins both cases).
"""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.types import UserDefinedType

from runlane.infrastructure.postgres.identifiers import quote_identifier


class Tid(UserDefinedType[str]):
    """Postgres ``tid``; it travels as its text (``(page,item)``) inside ``text``-like array literals."""

    cache_ok = True

    def get_col_spec(self, **kw: Any) -> str:
        return "TID"


def row_version(table: sa.Table) -> ColumnElement[str]:
    """``table``'s ``ctid`` system column, qualified by the schema and table names (quoted, so they
    match however SQLAlchemy renders the table in the statement's ``FROM``)."""
    assert table.schema is not None  # ``build_tables`` always names the schema
    qualified = f"{quote_identifier(table.schema)}.{quote_identifier(table.name, 'table')}"
    return sa.literal_column(f"{qualified}.ctid", type_=Tid())


def row_version_text(table: sa.Table) -> ColumnElement[str]:
    """The row version as text, as a claim reads it back (``bulk.update_locked_runs`` takes it)."""
    return sa.cast(row_version(table), sa.Text()).label("row_version")
