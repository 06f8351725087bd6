"""Operator reads and prune selection over the run store: keyset pages with opaque cursors."""

import heapq
from collections.abc import Callable, Iterator
from typing import Any

from runlane.domain.cursors import (
    cursor_int,
    cursor_str,
    decode_cursor,
    encode_cursor,
    time_from_key,
    time_key,
)
from runlane.domain.errors import validation_failed
from runlane.domain.pages import Page
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.vocabulary import TERMINAL_RUN_STATUSES, RunSortField, RunStatus, SortDirection
from runlane.infrastructure.memory.run_store import RunStore
from runlane.infrastructure.memory.sorted_keys import SortKey
from runlane.ports.storage_commands import ListRunEvents, ListRuns, PruneRuns, RunFilter

_RUNS_CURSOR = "runs"
_EVENTS_CURSOR = "events"
_PRUNE_CURSOR = "prune"


def _keyset(data: dict[str, Any]) -> SortKey:
    return (time_from_key(cursor_int(data, "t")), cursor_str(data, "i"))


def _matcher(flt: RunFilter) -> Callable[[RunRecord], bool]:
    statuses = None if flt.statuses is None else frozenset(RunStatus(s) for s in flt.statuses)
    task_ids = None if flt.task_ids is None else frozenset(flt.task_ids)
    queues = None if flt.queues is None else frozenset(flt.queues)

    def matches(run: RunRecord) -> bool:
        return (
            (statuses is None or run.status in statuses)
            and (task_ids is None or run.task_id in task_ids)
            and (queues is None or run.queue in queues)
            and (flt.idempotency_key is None or run.idempotency_key == flt.idempotency_key)
            and (flt.singleton_key is None or run.singleton_key == flt.singleton_key)
            and (flt.created_after is None or run.created_at > flt.created_after)
            and (flt.created_before is None or run.created_at < flt.created_before)
        )

    return matches


def list_runs(store: RunStore, query: ListRuns) -> Page[RunRecord]:
    environment = query.filter.environment.name
    sort_by = RunSortField(query.sort_by)
    direction = SortDirection(query.sort_direction)
    descending = direction is SortDirection.DESC
    limit = query.pagination.clamped_limit
    after: SortKey | None = None
    if query.pagination.cursor is not None:
        data = decode_cursor(
            query.pagination.cursor, _RUNS_CURSOR, s=sort_by.value, d=direction.value, e=environment
        )
        after = _keyset(data)
    matches = _matcher(query.filter)
    state = store.environment(environment)
    page: list[RunRecord]
    if sort_by is RunSortField.CREATED_AT:
        keys = state.by_created.descending(after) if descending else state.by_created.ascending(after)
        page = _take((state.runs[run_id] for _, run_id in keys), matches, limit + 1)
    else:

        def beyond(run: RunRecord) -> bool:
            key = (run.updated_at, run.id)
            return after is None or (key < after if descending else key > after)

        candidates = (run for run in state.runs.values() if matches(run) and beyond(run))
        pick = heapq.nlargest if descending else heapq.nsmallest
        page = pick(limit + 1, candidates, key=lambda run: (run.updated_at, run.id))
    next_cursor = None
    if len(page) > limit:
        page = page[:limit]
        last = page[-1]
        sort_value = last.created_at if sort_by is RunSortField.CREATED_AT else last.updated_at
        next_cursor = encode_cursor(
            _RUNS_CURSOR, s=sort_by.value, d=direction.value, e=environment, t=time_key(sort_value), i=last.id
        )
    return Page(data=tuple(page), next_cursor=next_cursor)


def _take(runs: Iterator[RunRecord], matches: Callable[[RunRecord], bool], count: int) -> list[RunRecord]:
    taken: list[RunRecord] = []
    for run in runs:
        if matches(run):
            taken.append(run)
            if len(taken) >= count:
                break
    return taken


def list_run_events(store: RunStore, query: ListRunEvents) -> Page[RunEventRecord]:
    environment = query.environment.name
    direction = SortDirection(query.sort_direction)
    limit = query.pagination.clamped_limit
    history = store.events(environment, query.run_id)
    after: int | None = None
    if query.pagination.cursor is not None:
        data = decode_cursor(
            query.pagination.cursor, _EVENTS_CURSOR, r=query.run_id, d=direction.value, e=environment
        )
        after = cursor_int(data, "q")
    if direction is SortDirection.ASC:
        start = 0 if after is None else max(after, 0)
        window = history[start : start + limit + 1]
    else:
        stop = len(history) if after is None else max(min(after - 1, len(history)), 0)
        window = history[max(stop - limit - 1, 0) : stop][::-1]
    next_cursor = None
    if len(window) > limit:
        window = window[:limit]
        next_cursor = encode_cursor(
            _EVENTS_CURSOR, r=query.run_id, d=direction.value, e=environment, q=window[-1].sequence
        )
    return Page(data=tuple(window), next_cursor=next_cursor)


def select_prunable(store: RunStore, command: PruneRuns) -> tuple[list[RunRecord], str | None]:
    """The next ``limit`` prunable runs in ``(updated_at, id)`` order and the cursor after them."""
    environment = command.environment.name
    statuses = frozenset(RunStatus(s) for s in command.statuses)
    active = statuses - TERMINAL_RUN_STATUSES
    if active:
        raise validation_failed(
            "prune_runs deletes terminal runs only.", statuses=sorted(status.value for status in active)
        )
    after: SortKey | None = None
    if command.cursor is not None:
        after = _keyset(decode_cursor(command.cursor, _PRUNE_CURSOR, e=environment))
    if command.limit <= 0:
        return [], None
    candidates = (
        run
        for run in store.in_statuses(environment, statuses)
        if run.updated_at < command.older_than and (after is None or (run.updated_at, run.id) > after)
    )
    chosen = heapq.nsmallest(command.limit + 1, candidates, key=lambda run: (run.updated_at, run.id))
    if len(chosen) <= command.limit:
        return chosen, None
    chosen = chosen[: command.limit]
    last = chosen[-1]
    return chosen, encode_cursor(_PRUNE_CURSOR, e=environment, t=time_key(last.updated_at), i=last.id)
