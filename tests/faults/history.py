"""Read a scenario's schema back and compute the figures every scenario reports.

* ``lost``: runs that never reached a terminal status, plus succeeded runs whose final attempt
  left no ledger row (the handler never really ran for the attempt that was recorded).
* ``duplicated``: ledger inserts that found their ``(run_id, attempt)`` already there, runs with
  more than one terminal event, and runs with more outbox rows than ``run.delivery_requested``
  events (a retried write that produced a second row).

Each run's event log is also replayed through the reducer and must project to the stored record,
so a write that skipped the reducer would show up here too.
"""

from __future__ import annotations

import json
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import psycopg
from psycopg import sql

from runlane import RunEventRecord, RunEventType, RunRecord, project_run_events
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES

TERMINAL_EVENTS = frozenset({RunEventType.SUCCEEDED, RunEventType.FAILED, RunEventType.CANCELLED})


@dataclass
class History:
    runs: dict[str, RunRecord]
    events: dict[str, list[RunEventRecord]]
    ledger: dict[tuple[str, int], dict[str, Any]]
    duplicates: list[dict[str, Any]]
    outbox_rows: Counter[str]
    observations: list[dict[str, Any]]
    deliveries: list[dict[str, Any]] = field(default_factory=list)

    def select(self, run_ids: Iterable[str]) -> History:
        ids = set(run_ids)
        return History(
            runs={k: v for k, v in self.runs.items() if k in ids},
            events={k: v for k, v in self.events.items() if k in ids},
            ledger={k: v for k, v in self.ledger.items() if k[0] in ids},
            duplicates=[d for d in self.duplicates if d["run_id"] in ids],
            outbox_rows=Counter({k: v for k, v in self.outbox_rows.items() if k in ids}),
            observations=[o for o in self.observations if o["run_id"] in ids],
            deliveries=[d for d in self.deliveries if d["run_id"] in ids],
        )

    def count_events(self, kind: RunEventType) -> int:
        return sum(1 for log in self.events.values() for event in log if event.type is kind)

    def statuses(self) -> Counter[str]:
        return Counter(run.status.value for run in self.runs.values())

    def not_terminal(self) -> list[str]:
        return sorted(r.id for r in self.runs.values() if r.status not in TERMINAL_RUN_STATUSES)

    def lost(self) -> list[str]:
        missing = [
            run.id
            for run in self.runs.values()
            if run.status.value == "succeeded" and (run.id, run.attempts) not in self.ledger
        ]
        return sorted({*self.not_terminal(), *missing})

    def duplicated(self) -> list[str]:
        found = {d["run_id"] for d in self.duplicates}
        for run_id, log in self.events.items():
            if sum(1 for e in log if e.type in TERMINAL_EVENTS) > 1:
                found.add(run_id)
            requested = sum(1 for e in log if e.type is RunEventType.DELIVERY_REQUESTED)
            if self.outbox_rows.get(run_id, 0) > requested:
                found.add(run_id)
        return sorted(found)

    def projection_mismatches(self) -> list[str]:
        """Runs whose stored record is not what the reducer makes of their stored events."""
        bad = []
        for run_id, run in self.runs.items():
            log = self.events.get(run_id, [])
            if not log or project_run_events(log, 0).to_wire() != run.to_wire():
                bad.append(run_id)
        return bad

    def phantom_attempts(self) -> list[tuple[str, int]]:
        """Ledger rows for attempts the run never had (an execution without a lease)."""
        return sorted(
            key for key in self.ledger if key[0] in self.runs and key[1] > self.runs[key[0]].attempts
        )


def _rows(conn: psycopg.Connection, query: str, schema: str, table: str) -> list[dict[str, Any]]:
    cur = conn.cursor(row_factory=psycopg.rows.dict_row)
    return cur.execute(sql.SQL(query).format(sql.Identifier(schema, table))).fetchall()


def load_history(libpq_dsn: str, schema: str, *, retry_for: float = 30.0) -> History:
    """Everything in ``schema``; retried while the server is restarting."""
    deadline = time.monotonic() + retry_for
    while True:
        try:
            return _load(libpq_dsn, schema)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)


def _load(libpq_dsn: str, schema: str) -> History:
    with psycopg.connect(libpq_dsn, connect_timeout=5) as conn:
        runs = {
            row["id"]: RunRecord.from_wire(json.loads(row["record"]))
            for row in _rows(conn, "select id, record::text as record from {}", schema, "runs")
        }
        events: dict[str, list[RunEventRecord]] = defaultdict(list)
        for row in _rows(
            conn,
            "select run_id, event::text as event from {} order by run_id, sequence",
            schema,
            "run_events",
        ):
            events[row["run_id"]].append(RunEventRecord.from_wire(json.loads(row["event"])))
        ledger = {
            (row["run_id"], row["attempt"]): row
            for row in _rows(conn, "select * from {}", schema, "fault_ledger")
        }
        duplicates = _rows(conn, "select * from {}", schema, "fault_duplicates")
        outbox = Counter(
            row["run_id"] for row in _rows(conn, "select run_id from {}", schema, "outbox_messages")
        )
        observations = _rows(conn, "select * from {} order by recorded_at", schema, "fault_observations")
        deliveries = _rows(conn, "select * from {} order by recorded_at", schema, "fault_deliveries")
    return History(
        runs=runs,
        events=dict(events),
        ledger=ledger,
        duplicates=duplicates,
        outbox_rows=outbox,
        observations=observations,
        deliveries=deliveries,
    )


def count_rows(libpq_dsn: str, schema: str, table: str) -> int:
    with psycopg.connect(libpq_dsn, connect_timeout=5) as conn:
        row = conn.execute(
            sql.SQL("select count(*) from {}").format(sql.Identifier(schema, table))
        ).fetchone()
    return int(row[0]) if row else 0


def count_status(libpq_dsn: str, schema: str, statuses: Iterable[str]) -> int:
    """How many runs are in ``statuses`` (0 while the server is unreachable is never returned)."""
    wanted = list(statuses)
    deadline = time.monotonic() + 30.0
    while True:
        try:
            with psycopg.connect(libpq_dsn, connect_timeout=5) as conn:
                row = conn.execute(
                    sql.SQL("select count(*) from {} where status = any(%s)").format(
                        sql.Identifier(schema, "runs")
                    ),
                    (wanted,),
                ).fetchone()
                return int(row[0]) if row else 0
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.2)
