"""Scenario 8: hostile input through the runtime into real Postgres; every case has a clean outcome.

Each input is either rejected with a stable ``ErrorCode`` (asserted) and leaves no row behind, or
stored and read back exactly (``runs.get`` and the handler's argument, compared type-strictly):

* Hypothesis payloads: nesting past the depth limit, 300 kB strings, NUL, lone surrogates, NaN
  and Infinity, integers past 2**63 and past Python's 4300-digit limit, non-JSON values;
* the 1 MiB ``max_payload_bytes`` limit, to the byte, enforced before storage;
* run ids, idempotency/singleton/concurrency keys, task ids, queue names and schema names with SQL
  metacharacters, control characters and 10 kB strings;
* malformed SQS wakeup bodies and signed-then-tampered envelopes through the SQS Lambda handler.

A crash is any exception that is not a ``RunlaneError``: there must be none.
"""

from __future__ import annotations

import asyncio
import functools
import json
import threading
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import psycopg
from hypothesis import HealthCheck, given, settings
from psycopg import sql

from runlane import (
    ErrorCode,
    Runlane,
    RunlaneError,
    TriggerOutcomeType,
    create_lane,
    create_runlane,
    queue,
    task,
)
from runlane.infrastructure.memory import create_local_transport
from runlane.infrastructure.postgres import get_postgres_storage_migration_sql, postgres_storage
from tests.faults.environment import FaultWorld
from tests.faults.figures import Figures
from tests.faults.hostile_values import PAYLOADS, canonical, describe, hostile_strings
from tests.faults.scenarios.hostile_envelopes import check_envelopes

NAME = "hostile-input"
LIMIT = 1024 * 1024  # the runtime's default max_payload_bytes


@dataclass(frozen=True)
class Params:
    examples: int
    envelope_examples: int


CI = Params(examples=60, envelope_examples=60)
FULL = Params(examples=500, envelope_examples=400)


class Tally:
    """Outcomes by kind; ``crashes`` and ``partial_writes`` must stay empty."""

    def __init__(self) -> None:
        self.cases = 0
        self.stored = 0
        self.codes: Counter[str] = Counter()
        self.crashes: list[str] = []
        self.partial_writes: list[str] = []
        self.mismatches: list[str] = []
        self.wrong_codes: list[str] = []

    def rejected(self, label: str, error: RunlaneError, allowed: set[ErrorCode]) -> None:
        self.codes[error.code.value] += 1
        if error.code not in allowed:
            self.wrong_codes.append(f"{label}: {error.code.value} ({error.message[:80]})")


class Harness:
    """One runtime on the scenario schema, a run counter and an echo task recording handler input."""

    def __init__(self, world: FaultWorld, schema: str) -> None:
        self.world = world
        self.schema = schema
        self.tally = Tally()
        self.received: dict[str, Any] = {}
        self.lock = threading.Lock()

    def echo(self, payload: Any, context: Any) -> None:
        with self.lock:
            self.received[context.run.id] = payload

    def runtime(self, *queues_: Any, tasks: list[Any] | None = None, schema: str | None = None) -> Runlane:
        storage = postgres_storage(connection_string=self.world.dsn, schema=schema or self.schema)
        lane = create_lane(storage=storage, transport=create_local_transport(), name="hostile")
        default = queue("payloads", default=True)
        return create_runlane(
            lane=lane,
            queues=[default, *queues_],
            tasks=tasks or [task("hostile.echo", run=self.echo)],
            environment="faults",
            dispatch="deferred",
        )

    def run_count(self, schema: str | None = None) -> int:
        with psycopg.connect(self.world.libpq_dsn, connect_timeout=5) as conn:
            row = conn.execute(
                sql.SQL("select count(*) from {}").format(sql.Identifier(schema or self.schema, "runs"))
            ).fetchone()
        return int(row[0]) if row else 0

    async def attempt(
        self,
        label: str,
        call: Callable[[], Awaitable[Any]],
        allowed: set[ErrorCode],
        *,
        schema: str | None = None,
    ) -> Any | None:
        """Run ``call``; a RunlaneError must have an allowed code and leave the run count unchanged."""
        self.tally.cases += 1
        before = self.run_count(schema)
        try:
            return await call()
        except RunlaneError as exc:
            self.tally.rejected(label, exc, allowed)
            if self.run_count(schema) != before:
                self.tally.partial_writes.append(label)
        except Exception as exc:
            self.tally.crashes.append(f"{label}: {type(exc).__name__}: {str(exc)[:120]}")
        return None


async def _payload(h: Harness, runtime: Runlane, payload: Any, label: str) -> None:
    result = await h.attempt(
        label, lambda: runtime.trigger("hostile.echo", payload), {ErrorCode.VALIDATION_FAILED}
    )
    if result is None:
        return
    h.tally.stored += 1
    run_id = result.run.id
    stored = await runtime.runs.get(run_id)
    executed = await runtime.execute_next()
    expected = canonical(payload)
    if stored is None or canonical(stored.payload) != expected:
        h.tally.mismatches.append(f"{label}: read back differs")
    if executed is None or executed.id != run_id or canonical(h.received.get(run_id)) != expected:
        h.tally.mismatches.append(f"{label}: handler saw a different payload")


def _hypothesis_payloads(h: Harness, runner: asyncio.Runner, runtime: Runlane, examples: int) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        derandomize=True,
        suppress_health_check=list(HealthCheck),
    )
    @given(PAYLOADS)
    def case(payload: Any) -> None:
        runner.run(_payload(h, runtime, payload, f"payload {describe(payload)}"))

    case()


async def _size_limit(h: Harness, runtime: Runlane) -> None:
    fits = "x" * (LIMIT - 2)  # its JSON form '"xx...x"' is exactly LIMIT bytes
    assert len(json.dumps(fits).encode()) == LIMIT
    await _payload(h, runtime, fits, "payload of exactly 1 MiB")
    too_big = "x" * (LIMIT - 1)
    stored_before = h.tally.stored
    await _payload(h, runtime, too_big, "payload of 1 MiB + 1 byte")
    if h.tally.stored != stored_before:
        h.tally.mismatches.append("a payload over max_payload_bytes was stored")
    multibyte = "\u00e9" * (LIMIT // 2)  # 2 bytes each in UTF-8: over the limit by bytes, not characters
    await _payload(h, runtime, multibyte, "1 MiB of 2-byte characters")


async def _ids_and_keys(h: Harness, runtime: Runlane) -> None:
    for name, value in hostile_strings().items():
        for option in ("run_id", "idempotency_key", "singleton_key", "concurrency_key"):
            label = f"{option}={name}"
            options: dict[str, Any] = {option: value}
            result = await h.attempt(
                label,
                functools.partial(runtime.trigger, "hostile.echo", {"n": 1}, **options),
                {ErrorCode.VALIDATION_FAILED},
            )
            if result is None:
                continue
            h.tally.stored += 1
            field = "id" if option == "run_id" else option
            stored = await runtime.runs.get(result.run.id)
            if stored is None or getattr(stored, field) != value:
                h.tally.mismatches.append(f"{label}: read back differs")
            if option in ("idempotency_key", "singleton_key"):
                again = await runtime.trigger("hostile.echo", {"n": 2}, **options)
                if again.outcome is not TriggerOutcomeType.RETURNED_EXISTING or again.run.id != result.run.id:
                    h.tally.mismatches.append(f"{label}: the key did not find its run again")
            executed = await runtime.execute_next()
            if executed is None or executed.status.value != "succeeded":
                h.tally.mismatches.append(f"{label}: the run did not execute")


async def _queue_and_task_names(h: Harness) -> None:
    for name, value in hostile_strings().items():
        for kind in ("queue", "task"):
            label = f"{kind} name={name}"
            h.tally.cases += 1
            try:
                hostile_queue = queue(value) if kind == "queue" else queue("other")
                hostile_task = task(value if kind == "task" else "hostile.task", run=h.echo)
            except RunlaneError as exc:
                h.tally.rejected(label, exc, {ErrorCode.CONFIGURATION_INVALID})
                continue
            except Exception as exc:
                h.tally.crashes.append(f"{label}: {type(exc).__name__}: {exc}")
                continue
            h.tally.cases -= 1  # the definition was accepted; the trigger below is the case
            runtime = h.runtime(hostile_queue, tasks=[hostile_task, task("hostile.echo", run=h.echo)])
            async with runtime:
                result = await h.attempt(
                    label,
                    functools.partial(runtime.trigger, hostile_task, {"n": 1}, queue=hostile_queue),
                    {ErrorCode.VALIDATION_FAILED},
                )
                if result is None:
                    continue
                h.tally.stored += 1
                executed = await runtime.execute_next(queues=[hostile_queue])
                if (
                    executed is None
                    or executed.queue != hostile_queue.name
                    or executed.task_id != hostile_task.id
                ):
                    h.tally.mismatches.append(f"{label}: not executed on its queue")


async def _schema_names(h: Harness) -> None:
    names = {**hostile_strings(), "pg_prefix": "pg_runlane", "64_bytes": "s" * 64, "semicolon": "a;b"}
    for name, value in names.items():
        label = f"schema={name}"
        h.tally.cases += 1
        try:
            storage = postgres_storage(connection_string=h.world.dsn, schema=value)
        except RunlaneError as exc:
            h.tally.rejected(label, exc, {ErrorCode.CONFIGURATION_INVALID})
            continue
        except Exception as exc:
            h.tally.crashes.append(f"{label}: {type(exc).__name__}: {exc}")
            continue
        del storage
        with psycopg.connect(h.world.libpq_dsn, connect_timeout=10) as conn:
            conn.execute(get_postgres_storage_migration_sql(value))
        try:
            async with h.runtime(schema=value) as runtime:
                result = await runtime.trigger("hostile.echo", {"schema": value})
                back = await runtime.runs.get(result.run.id)
                h.tally.stored += 1
                if back is None or back.payload != {"schema": value}:
                    h.tally.mismatches.append(f"{label}: read back differs")
            with psycopg.connect(h.world.libpq_dsn, connect_timeout=10) as conn:
                found = conn.execute("select 1 from pg_namespace where nspname = %s", (value,)).fetchone()
                if found is None:
                    h.tally.mismatches.append(f"{label}: created under another name")
        finally:
            with psycopg.connect(h.world.libpq_dsn, autocommit=True, connect_timeout=10) as conn:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(value)))


def run(world: FaultWorld, params: Params) -> Figures:
    fig = Figures(NAME)
    schema = world.new_schema("hostile")
    h = Harness(world, schema)
    with asyncio.Runner() as runner:
        runtime = h.runtime()
        runner.run(runtime.start())
        try:
            _hypothesis_payloads(h, runner, runtime, params.examples)
            runner.run(_size_limit(h, runtime))
            runner.run(_ids_and_keys(h, runtime))
            runner.run(_queue_and_task_names(h))
            runner.run(_schema_names(h))
            envelopes = runner.run(check_envelopes(runtime, params.envelope_examples))
        finally:
            runner.run(runtime.close())
    try:
        intact = h.run_count() > 0  # the scenario's own tables survived every hostile name
    except psycopg.Error:
        intact = False
    t = h.tally
    fig.runs = t.stored
    fig.lost = len(t.mismatches)
    fig.add(
        cases=t.cases + envelopes.cases,
        rejected=sum(t.codes.values()) + envelopes.rejected,
        stored_exact=t.stored - len(t.mismatches),
        codes=dict(sorted((t.codes + envelopes.codes).items())),
        envelope_reasons=dict(sorted(envelopes.reasons.items())),
        crashes=len(t.crashes) + len(envelopes.crashes),
        partial_writes=len(t.partial_writes) + envelopes.state_changes,
    )
    fig.check(intact, "the scenario schema did not survive the hostile names")
    fig.check(not t.crashes, f"crashes: {t.crashes[:5]}")
    fig.check(not t.wrong_codes, f"unexpected error codes: {t.wrong_codes[:5]}")
    fig.check(not t.partial_writes, f"rejected but wrote rows: {t.partial_writes[:5]}")
    fig.check(not t.mismatches, f"not read back exactly: {t.mismatches[:5]}")
    for problem in envelopes.problems:
        fig.check(False, f"envelopes: {problem}")
    return fig.finish()
