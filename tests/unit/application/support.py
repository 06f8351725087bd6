"""Shared helpers for runtime behaviour tests on the local lane.

Every runtime gets a controlled clock so time-based rules (backoff, TTLs, leases, schedules) are
asserted to the millisecond without sleeping. ``Harness`` builds runtimes and closes them after the
test; ``CapabilityStorage`` and ``YieldingStorage`` wrap the real in-memory storage (no mocks of
our own ports): the first hides capabilities, the second forces concurrent callers to interleave.
"""

import asyncio
import inspect
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

import pytest

from runlane import (
    Environment,
    ErrorCode,
    QueueDefinition,
    Runlane,
    RunlaneError,
    TaskDefinition,
    create_lane,
    create_runlane,
    queue,
)
from runlane.infrastructure.memory import create_local_lane, create_local_transport
from runlane.ports.lane import Lane
from runlane.ports.storage_commands import ListOutboxMessages, OutboxMessage
from runlane.testing import ControlledClock
from runlane.testing import claim_queued_run as claim_queued_run  # re-exported for tests

DEFAULT_QUEUE = queue("default", default=True)


class CapabilityStorage:
    """The real local storage with some capability flags switched off, recording every call.

    Only the advertised flags change; the methods still work. Tests using it prove that core gates
    a feature itself instead of relying on the adapter to refuse.
    """

    def __init__(self, inner: Any, **flags: bool) -> None:
        self._inner = inner
        self.capabilities = replace(inner.capabilities, **flags)
        self.name = inner.name
        self.calls: list[str] = []

    @property
    def base(self) -> Any:
        """The innermost real storage, for inspecting state behind every wrapper."""
        storage = self._inner
        while hasattr(storage, "inner"):
            storage = storage.inner
        return storage

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def recorded(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return await attr(*args, **kwargs)

        return recorded


class YieldingStorage:
    """The real local storage, but every call yields to the event loop before and after it runs.

    In-memory calls never suspend, so ``asyncio.gather`` would otherwise run callers one after the
    other; yielding makes concurrent triggers, ticks and deliveries genuinely interleave.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.capabilities = inner.capabilities
        self.name = inner.name

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._inner, name)
        if not inspect.iscoroutinefunction(attr):
            return attr

        async def interleaved(*args: Any, **kwargs: Any) -> Any:
            await asyncio.sleep(0)
            result = await attr(*args, **kwargs)
            await asyncio.sleep(0)
            return result

        return interleaved


def lane_with_storage(storage: Any, *, operator_reads: bool = True) -> Lane:
    return create_lane(
        storage=storage, transport=create_local_transport(), name="local", operator_reads=operator_reads
    )


class Harness:
    """Builds runtimes over local lanes with one shared controlled clock; closes them at teardown."""

    def __init__(self, clock: ControlledClock) -> None:
        self.clock = clock
        self._runtimes: list[Runlane] = []

    def runtime(
        self,
        tasks: dict[str, TaskDefinition] | Iterable[TaskDefinition],
        *,
        queues: Iterable[QueueDefinition] = (DEFAULT_QUEUE,),
        lane: Lane | None = None,
        environment: Environment | str | None = None,
        **options: Any,
    ) -> Runlane:
        runtime = create_runlane(
            lane=lane or create_local_lane(),
            queues=list(queues),
            tasks=tasks if isinstance(tasks, dict) else list(tasks),
            environment=environment,
            clock=self.clock,
            **options,
        )
        self._runtimes.append(runtime)
        return runtime

    async def close(self) -> None:
        for runtime in reversed(self._runtimes):
            await runtime.close()


@contextmanager
def expect_error(code: ErrorCode) -> Iterator[pytest.ExceptionInfo[RunlaneError]]:
    """``pytest.raises(RunlaneError)`` that also checks the stable error code."""
    with pytest.raises(RunlaneError) as info:
        yield info
    assert info.value.code is code, f"expected {code.value}, got {info.value!r}"


async def outbox_rows(runtime: Runlane, run_id: str | None = None) -> tuple[OutboxMessage, ...]:
    return await runtime.lane.storage.list_outbox_messages(
        ListOutboxMessages(environment=runtime.environment, run_id=run_id, limit=1000)
    )


async def all_run_ids(runtime: Runlane) -> list[str]:
    """Every run id in the runtime's environment (all pages)."""
    ids: list[str] = []
    cursor: str | None = None
    for _ in range(1000):
        page = await runtime.runs.list(limit=500, cursor=cursor)
        ids.extend(run.id for run in page.data)
        cursor = page.next_cursor
        if cursor is None:
            return ids
    raise AssertionError("runs.list did not terminate")


async def noop(payload: object, context: object) -> None:
    return None


def published(runtime: Runlane) -> tuple[Any, ...]:
    transport: Any = runtime.lane.transport
    result: tuple[Any, ...] = transport.published
    return result
