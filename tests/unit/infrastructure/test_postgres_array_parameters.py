"""Array parameters of the hot Postgres statements are typed when bound, never cast per row.

``CAST($n::varchar AS text[])`` is a run-time conversion: in a filter the server re-parsed the
whole literal for every row it tested (a 1,000-row outbox completion took about a second on a
table without statistics). ``$n::text[]`` makes the untyped parameter the array itself.
"""

import itertools
import re

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import psycopg as psycopg_dialect

from runlane.infrastructure.postgres import bulk, claims, commit_wakeups, driver_statements, outbox
from runlane.infrastructure.postgres.array_literals import array_param

_RUNTIME_ARRAY_CAST = re.compile(r"CAST\(\$\d+::\w+ AS [^)]*\[\]\)")
_BOUND_ARRAY = re.compile(r"\$\d+::[A-Z ]+\[\]")


def _sql(statement: sa.ClauseElement) -> str:
    _, sql, _ = driver_statements._compiled(statement)
    return sql


def _hot_statements() -> list[tuple[str, sa.ClauseElement]]:
    statements: list[tuple[str, sa.ClauseElement]] = [
        (f"write_staged {mode.value} notify={notify}", bulk._statement("public", mode, notify).statement)
        for mode in bulk.RunWrite
        for notify in (False, True)
    ]
    statements.append(("outbox completion", outbox._complete_statement("public").statement))
    statements.append(("notify publish", commit_wakeups.PUBLISH))
    for flags in itertools.product((False, True), repeat=5):
        shape = claims.ClaimShape(*flags)
        statements.append((f"claim {shape}", claims.claim_statement("public", shape)))
    return statements


@pytest.mark.parametrize(("name", "statement"), _hot_statements(), ids=lambda value: str(value)[:60])
def test_hot_statement_arrays_are_typed_at_bind_time(name: str, statement: sa.ClauseElement) -> None:
    sql = _sql(statement)
    assert _RUNTIME_ARRAY_CAST.search(sql) is None, f"{name}: {_RUNTIME_ARRAY_CAST.search(sql)}"


def test_statements_with_arrays_bind_them_typed() -> None:
    sql = _sql(outbox._complete_statement("public").statement)
    assert "= ANY ($" in sql
    assert len(_BOUND_ARRAY.findall(sql)) >= 8  # the ids to lock and the eight unnest columns


def test_array_param_renders_its_item_type_and_keeps_the_literal_as_is() -> None:
    ids = array_param("ids", sa.Text())
    at = array_param("at", sa.DateTime(timezone=True))
    sql = _sql(sa.select(sa.func.unnest(ids, at)))
    assert "$1::TEXT[]" in sql
    assert "$2::TIMESTAMP WITH TIME ZONE[]" in sql
    processor = ids.type._cached_bind_processor(psycopg_dialect.dialect())  # type: ignore[no-untyped-call]
    assert processor is None  # the literal is sent untouched, not iterated as a sequence
