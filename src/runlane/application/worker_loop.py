"""``worker(...)``: claim due runs in batches and execute them with bounded concurrency.

One fetch loop claims up to ``min(batch_size, free slots)`` runs per storage round trip (one
statement with ``SKIP LOCKED`` on Postgres), starts an attempt task per run, and waits for a free
slot, a wakeup or the poll interval. ``poll`` mode runs until stopped; ``drain`` mode returns once
nothing is due and nothing is in flight. Outcomes go through the runtime's group commit.
"""

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
from runlane.domain.run_record import RunRecord
from runlane.domain.values import DeliveryMessage
from runlane.domain.vocabulary import WorkerMode
from runlane.ports.transport import WakeupSource, WakeupSubscription

_MAX_ERROR_BACKOFF = 5.0


class WorkerHandle:
    """``closed`` is one future settled when the worker has exited; ``stop()`` drains gracefully.

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
        batch_size: int,
        poll_interval: DurationValue,
        options: ExecutionOptions,
    ) -> None:
        self._ctx = ctx
        self.mode = mode
        self.queues = queues
        self.concurrency = concurrency
        self.batch_size = batch_size
        self._poll = poll_interval.milliseconds / 1000
        self._options = options
        self._stopping = asyncio.Event()
        self._wake = asyncio.Event()
        # Set while the fetch loop waits for a slot to free (or, draining, for the last attempts):
        # only then does a finishing attempt need to wake it (see ``_finished``).
        self._slot_wait = False
        self._in_flight: set[asyncio.Task[None]] = set()
        self.shutdown_signal = AbortSignal()
        self.executed = 0
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._main = asyncio.create_task(self._run())

    @property
    def stopping(self) -> bool:
        return self._stopping.is_set()

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def wake(self) -> None:
        """Stop waiting now (a wakeup arrived or a slot freed)."""
        self._wake.set()

    async def stop(self, grace: float | None = None) -> None:
        self._stopping.set()
        self._wake.set()
        if grace is not None:
            done, _ = await asyncio.wait({self.closed}, timeout=grace)
            if not done:
                self.shutdown_signal.abort(WORKER_SHUTDOWN)
        await asyncio.shield(self.closed)

    async def _run(self) -> None:
        subscription = await self._subscribe()
        try:
            await self._fetch_loop()
            if self._in_flight:
                await asyncio.gather(*self._in_flight, return_exceptions=True)
        except BaseException as exc:
            if not self.closed.done():
                self.closed.set_exception(exc)
                with contextlib.suppress(BaseException):
                    self.closed.exception()  # fire-and-forget workers: no "never retrieved" noise
            raise
        finally:
            if subscription is not None:
                with contextlib.suppress(Exception):
                    await subscription.close()
        if not self.closed.done():
            self.closed.set_result(None)

    async def _subscribe(self) -> WakeupSubscription | None:
        transport = self._ctx.lane.transport
        if not isinstance(transport, WakeupSource) or self.mode is WorkerMode.DRAIN:
            return None
        try:
            return await transport.listen(self.queues, self._on_wakeup)
        except Exception as exc:  # wakeups only save latency; polling still finds every run
            self._ctx.log(logging.WARNING, "wakeup listener unavailable", error=type(exc).__name__)
            return None

    def _on_wakeup(self, message: DeliveryMessage) -> None:
        self._wake.set()

    async def _fetch_loop(self) -> None:
        ctx = self._ctx
        failures = 0
        while not self._stopping.is_set():
            # Cleared before claiming, never after: a wakeup or freed slot that arrives while the
            # claim is in flight keeps the event set, so the wait below returns at once instead
            # of losing it until the next wakeup or the poll interval.
            self._wake.clear()
            free = self.concurrency - len(self._in_flight)
            if free <= 0:
                await self._wait_for_slot()  # a finishing attempt wakes us sooner
                continue
            try:
                claimed = await claim_runs(
                    ctx, self._options, queues=self.queues, limit=min(free, self.batch_size)
                )
            except Exception as exc:  # storage down: back off, never crash-loop
                failures += 1
                ctx.log(logging.WARNING, "worker claim failed", error=type(exc).__name__, failures=failures)
                await self._backoff(min(_MAX_ERROR_BACKOFF, 0.05 * 2**failures))
                continue
            failures = 0
            for claim in claimed:
                self._start(claim.run)
            if len(claimed) == min(free, self.batch_size):
                continue  # there may be more due work: claim again at once
            if self.mode is WorkerMode.DRAIN and not claimed:
                if not self._in_flight:
                    return
                await self._wait_for_slot()  # an attempt may release or retry into due work
                continue
            # A partial batch usually means nothing else is due, but a claim also stops short after
            # skipping locked runs or busy partitions: look once more at once. An empty claim waits
            # for a wakeup, a freed slot or the poll interval (one that arrived meanwhile is kept).
            await self._wait(self._poll if not claimed else 0)

    def _start(self, run: RunRecord) -> None:
        task = asyncio.create_task(self._execute(run))
        self._in_flight.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """A freed slot matters only to a loop that waits for one. Waking the loop on every finish
        made it claim again for nothing after each attempt (an empty claim is three round trips),
        and a wakeup arriving meanwhile waited for that claim to end."""
        self._in_flight.discard(task)
        if self._slot_wait:
            self._wake.set()

    async def _execute(self, run: RunRecord) -> None:
        try:
            after = await execute_attempt(self._ctx, run, self._options, shutdown=self.shutdown_signal)
            self.executed += 1
            if after.is_due(self._ctx.now()):  # released or retried into work that is due now
                self._wake.set()
        except Exception as exc:  # outcome write failed: the lease expires and tick recovers it
            self._ctx.log(
                logging.ERROR, "attempt outcome not recorded", run_id=run.id, error=type(exc).__name__
            )

    async def _backoff(self, seconds: float) -> None:
        """After a failed claim only ``stop()`` ends the pause early: attempts failing during an
        outage free their slots (and wakeups may keep arriving), which must not turn it into a hot loop.
        """
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stopping.wait(), timeout=seconds)

    async def _wait_for_slot(self) -> None:
        self._slot_wait = True
        try:
            await self._wait(self._poll)
        finally:
            self._slot_wait = False

    async def _wait(self, seconds: float) -> None:
        """Until a slot frees, a wakeup arrives, stop is called, or ``seconds`` pass."""
        if seconds == 0:
            await asyncio.sleep(0)
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)

    def __await__(self) -> Any:
        return asyncio.shield(self.closed).__await__()
