"""``CommitThenFailStorage``: the real storage, but chosen writes commit and then "lose the reply".

This is the failure point around commit that matters for idempotency: the transaction is durable,
yet the caller sees a retryable ``internal_error`` (as after a connection drop between COMMIT and
its acknowledgement) and may retry. A retry must then meet a sequence conflict, an existing run or
an already-recorded event, never write a second event or outbox row.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from runlane import ErrorCode, RunlaneError

INJECTABLE = (
    "append_run_events",
    "append_many_run_events",
    "claim_due_runs",
    "heartbeat_run_lease",
    "complete_outbox_messages",
)


def lost_reply(operation: str) -> RunlaneError:
    return RunlaneError(
        ErrorCode.INTERNAL_ERROR,
        f"Postgres storage is unavailable during {operation}: connection lost after COMMIT (injected)",
        retryable=True,
        meta={"operation": operation, "reason": "storage_unavailable", "injected": True},
    )


class CommitThenFailStorage:
    """Delegates everything to ``inner``; ``should_fail(operation, command)`` picks the victims."""

    def __init__(self, inner: Any, should_fail: Callable[[str, object], bool]) -> None:
        self.inner = inner
        self.name = inner.name
        self.capabilities = inner.capabilities
        self._should_fail = should_fail
        self.injected: Counter[str] = Counter()
        self.last: dict[str, object] = {}  # the last command each operation saw (to replay it)

    def fail_with(self, should_fail: Callable[[str, object], bool]) -> None:
        """Choose the victims from now on (e.g. ``fail_next("append_run_events")``)."""
        self._should_fail = should_fail

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    async def start(self) -> None:
        await self.inner.start()

    async def close(self) -> None:
        await self.inner.close()

    async def _call(self, operation: str, command: object) -> Any:
        self.last[operation] = command
        result = await getattr(self.inner, operation)(command)
        if self._should_fail(operation, command):
            self.injected[operation] += 1
            raise lost_reply(operation)
        return result

    async def append_run_events(self, command: object) -> Any:
        return await self._call("append_run_events", command)

    async def append_many_run_events(self, command: object) -> Any:
        return await self._call("append_many_run_events", command)

    async def claim_due_runs(self, command: object) -> Any:
        return await self._call("claim_due_runs", command)

    async def heartbeat_run_lease(self, command: object) -> Any:
        return await self._call("heartbeat_run_lease", command)

    async def complete_outbox_messages(self, command: object) -> Any:
        return await self._call("complete_outbox_messages", command)


def fail_next(*operations: str) -> Callable[[str, object], bool]:
    """Fail exactly the next call of each named operation (a list: once per occurrence)."""
    pending = list(operations)

    def should_fail(operation: str, command: object) -> bool:
        if operation in pending:
            pending.remove(operation)
            return True
        return False

    return should_fail


def random_failures(rate: float, operations: Iterable[str], seed: int) -> Callable[[str, object], bool]:
    """Fail a fraction ``rate`` of the calls to ``operations`` (seeded, so a run can be replayed)."""
    chosen = frozenset(operations)
    rng = random.Random(seed)

    def should_fail(operation: str, command: object) -> bool:
        return operation in chosen and rng.random() < rate

    return should_fail
