"""Handler side of the ledger: one psycopg connection per thread, reconnecting after failures.

Writes are autocommit and retried for a bounded time, so a database restart delays a handler
instead of failing it; the per-execution token tells a retried insert from a real duplicate.
"""

from __future__ import annotations

import os
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypeVar

import psycopg
from psycopg import sql

_RETRY_FOR_S = 30.0
T = TypeVar("T")


class LedgerClient:
    def __init__(self, libpq_dsn: str, schema: str, worker: str) -> None:
        self._dsn = libpq_dsn
        self._schema = schema
        self._worker = worker
        self._local = threading.local()
        self.pid = os.getpid()

    def _conn(self) -> psycopg.Connection:
        conn: psycopg.Connection | None = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = psycopg.connect(
                self._dsn, autocommit=True, connect_timeout=5, application_name="fault-ledger"
            )
            self._local.conn = conn
        return conn

    def _retrying(self, action: Callable[[psycopg.Connection], T]) -> T:
        deadline = time.monotonic() + _RETRY_FOR_S
        delay = 0.05
        while True:
            try:
                return action(self._conn())
            except psycopg.OperationalError:
                conn = getattr(self._local, "conn", None)
                if conn is not None:
                    conn.close()
                self._local.conn = None
                if time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(1.0, delay * 2)

    def record_attempt(self, run_id: str, attempt: int) -> bool:
        """Insert ``(run_id, attempt)``; False (and a ``fault_duplicates`` row) if it was already there."""
        token = uuid.uuid4().hex
        ledger = sql.Identifier(self._schema, "fault_ledger")
        duplicates = sql.Identifier(self._schema, "fault_duplicates")

        def insert(conn: psycopg.Connection) -> bool:
            row = conn.execute(
                sql.SQL(
                    "insert into {} (run_id, attempt, worker, pid, token) values (%s, %s, %s, %s, %s) "
                    "on conflict (run_id, attempt) do nothing returning 1"
                ).format(ledger),
                (run_id, attempt, self._worker, self.pid, token),
            ).fetchone()
            if row is not None:
                return True
            existing = conn.execute(
                sql.SQL("select token from {} where run_id = %s and attempt = %s").format(ledger),
                (run_id, attempt),
            ).fetchone()
            if existing is not None and existing[0] == token:
                return True  # our own insert committed before the connection dropped
            conn.execute(
                sql.SQL(
                    "insert into {} (run_id, attempt, worker, pid, token) values (%s, %s, %s, %s, %s)"
                ).format(duplicates),
                (run_id, attempt, self._worker, self.pid, token),
            )
            return False

        return bool(self._retrying(insert))

    def observe(self, run_id: str, attempt: int, kind: str) -> None:
        table = sql.Identifier(self._schema, "fault_observations")
        self._retrying(
            lambda conn: conn.execute(
                sql.SQL(
                    "insert into {} (run_id, attempt, worker, pid, kind) values (%s, %s, %s, %s, %s)"
                ).format(table),
                (run_id, attempt, self._worker, self.pid, kind),
            )
        )

    def delivery(self, run_id: str, queue: str, result: str, reason: str | None) -> None:
        table = sql.Identifier(self._schema, "fault_deliveries")
        self._retrying(
            lambda conn: conn.execute(
                sql.SQL(
                    "insert into {} (run_id, queue, result, reason, worker, pid) "
                    "values (%s, %s, %s, %s, %s, %s)"
                ).format(table),
                (run_id, queue, result, reason, self._worker, self.pid),
            )
        )
