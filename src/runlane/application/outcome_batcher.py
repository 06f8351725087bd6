"""Group commit for attempt outcomes: appends finishing together share one storage round trip.

Each item keeps its own expected sequence, so fencing is unchanged: a stale holder's item loses on
its own while the others commit. One batch is in flight at a time; items arriving meanwhile form the
next batch, so batches grow exactly when storage is the bottleneck and stay single under light load.
"""

import asyncio

from runlane.domain.errors import RunlaneError
from runlane.domain.values import Environment
from runlane.ports.storage import StorageAdapter
from runlane.ports.storage_commands import AppendManyRunEvents, AppendRunEvents, AppendRunEventsResult

_Item = tuple[AppendRunEvents, "asyncio.Future[AppendRunEventsResult]"]


class OutcomeBatcher:
    def __init__(self, storage: StorageAdapter, environment: Environment, *, max_batch: int = 100) -> None:
        self._storage = storage
        self._environment = environment
        self._max_batch = max_batch
        self._pending: list[_Item] = []
        self._sender: asyncio.Task[None] | None = None

    async def append(self, command: AppendRunEvents) -> AppendRunEventsResult:
        """Resolves to this item's result, or raises the conflict this item lost with."""
        future: asyncio.Future[AppendRunEventsResult] = asyncio.get_running_loop().create_future()
        self._pending.append((command, future))
        sender = self._sender
        if sender is None or sender.done() or sender.get_loop() is not future.get_loop():
            self._sender = asyncio.create_task(self._send_all())
        return await future

    async def _send_all(self) -> None:
        # Let attempts that finish in the same loop turn join the first batch.
        await asyncio.sleep(0)
        while self._pending:
            batch, self._pending = self._pending[: self._max_batch], self._pending[self._max_batch :]
            await self._send(batch)

    async def _send(self, batch: list[_Item]) -> None:
        try:
            if len(batch) == 1:
                command, future = batch[0]
                result = await self._storage.append_run_events(command)
                if not future.done():
                    future.set_result(result)
                return
            many = await self._storage.append_many_run_events(
                AppendManyRunEvents(environment=self._environment, commands=tuple(c for c, _ in batch))
            )
        except BaseException as exc:  # the whole call failed: every item learns why
            for _, future in batch:
                if not future.done():
                    future.set_exception(exc)
            if isinstance(exc, asyncio.CancelledError):
                raise
            return
        for (_, future), outcome in zip(batch, many.results, strict=True):
            if future.done():
                continue
            if isinstance(outcome, RunlaneError):
                future.set_exception(outcome)
            else:
                future.set_result(outcome)
