"""``append_many_run_events``: many independent compare-and-appends in one transaction.

Items apply as if one after another, in input order, but cost one statement per *segment* instead
of several per item. A segment is a maximal stretch of consecutive "plain" items on distinct runs:
appends to an existing run without a capacity check, and creates without idempotency or singleton
keys or a schedule occurrence. Plain items on distinct runs cannot affect each other, so a segment
is written by ``bulk.write_staged`` at once (one statement for its creates, one for its appends),
and whoever lost its compare-and-set gets a ``sequence`` conflict with nothing written for it.

Every other item (keys, occurrence, capacity) runs the single-append code inside its own
``SAVEPOINT``: its conflict rolls back only that savepoint, and the batch goes on. A run that
appears twice ends the segment, so the second item sees the first one's write, as it would have
if the appends had been separate calls.

Only ``storage_conflict`` is returned per item. Any other error (an invalid item, a lost
connection) raises for the whole call, and since everything is one transaction nothing is written.

A large batch of plain creates (``trigger_many``) is written in chunks of ``PIPELINE_CHUNK`` runs,
one statement each, sent in psycopg's pipeline mode inside one transaction: the server writes
chunk k while this process stages chunk k + 1, and the results come back after the last one.
One statement for the whole batch kept the two sides taking turns.
"""

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import psycopg
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from runlane.domain.errors import RunlaneError, invariant_violation
from runlane.domain.vocabulary import ErrorCode, RunEventType
from runlane.infrastructure.postgres import driver_statements, runs
from runlane.infrastructure.postgres.bulk import RunWrite, current_sequences, staged_statement, write_staged
from runlane.infrastructure.postgres.driver_statements import Driver
from runlane.infrastructure.postgres.errors import translate_error
from runlane.infrastructure.postgres.schema import StorageTables
from runlane.infrastructure.postgres.writes import StagedWrite, stage_command
from runlane.ports.storage_commands import (
    AppendManyRunEvents,
    AppendRunEvents,
    AppendRunEventsResult,
)
from runlane.ports.storage_rules import sequence_conflict

Outcome = AppendRunEventsResult | RunlaneError
# What the driver may raise (as in ``storage``); translated so a unique violation is a conflict.
DRIVER_ERRORS = (sa_exc.SQLAlchemyError, psycopg.Error, OSError, UnicodeEncodeError)
# Runs per statement of a pipelined batch of creates (``write_pipelined_creates``). Batches
# shorter than two chunks stay one statement, as there is nothing to overlap.
PIPELINE_CHUNK = 200


@dataclass(frozen=True, slots=True)
class _Plain:
    index: int
    staged: StagedWrite


def _keyed_create(command: AppendRunEvents) -> bool:
    """A create with idempotency or singleton keys or a schedule occurrence: never plain, and its
    owner lookup must come first (a live owner wins before anything else is checked)."""
    if command.expected_sequence != 0 or not command.events:
        return False
    created = command.events[0]
    return created.type is RunEventType.CREATED and (
        created.idempotency_key is not None
        or created.singleton_key is not None
        or command.schedule_occurrence is not None
    )


def plain_staged(command: AppendRunEvents, *, notify: bool = False) -> StagedWrite | None:
    """The staged write when ``command`` can go set-based, ``None`` when it needs the full path.

    ``notify``: eager appends send their wakeups in their commit (``commit_wakeups``).
    """
    if _keyed_create(command):
        return None
    staged = stage_command(command, notify=notify)
    if staged.is_create and command.events[0].type is not RunEventType.CREATED:
        raise invariant_violation("A new run's first event must be run.created.", run_id=command.run_id)
    if command.concurrency_limit is not None and staged.takes_lease:
        return None
    return staged


def check_items(command: AppendManyRunEvents) -> None:
    """Every item an ``AppendRunEvents`` of the batch's environment, without a transaction; checked
    once per call, before ``pipelined_creates`` or ``stage_all`` reads the items."""
    for item in command.commands:
        if (
            not isinstance(item, AppendRunEvents)
            # ``is`` first: a batch's items share the runtime's one Environment.
            or (item.environment is not command.environment and item.environment != command.environment)
            or item.transaction is not None
        ):
            raise invariant_violation(
                "append_many_run_events items must be AppendRunEvents of the batch's environment "
                "without a transaction."
            )


async def _write_segment(
    conn: Driver, t: StorageTables, segment: Sequence[_Plain], results: list[Outcome | None]
) -> None:
    if not segment:
        return
    # Sorted by id: concurrent batches lock shared runs in the same order.
    creates = sorted((p for p in segment if p.staged.is_create), key=lambda p: p.staged.new.id)
    updates = sorted((p for p in segment if not p.staged.is_create), key=lambda p: p.staged.new.id)
    won = await write_staged(conn, t, [p.staged for p in creates], RunWrite.CREATE)
    won |= await write_staged(conn, t, [p.staged for p in updates], RunWrite.UPDATE)
    await _record_outcomes(conn, t, segment, won, results)


async def _record_outcomes(
    conn: Driver, t: StorageTables, written: Sequence[_Plain], won: set[str], results: list[Outcome | None]
) -> None:
    """Each written item's outcome: its result, or the ``sequence`` conflict of a run that lost."""
    lost = [p.staged.new.id for p in written if p.staged.new.id not in won]
    actual = await current_sequences(conn, t, written[0].staged.environment.name, lost)
    for p in written:
        item = p.staged
        if item.new.id not in won:
            results[p.index] = sequence_conflict(item.new.id, item.expected_sequence, actual.get(item.new.id))
        else:
            results[p.index] = item.result()


async def _append_alone(
    conn: AsyncConnection, t: StorageTables, command: AppendRunEvents, notify: bool
) -> Outcome:
    """The single-append path inside a savepoint: a conflict undoes this item only (and its
    wakeups: Postgres drops the notifications of a rolled-back savepoint)."""
    try:
        async with conn.begin_nested():
            return await runs.append_run_events(conn, t, command, notify=notify)
    except runs.ConvergedOnOwner as converged:
        return AppendRunEventsResult(run=converged.owner, returned_existing=True)
    except RunlaneError as exc:
        if exc.code is ErrorCode.STORAGE_CONFLICT:
            return exc
        raise
    except DRIVER_ERRORS as exc:
        error = translate_error(exc, operation="append_many_run_events")
        if error.code is ErrorCode.STORAGE_CONFLICT:
            return error
        raise


def stage_all(command: AppendManyRunEvents, *, notify: bool = False) -> list[StagedWrite | None]:
    """Every item's staged write (``None``: it needs the single-append path), before any write.

    An invalid plain item fails the call here; an invalid keyed item fails it inside the single
    append path, and the call's one transaction is rolled back, so nothing is written either way.
    ``command`` has passed ``check_items``.
    """
    return [plain_staged(item, notify=notify) for item in command.commands]


def pipelined_creates(command: AppendManyRunEvents) -> bool:
    """Whether ``command`` (past ``check_items``) is a batch of at least two chunks of plain
    creates of distinct runs."""
    items = command.commands
    return (
        len(items) >= 2 * PIPELINE_CHUNK
        and all(
            item.expected_sequence == 0 and item.concurrency_limit is None and not _keyed_create(item)
            for item in items
        )
        and len({item.run_id for item in items}) == len(items)
    )


async def write_pipelined_creates(
    conn: psycopg.AsyncConnection[Any], t: StorageTables, command: AppendManyRunEvents, *, notify: bool
) -> tuple[Outcome, ...]:
    """``pipelined_creates`` batches, in ``conn``'s transaction: each chunk is staged, then sent
    without waiting for the one before it; an item fails the call before anything commits.

    Chunks follow the runs' id order, as ``_write_segment`` does, and a run whose id already
    existed gets the same ``sequence`` conflict as there.
    """
    order = sorted(range(len(command.commands)), key=lambda index: command.commands[index].run_id)
    sent: list[tuple[psycopg.AsyncRawCursor[Any], list[_Plain]]] = []
    async with conn.pipeline():
        for start in range(0, len(order), PIPELINE_CHUNK):
            chunk = [
                _Plain(index, _staged_create(command.commands[index], notify))
                for index in order[start : start + PIPELINE_CHUNK]
            ]
            statement, params = staged_statement(t.schema, [p.staged for p in chunk], RunWrite.CREATE)
            sent.append((await driver_statements.execute(conn, statement, params), chunk))
    won: set[str] = set()
    for cursor, _ in sent:
        won.update(row[0] for row in await cursor.fetchall())
    results: list[Outcome | None] = [None] * len(order)
    await _record_outcomes(conn, t, [p for _, chunk in sent for p in chunk], won, results)
    return tuple(result for result in results if result is not None)


def _staged_create(command: AppendRunEvents, notify: bool) -> StagedWrite:
    staged = plain_staged(command, notify=notify)
    if staged is None or not staged.is_create:  # excluded by ``pipelined_creates``
        raise invariant_violation("A pipelined create must be a plain create.", run_id=command.run_id)
    return staged


def one_statement(plans: Sequence[StagedWrite | None]) -> list[StagedWrite] | None:
    """The plans when the whole call is one set-based statement: all plain, distinct runs, and
    all creates or all appends (a worker's outcome batch, a key-less ``trigger_many``)."""
    staged = [plan for plan in plans if plan is not None]
    if len(staged) != len(plans) or len({item.new.id for item in staged}) != len(staged):
        return None
    if len({item.is_create for item in staged}) > 1:
        return None
    return staged


async def write_one_statement(
    conn: Driver, t: StorageTables, staged: Sequence[StagedWrite]
) -> tuple[Outcome, ...]:
    """``one_statement`` plans written by one statement (atomic on its own, so no transaction)."""
    results: list[Outcome | None] = [None] * len(staged)
    await _write_segment(conn, t, [_Plain(index, item) for index, item in enumerate(staged)], results)
    assert all(result is not None for result in results)
    return tuple(result for result in results if result is not None)


async def append_many_run_events(
    conn: AsyncConnection,
    t: StorageTables,
    command: AppendManyRunEvents,
    plans: Sequence[StagedWrite | None],
    *,
    notify: bool = False,
) -> tuple[Outcome, ...]:
    """``command`` in its transaction; ``plans`` are ``stage_all(command, notify=notify)``."""
    results: list[Outcome | None] = [None] * len(plans)
    segment: list[_Plain] = []
    in_segment: set[str] = set()
    for index, (item, staged) in enumerate(zip(command.commands, plans, strict=True)):
        if staged is not None and item.run_id not in in_segment:
            segment.append(_Plain(index, staged))
            in_segment.add(item.run_id)
            continue
        await _write_segment(conn, t, segment, results)
        segment, in_segment = [], set()
        if staged is not None:
            segment.append(_Plain(index, staged))
            in_segment.add(item.run_id)
        else:
            results[index] = await _append_alone(conn, t, item, notify)
    await _write_segment(conn, t, segment, results)
    assert all(result is not None for result in results)
    return tuple(result for result in results if result is not None)
