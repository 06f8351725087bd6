"""Array literals encoded by the adapter read back exactly on the server (what psycopg would send)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import psycopg
import pytest

from runlane.infrastructure.postgres.array_literals import array_literal
from tests.support.pg_cluster import PostgresCluster

AWKWARD = [
    "plain",
    "",
    "NULL",
    "null",
    " padded ",
    'quote " inside',
    "back\\slash",
    '\\"both\\"',
    "{braces},commas",
    "new\nline\ttab",
    "é ü 😀 漢字",
    '{"runId":"r","traceCarrier":{"k":"v \\" x"}}',
    None,
]


def _roundtrip(dsn: str, literal: str, cast: str) -> list[object]:
    with psycopg.connect(dsn) as conn:
        row = conn.execute(f"select cast(%s::text as {cast})", (literal,)).fetchone()
    assert row is not None
    return list(row[0])


def test_text_arrays_round_trip_exactly(pg_cluster: PostgresCluster) -> None:
    assert _roundtrip(pg_cluster.libpq_dsn, array_literal(AWKWARD), "text[]") == AWKWARD
    assert _roundtrip(pg_cluster.libpq_dsn, array_literal([]), "text[]") == []


def test_integer_and_timestamp_arrays_round_trip(pg_cluster: PostgresCluster) -> None:
    assert _roundtrip(pg_cluster.libpq_dsn, array_literal([0, -3, 2**31 - 1, None]), "int[]") == [
        0,
        -3,
        2**31 - 1,
        None,
    ]
    times = [
        datetime(2025, 1, 2, 3, 4, 5, 678_000, tzinfo=UTC),
        datetime(2025, 6, 1, 12, 0, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        None,
    ]
    assert _roundtrip(pg_cluster.libpq_dsn, array_literal(times), "timestamptz[]") == times


def test_unsupported_values_are_refused() -> None:
    with pytest.raises(TypeError):
        array_literal([datetime(2025, 1, 1)])  # naive: ambiguous
    with pytest.raises(TypeError):
        array_literal([1.5])
