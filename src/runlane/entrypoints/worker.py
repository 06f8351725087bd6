"""The long-running worker process behind ``runlane worker``.

On SIGTERM/SIGINT it stops claiming at once, lets in-flight attempts finish within the shutdown
grace (then aborts their signals; an attempt that fails because of that is released, not charged
to its retry budget), and exits 0. A second signal exits immediately with 130. Ticks run here only
with ``--with-tick``; production schedules ``runlane tick`` separately. Once started, before it
claims, it tunes the garbage collector for a long-lived process (``gc_tuning``) unless
``RUNLANE_WORKER_GC_TUNING`` is false.
"""

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from runlane.application.app_definition import RunlaneApp
from runlane.application.runtime import Runlane
from runlane.application.worker_loop import WorkerHandle
from runlane.domain.durations import DurationValue
from runlane.domain.errors import RunlaneError
from runlane.domain.queues import QueueDefinition
from runlane.domain.vocabulary import ErrorCode, WorkerMode
from runlane.entrypoints.gc_tuning import tune_worker_gc
from runlane.entrypoints.shutdown import ShutdownSignals, exit_now

logger = logging.getLogger("runlane.worker")
# After the grace, aborted attempts get this long to record their outcome before we give up.
ABORT_WINDOW_SECONDS = 5.0
STUCK_EXIT_CODE = 1


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkerOptions:
    mode: WorkerMode
    queue_names: tuple[str, ...]
    profile: str | None
    concurrency: int
    poll_interval: str
    lease_duration: str
    heartbeat_interval: str | None
    max_attempt_duration: str | None
    shutdown_grace: DurationValue
    with_tick: bool
    tick_interval: DurationValue
    tick_limit: int
    gc_tuning: bool


def resolve_queues(
    runtime: Runlane, app: RunlaneApp, names: Sequence[str], profile: str | None
) -> tuple[QueueDefinition, ...] | None:
    """``None`` means every registered queue."""
    if names and profile:
        raise RunlaneError(ErrorCode.CONFIGURATION_INVALID, "--queues and --profile are mutually exclusive")
    if profile:
        return app.queues_for_profile(profile)
    if not names:
        return None
    return registered_queues(runtime, names, option="--queues", code=ErrorCode.CONFIGURATION_INVALID)


def registered_queues(
    runtime: Runlane, names: Sequence[str], *, option: str, code: ErrorCode
) -> tuple[QueueDefinition, ...]:
    """The runtime's queues named on the command line; ``code`` names every unknown one at once."""
    registered = runtime.queues
    unknown = [name for name in names if name not in registered]
    if unknown:
        raise RunlaneError(
            code,
            f"{option}: {', '.join(unknown)} not registered (registered: {', '.join(sorted(registered))})",
        )
    return tuple(registered[name] for name in names)


def _log(message: str, **fields: object) -> None:
    logger.info(message, extra={"runlane": {k: v for k, v in fields.items() if v is not None}})


async def _tick_forever(runtime: Runlane, interval: float, limit: int, stop: asyncio.Event) -> None:
    while not stop.is_set():
        try:
            await runtime.tick(limit=limit)
        except Exception as exc:  # maintenance must not take the worker down; next tick retries
            logger.warning("tick failed", extra={"runlane": {"error": type(exc).__name__}})
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


async def _stop_gracefully(handle: WorkerHandle, grace: float) -> None:
    try:
        await asyncio.wait_for(handle.stop(grace=grace), timeout=grace + ABORT_WINDOW_SECONDS)
    except TimeoutError:
        exit_now(
            STUCK_EXIT_CODE,
            f"error: attempts still running {grace + ABORT_WINDOW_SECONDS:.0f}s after shutdown began; "
            "exiting (their leases expire and tick recovers the runs)",
        )


async def run_worker(
    runtime: Runlane, app: RunlaneApp, options: WorkerOptions, *, report: Callable[[str], None]
) -> int:
    """Run until drained (drain mode) or signalled; returns the process exit code."""
    queues = resolve_queues(runtime, app, options.queue_names, options.profile)
    grace = options.shutdown_grace.milliseconds / 1000
    with ShutdownSignals() as signals:
        async with runtime:
            if options.with_tick and options.mode is WorkerMode.DRAIN:
                await runtime.tick(limit=options.tick_limit)
            if signals.requested.is_set():  # signalled while starting: claim nothing at all
                report("worker stopped before it started")
                return 0
            # Started (imports, pools, compiled statements): what is alive now lives as long as we do.
            frozen = tune_worker_gc() if options.gc_tuning else None
            handle = runtime.worker(
                mode=options.mode,
                queues=queues,
                concurrency=options.concurrency,
                poll_interval=options.poll_interval,
                lease_duration=options.lease_duration,
                heartbeat_interval=options.heartbeat_interval,
                max_attempt_duration=options.max_attempt_duration,
            )
            _log(
                "worker started",
                lane=runtime.lane.name,
                mode=options.mode.value,
                queues=",".join(q.name for q in queues) if queues is not None else "*",
                concurrency=options.concurrency,
                worker_id=runtime.worker_id,
                pid=os.getpid(),
                gc_frozen_objects=frozen,
            )
            ticking = asyncio.Event()
            ticker = None
            if options.with_tick and options.mode is WorkerMode.POLL:
                ticker = asyncio.create_task(
                    _tick_forever(
                        runtime, options.tick_interval.milliseconds / 1000, options.tick_limit, ticking
                    )
                )
            stop_requested = asyncio.create_task(signals.wait())
            try:
                await asyncio.wait({handle.closed, stop_requested}, return_when=asyncio.FIRST_COMPLETED)
                if signals.requested.is_set():
                    _log("worker stopping", signal=signals.received, grace=options.shutdown_grace.duration)
                    await _stop_gracefully(handle, grace)
            finally:
                stop_requested.cancel()
                ticking.set()
                if ticker is not None:
                    await ticker
            await handle  # re-raises a slot's crash
            _log("worker stopped", executed=handle.executed)
            report(f"worker stopped: executed {handle.executed} attempt(s)")
    return 0
