"""Shared scenario plumbing: the base process config and seeding runs through the real runtime."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from runlane import Runlane
from tests.faults.environment import FaultWorld
from tests.faults.procs.app import build_runtime

ENVIRONMENT = "faults"


def base_config(world: FaultWorld, schema: str, log_dir: Path, **overrides: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "dsn": world.dsn,
        "libpq_dsn": world.libpq_dsn,
        "schema": schema,
        "environment": ENVIRONMENT,
        "queues": ["main"],
        "transport": {"kind": "postgres"},
        "retry": {"max_attempts": 5, "backoff": "200ms"},
        "lease": "2s",
        "heartbeat": "500ms",
        "concurrency": 2,
        "poll_interval": "100ms",
        "tick_interval": 0.25,
        "pool_size": 4,
        "log_dir": str(log_dir),
    }
    config.update(overrides)
    return config


async def trigger_all(
    runtime: Runlane, items: Sequence[tuple[str, Any]], *, parallel: int = 8, **options: Any
) -> list[str]:
    """Trigger ``(task_id, payload)`` items, ``parallel`` at a time; returns the run ids in order."""
    ids: list[str] = [""] * len(items)
    gate = asyncio.Semaphore(parallel)

    async def one(index: int, task_id: str, payload: Any) -> None:
        async with gate:
            result = await runtime.trigger(task_id, payload, **options)
            ids[index] = result.run.id

    await asyncio.gather(*(one(i, task_id, payload) for i, (task_id, payload) in enumerate(items)))
    return ids


def seed_runs(config: dict[str, Any], items: Sequence[tuple[str, Any]], **options: Any) -> list[str]:
    """Create runs with a runtime built from the same config the processes use."""

    async def go() -> list[str]:
        async with build_runtime({**config, "commit_then_fail": None}, "seeder") as runtime:
            return await trigger_all(runtime, items, dispatch="deferred", **options)

    return asyncio.run(go())
