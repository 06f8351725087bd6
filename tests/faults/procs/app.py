"""The application every fault process runs: Postgres storage, the fault tasks, the ledger.

A JSON config file (written by the harness) says which schema, queues, transport, retry policy,
lease settings and injected faults to use; ``build_runtime`` turns it into a runtime exactly as a
deployment would (``create_postgres_lane``, or ``postgres_storage`` with the local or SQS transport,
then ``create_runlane``).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import signal
import threading
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.faults.faulty_storage import CommitThenFailStorage, random_failures
from tests.faults.procs.ledger_client import LedgerClient

from runlane import (
    Clock,
    ErrorCode,
    Lane,
    RetryPolicy,
    Runlane,
    RunlaneError,
    TaskContext,
    TaskDefinition,
    create_lane,
    create_runlane,
    queue,
    task,
)
from runlane.domain.schedules import Schedule
from runlane.infrastructure.lanes import create_postgres_lane
from runlane.infrastructure.postgres import postgres_storage

ASYNC_TASK = "fault.async"
SYNC_TASK = "fault.sync"
SCHEDULED_TASK = "fault.scheduled"

_LEDGER: LedgerClient | None = None


def load_config(path: str) -> dict[str, Any]:
    config: dict[str, Any] = json.loads(Path(path).read_text(encoding="utf-8"))
    return config


class _JsonLines(logging.Handler):
    def __init__(self, path: Path, worker: str) -> None:
        super().__init__()
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self._worker = worker

    def emit(self, record: logging.LogRecord) -> None:
        fields = getattr(record, "runlane", None) or {}
        line = {"t": record.created, "level": record.levelname, "msg": record.getMessage()}
        line.update({"worker": self._worker, "pid": os.getpid(), **fields})
        self._file.write(json.dumps(line, default=str) + "\n")


def setup_logging(config: dict[str, Any], worker: str) -> None:
    """WARNING and above from ``runlane`` as JSON lines: lease lost, claim failures, discarded outcomes."""
    path = Path(config["log_dir"]) / f"{worker}.jsonl"
    logger = logging.getLogger("runlane")
    logger.setLevel(logging.WARNING)
    logger.addHandler(_JsonLines(path, worker))
    logger.propagate = False


def exit_with_parent() -> None:
    """Exit if the harness dies (we are reparented): a fault process must never outlive its suite."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1.0)
        os._exit(4)

    threading.Thread(target=watch, name="orphan-watch", daemon=True).start()


def _ledger() -> LedgerClient:
    assert _LEDGER is not None, "build_runtime() sets up the ledger"
    return _LEDGER


def _begin(payload: Any, context: TaskContext) -> None:
    """Record the attempt first: the ledger sees every execution that got this far."""
    _ledger().record_attempt(context.run.id, context.attempt)
    if isinstance(payload, dict) and payload.get("poison"):
        os.kill(os.getpid(), signal.SIGKILL)  # a poison run: takes its worker down every time


def _work_seconds(payload: Any, attempt: int) -> float:
    """``work_ms``, or ``first_attempt_ms`` for attempt 1 (a slow first attempt, e.g. to pause it)."""
    if not isinstance(payload, dict):
        return 0.0
    if attempt == 1 and "first_attempt_ms" in payload:
        return float(payload["first_attempt_ms"]) / 1000
    return float(payload.get("work_ms", 0)) / 1000


def _aborted(context: TaskContext) -> RunlaneError:
    reason = context.signal.reason or "aborted"
    _ledger().observe(context.run.id, context.attempt, f"aborted:{reason}")
    return RunlaneError(
        ErrorCode.OPERATION_CANCELLED, f"Attempt stopped ({reason}).", retryable=True, meta={"reason": reason}
    )


def run_sync(payload: Any, context: TaskContext) -> None:
    _begin(payload, context)
    deadline = time.monotonic() + _work_seconds(payload, context.attempt)
    while (left := deadline - time.monotonic()) > 0:
        if context.signal.aborted:
            raise _aborted(context)
        time.sleep(min(0.02, left))


async def run_async(payload: Any, context: TaskContext) -> None:
    await asyncio.to_thread(_begin, payload, context)
    work = _work_seconds(payload, context.attempt)
    if work <= 0:
        return
    try:
        await asyncio.wait_for(context.signal.wait(), timeout=work)
    except TimeoutError:
        return
    raise await asyncio.to_thread(_aborted, context)


def make_tasks(config: dict[str, Any]) -> list[TaskDefinition]:
    retry = config.get("retry") or {}
    policy = RetryPolicy(max_attempts=int(retry.get("max_attempts", 1)), backoff=retry.get("backoff"))
    tasks = [task(ASYNC_TASK, run=run_async, retry=policy), task(SYNC_TASK, run=run_sync, retry=policy)]
    schedules = [Schedule(**entry) for entry in config.get("schedules", [])]
    if schedules:
        tasks.append(task(SCHEDULED_TASK, run=lambda payload, context: None, schedule=schedules))
    return tasks


def _lane(
    config: dict[str, Any], worker: str, queues: dict[str, Any], wrap: Callable[[Any], Any] | None
) -> Lane:
    """``postgres``: the production Postgres lane (LISTEN/NOTIFY wakeups); ``local``: Postgres storage
    with the in-memory transport; ``sqs``: Postgres storage with the SQS transport on moto."""
    spec = config.get("transport") or {"kind": "postgres"}
    options: dict[str, Any] = {
        "pool_size": int(config.get("pool_size", 4)),
        "max_overflow": 4,
        "pool_timeout": 10.0,
        "connect_timeout": 3.0,
        "application_name": f"runlane-{worker}",
    }
    if spec["kind"] == "postgres":
        lane = create_postgres_lane(connection_string=config["dsn"], schema=config["schema"], **options)
        if wrap is None:
            return lane
        storage, transport = wrap(lane.storage), lane.transport
    else:
        storage = postgres_storage(connection_string=config["dsn"], schema=config["schema"], **options)
        storage = storage if wrap is None else wrap(storage)
        transport = _transport(spec, queues)
    durable = spec["kind"] != "local"
    return create_lane(storage=storage, transport=transport, name="faults", production_durable=durable)


def _transport(spec: dict[str, Any], queues: dict[str, Any]) -> Any:
    if spec["kind"] == "local":
        from runlane.infrastructure.memory import create_local_transport

        return create_local_transport()
    from tests.support.moto_server import make_sqs_client

    from runlane.infrastructure.sqs import sqs_queue, sqs_transport

    client = make_sqs_client(spec["endpoint"])
    bindings = [sqs_queue(queues[name], queue_url=url) for name, url in spec["queue_urls"].items()]
    return sqs_transport(client=client, queues=bindings)


def build_runtime(
    config: dict[str, Any],
    worker: str,
    *,
    clock: Clock | None = None,
    wrap_storage: Callable[[Any], Any] | None = None,
) -> Runlane:
    """The runtime a deployment would build; ``wrap_storage`` lets a test put a fault layer around it."""
    global _LEDGER
    _LEDGER = LedgerClient(config["libpq_dsn"], config["schema"], worker)
    faults = config.get("commit_then_fail")
    if faults:
        seed = zlib.crc32(f"{faults.get('seed', 0)}:{worker}".encode())
        should_fail = random_failures(float(faults["rate"]), faults["operations"], seed)

        def wrap_storage(inner: Any) -> Any:
            return CommitThenFailStorage(inner, should_fail)

    names = config["queues"]
    queues = {name: queue(name, default=index == 0) for index, name in enumerate(names)}
    lane = _lane(config, worker, queues, wrap_storage)
    return create_runlane(
        lane=lane,
        queues=list(queues.values()),
        tasks=make_tasks(config),
        environment=config.get("environment", "faults"),
        clock=clock,
        worker_id=worker,
    )
