"""Bounded polling helpers: wait for a condition or a run state, failing with a clear message."""

import asyncio
import inspect
import time
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from runlane.domain.pages import PaginationParams
from runlane.domain.run_events import RunEventRecord
from runlane.domain.run_record import RunRecord
from runlane.domain.values import Environment
from runlane.domain.vocabulary import RunEventType, RunStatus
from runlane.ports.storage import StorageAdapter
from runlane.ports.storage_commands import GetRun, ListRunEvents

T = TypeVar("T")

# A run with more history than this is a runaway loop, not something a test should page through.
MAX_EVENT_PAGES = 1_000


class _LaneLike(Protocol):
    @property
    def storage(self) -> StorageAdapter: ...


class RuntimeLike(Protocol):
    """Anything with an ``environment`` and a ``lane.storage`` (a runtime, or a small test double)."""

    @property
    def environment(self) -> Environment: ...

    @property
    def lane(self) -> _LaneLike: ...


async def wait_for_condition(
    condition: Callable[[], Any],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - documented helper API, like the TypeScript package
    interval: float = 0.01,
    message: str | None = None,
) -> Any:
    """Poll ``condition`` (sync or async) until it returns a truthy value, and return that value.

    Raises ``TimeoutError`` after ``timeout`` seconds; the condition is always checked at least once.
    """
    if timeout <= 0 or interval <= 0:
        raise ValueError("timeout and interval must be positive.")
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if inspect.isawaitable(result):
            result = await result
        if result:
            return result
        if time.monotonic() >= deadline:
            raise TimeoutError(message or f"Condition was not met within {timeout:g}s.")
        await asyncio.sleep(interval)


async def wait_for_run_status(
    runtime_like: RuntimeLike,
    run_id: str,
    status: RunStatus | str | Sequence[RunStatus | str],
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - documented helper API, like the TypeScript package
    interval: float = 0.01,
) -> RunRecord:
    """Wait until the run is in ``status`` (or one of several) and return that record."""
    wanted = frozenset(RunStatus(s) for s in ([status] if isinstance(status, str) else status))
    last: list[RunRecord | None] = [None]

    async def reached() -> RunRecord | None:
        run = await runtime_like.lane.storage.get_run(
            GetRun(environment=runtime_like.environment, run_id=run_id)
        )
        last[0] = run
        return run if run is not None and run.status in wanted else None

    seen = "missing"
    try:
        result: RunRecord = await wait_for_condition(reached, timeout=timeout, interval=interval)
        return result
    except TimeoutError:
        if last[0] is not None:
            seen = last[0].status.value
        names = ", ".join(sorted(s.value for s in wanted))
        raise TimeoutError(
            f"Run {run_id} did not reach {names} within {timeout:g}s (last status: {seen})."
        ) from None


async def list_run_events(runtime_like: RuntimeLike, run_id: str) -> tuple[RunEventRecord, ...]:
    """The run's whole history in sequence order (every page)."""
    storage = runtime_like.lane.storage
    events: list[RunEventRecord] = []
    cursor: str | None = None
    for _ in range(MAX_EVENT_PAGES):
        page = await storage.list_run_events(
            ListRunEvents(
                environment=runtime_like.environment,
                run_id=run_id,
                pagination=PaginationParams(limit=500, cursor=cursor),
            )
        )
        events.extend(page.data)
        cursor = page.next_cursor
        if cursor is None:
            return tuple(events)
    raise AssertionError(f"Run {run_id} has more than {MAX_EVENT_PAGES} pages of events.")


async def list_run_event_types(runtime_like: RuntimeLike, run_id: str) -> tuple[RunEventType, ...]:
    """Event types in sequence order; ``RunEventType`` compares equal to its string value."""
    return tuple(event.type for event in await list_run_events(runtime_like, run_id))


async def wait_for_run_event(
    runtime_like: RuntimeLike,
    run_id: str,
    event_type: RunEventType | str,
    *,
    timeout: float = 5.0,  # noqa: ASYNC109 - documented helper API, like the TypeScript package
    interval: float = 0.01,
) -> RunEventRecord:
    """Wait until the run's history holds an event of ``event_type``; return the first such event."""
    wanted = RunEventType(event_type)

    async def found() -> RunEventRecord | None:
        for event in await list_run_events(runtime_like, run_id):
            if event.type is wanted:
                return event
        return None

    try:
        result: RunEventRecord = await wait_for_condition(found, timeout=timeout, interval=interval)
        return result
    except TimeoutError:
        types = [t.value for t in await list_run_event_types(runtime_like, run_id)]
        raise TimeoutError(
            f"Run {run_id} has no {wanted.value} event after {timeout:g}s (history: {types})."
        ) from None


def get_at(items: Sequence[T], index: int) -> T:
    """``items[index]``, failing with an ``AssertionError`` that shows the length when out of range."""
    if not -len(items) <= index < len(items):
        raise AssertionError(f"Expected an item at index {index}, but the sequence has {len(items)} items.")
    return items[index]
