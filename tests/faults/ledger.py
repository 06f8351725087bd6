"""The side-effect ledger: what handlers really did, recorded outside runlane's own tables.

Every handler inserts ``(run_id, attempt)`` into ``fault_ledger`` before doing anything else. The
pair is UNIQUE: a second insert for the same attempt means one lease was executed twice, and is
kept in ``fault_duplicates`` instead of failing the handler, so the suite can count it. Each
execution carries a random token, so a handler that retries its own insert after a dropped
connection (the insert committed, the reply was lost) is not mistaken for a duplicate.

``fault_observations`` holds what handlers noticed (an aborted signal and its reason);
``fault_deliveries`` the result of every ``execute_delivery`` a consumer process ran.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

LEDGER_TABLES = ("fault_ledger", "fault_duplicates", "fault_observations", "fault_deliveries")

_DDL = (
    """create table {schema}.fault_ledger (
        run_id text not null, attempt int not null, worker text not null, pid int not null,
        token text not null, recorded_at timestamptz not null default clock_timestamp(),
        constraint uq_fault_ledger_run_attempt unique (run_id, attempt))""",
    """create table {schema}.fault_duplicates (
        run_id text not null, attempt int not null, worker text not null, pid int not null,
        token text not null, recorded_at timestamptz not null default clock_timestamp())""",
    """create table {schema}.fault_observations (
        run_id text not null, attempt int not null, worker text not null, pid int not null,
        kind text not null, recorded_at timestamptz not null default clock_timestamp())""",
    """create table {schema}.fault_deliveries (
        run_id text not null, queue text not null, result text not null, reason text,
        worker text not null, pid int not null,
        recorded_at timestamptz not null default clock_timestamp())""",
)


def install_ledger(conn: psycopg.Connection, schema: str) -> None:
    for statement in _DDL:
        conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))


def table(schema: str, name: str) -> sql.Composed:
    return sql.SQL("{}").format(sql.Identifier(schema, name))
