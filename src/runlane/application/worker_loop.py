"""``worker(...)``: N slots that claim and execute due runs until stopped (poll) or idle (drain)."""

import asyncio
import contextlib
import logging
from typing import Any

from runlane.application.execute_next import claim_runs
from runlane.application.execution_options import ExecutionOptions
from runlane.application.run_attempt import WORKER_SHUTDOWN, execute_attempt
from runlane.application.runtime_context import RuntimeContext
from runlane.application.signal import AbortSignal
from runlane.domain.durations import DurationValue
from runlane.domain.vocabulary import WorkerMode

_MAX_ERROR_BACKOFF = 5.0


class WorkerHandle:
    """``closed`` is one future settled when every slot has exited; ``stop()`` drains gracefully.

    Stopping stops claiming at once and lets in-flight attempts finish. With ``grace`` set, attempts
    still running after it see their signal aborted; one that then fails is released (reason
    ``worker_shutdown``) rather than charged to the retry budget.
    """

    def __init__(
        self,
        ctx: RuntimeContext,
        *,
        mode: WorkerMode,
        queues: tuple[str, ...] | None,
        concurrency: int,
        poll_interval: DurationValue,
        options: ExecutionOptions,
    ) -> None:
        self._ctx = ctx
        self.mode = mode
        self.queues = queues
        self.concurrency = concurrency
        self._poll = poll_interval.milliseconds / 1000
        self._options = options
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        self.shutdown_signal = AbortSignal()
        self.executed = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._slots = [asyncio.create_task(self._slot(index)) for index in range(concurrency)]
        self._supervisor = asyncio.create_task(self._supervise())

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    def wake(self) -> None:
        """Skip the idle wait (e.g. a wakeup arrived)."""
        self._wake.set()

    async def stop(self, grace: float | None = None) -> None:
        self._stopping.set()
        self._wake.set()
        if grace is not None:
            done, _ = await asyncio.wait({self.closed}, timeout=grace)
            if not done:
                self.shutdown_signal.abort(WORKER_SHUTDOWN)
        await asyncio.shield(self.closed)

    async def _supervise(self) -> None:
        results = await asyncio.gather(*self._slots, return_exceptions=True)
        errors = [
            r for r in results if isinstance(r, BaseException) and not isinstance(r, asyncio.CancelledError)
        ]
        if errors:
            self.closed.set_exception(errors[0])
        else:
            self.closed.set_result(None)
        # Nobody may await ``closed`` (fire-and-forget workers): avoid "exception never retrieved" noise.
        with contextlib.suppress(BaseException):
            self.closed.exception()

    async def _slot(self, index: int) -> None:
        ctx = self._ctx
        failures = 0
        while not self._stopping.is_set():
            try:
                claimed = await claim_runs(ctx, self._options, queues=self.queues, limit=1)
            except Exception as exc:  # storage down: back off, never crash-loop
                failures += 1
                delay = min(_MAX_ERROR_BACKOFF, 0.05 * 2**failures)
                ctx.log(logging.WARNING, "worker claim failed", error=type(exc).__name__, slot=index)
                await self._idle(delay)
                continue
            failures = 0
            if not claimed:
                if self.mode is WorkerMode.DRAIN:
                    return
                await self._idle(self._poll)
                continue
            try:
                await execute_attempt(ctx, claimed[0].run, self._options, shutdown=self.shutdown_signal)
                self.executed += 1
            except Exception as exc:  # outcome write failed: the lease expires and tick recovers it
                ctx.log(
                    logging.ERROR,
                    "attempt outcome not recorded",
                    run_id=claimed[0].run.id,
                    error=type(exc).__name__,
                )
                await self._idle(min(_MAX_ERROR_BACKOFF, 0.1))

    async def _idle(self, seconds: float) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def __await__(self) -> Any:
        return asyncio.shield(self.closed).__await__()
