"""Process commands: ``worker``, ``tick``, ``sqs-consume`` and ``migrate``."""

import asyncio
import contextlib
import sys
from pathlib import Path
from typing import Any

import typer

from runlane.application.app_definition import RunlaneApp
from runlane.application.runtime import Runlane
from runlane.domain.vocabulary import WorkerMode
from runlane.entrypoints.cli_support import (
    APP_OPTION,
    CONFIG_OPTION,
    DEBUG_OPTION,
    JSON_OPTION,
    common,
    guarded,
    settings_for,
    with_runtime,
)
from runlane.entrypoints.cli_values import duration_option, name_list
from runlane.entrypoints.container import RunlaneContainer
from runlane.entrypoints.lane_factories import database_url
from runlane.entrypoints.output import console, emit_json, show_mapping
from runlane.entrypoints.settings import RunlaneSettings
from runlane.entrypoints.shutdown import ShutdownSignals
from runlane.entrypoints.sqs_consume import run_sqs_consumers
from runlane.entrypoints.worker import WorkerOptions, run_worker


def _stdout(line: str) -> None:
    sys.stdout.write(f"{line}\n")
    sys.stdout.flush()


def worker(
    ctx: typer.Context,
    mode: WorkerMode = typer.Option(WorkerMode.POLL, help="poll: run until signalled; drain: until idle."),
    queues: str | None = typer.Option(
        None, help="Comma-separated queues (default: RUNLANE_WORKER_QUEUES or all)."
    ),
    profile: str | None = typer.Option(None, help="A worker profile of the app (a named set of queues)."),
    concurrency: int | None = typer.Option(None, min=1, help="Attempts run at once (default 1)."),
    poll_interval: str | None = typer.Option(None, help="Idle wait between claims (default 1s)."),
    lease_duration: str | None = typer.Option(None, help="Lease per attempt (default 30s)."),
    heartbeat_interval: str | None = typer.Option(
        None, help="Lease heartbeat (default a third of the lease)."
    ),
    shutdown_grace: str | None = typer.Option(
        None, help="How long in-flight attempts may finish on SIGTERM."
    ),
    with_tick: bool = typer.Option(False, "--with-tick", help="Also run maintenance ticks in this process."),
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Claim and execute due runs (storage polling); SIGTERM drains gracefully."""

    async def action(runtime: Runlane, loaded: RunlaneApp, container: RunlaneContainer) -> int:
        settings: RunlaneSettings = container.settings()
        defaults = settings.worker
        queue_names = name_list([queues]) if queues else ()
        chosen_profile = profile
        if not queue_names and not chosen_profile:
            queue_names, chosen_profile = defaults.queues, defaults.profile
        beat = heartbeat_interval or defaults.heartbeat_interval
        options = WorkerOptions(
            mode=mode,
            queue_names=queue_names,
            profile=chosen_profile,
            concurrency=concurrency or defaults.concurrency,
            poll_interval=duration_option(
                poll_interval or defaults.poll_interval, "--poll-interval"
            ).duration,
            lease_duration=duration_option(
                lease_duration or defaults.lease_duration, "--lease-duration"
            ).duration,
            heartbeat_interval=None
            if beat is None
            else duration_option(beat, "--heartbeat-interval").duration,
            max_attempt_duration=defaults.max_attempt_duration,
            shutdown_grace=duration_option(shutdown_grace or defaults.shutdown_grace, "--shutdown-grace"),
            with_tick=with_tick,
            tick_interval=duration_option(settings.tick.interval, "RUNLANE_TICK_INTERVAL"),
            tick_limit=settings.tick.limit,
            gc_tuning=defaults.gc_tuning,
        )
        return await run_worker(runtime, loaded, options, report=_stdout)

    with_runtime(common(ctx, app, config, debug), action, start=False)


def tick(
    ctx: typer.Context,
    every: str | None = typer.Option(None, help="Tick repeatedly at this interval until signalled (5s)."),
    limit: int | None = typer.Option(None, min=1, help="Per-phase bound (default RUNLANE_TICK_LIMIT, 100)."),
    json_output: bool = JSON_OPTION,
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """One maintenance pass (schedules, due retries/releases, expired leases, outbox), or a loop."""

    async def action(runtime: Runlane, _app: RunlaneApp, container: RunlaneContainer) -> int:
        bound = limit or container.settings().tick.limit
        interval = None if every is None else duration_option(every, "--every").milliseconds / 1000

        def show(result: Any) -> None:
            if json_output:
                emit_json(result.to_dict())
            elif interval is None:
                console().print(show_mapping("tick", result.to_dict()))
            else:
                counts = " ".join(f"{k}={v}" for k, v in result.to_dict().items() if v)
                _stdout(f"tick: {counts or 'nothing to do'}")

        if interval is None:
            show(await runtime.tick(limit=bound))
            return 0
        with ShutdownSignals() as signals:
            while not signals.requested.is_set():
                show(await runtime.tick(limit=bound))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(signals.wait(), timeout=interval)
        return 0

    with_runtime(common(ctx, app, config, debug), action)


def sqs_consume(
    ctx: typer.Context,
    queue: list[str] | None = typer.Option(
        None, "--queue", help="Logical queues to consume (default: all mapped)."
    ),
    app: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Long-running SQS consumers calling execute_delivery for each wakeup; SIGTERM stops gracefully."""

    async def action(runtime: Runlane, _app: RunlaneApp, container: RunlaneContainer) -> int:
        return await run_sqs_consumers(
            runtime,
            container.settings(),
            container.sqs_client(),
            container.wakeup_verifier(),
            queue_names=name_list(queue),
            report=_stdout,
        )

    with_runtime(common(ctx, app, config, debug), action, start=False)


def migrate(
    ctx: typer.Context,
    print_sql: bool = typer.Option(False, "--print", help="Print the migration SQL (for your own tooling)."),
    apply: bool = typer.Option(False, "--apply", help="Apply pending migrations to RUNLANE_DATABASE_URL."),
    schema: str | None = typer.Option(
        None, help="Schema (default: RUNLANE_DATABASE_SCHEMA, ?schema=, public)."
    ),
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """Postgres storage schema: print the SQL or apply it (re-runnable; nothing migrates at startup)."""
    if print_sql == apply:
        raise typer.BadParameter("give exactly one of --print or --apply")
    options = common(ctx, None, config, debug)

    def run() -> int:
        from runlane.infrastructure.postgres import (
            apply_postgres_storage_migrations,
            get_postgres_storage_migration_sql,
        )
        from runlane.infrastructure.postgres.connection import resolve_connection

        settings = settings_for(options)
        chosen = schema or settings.database.schema_name
        if print_sql:
            if chosen is None and settings.database.url is not None:
                chosen = resolve_connection(database_url(settings)).schema
            sys.stdout.write(get_postgres_storage_migration_sql(chosen or "public"))
            return 0
        url = database_url(settings)
        applied = asyncio.run(apply_postgres_storage_migrations(url, chosen))
        resolved = resolve_connection(url, chosen).schema
        if applied:
            _stdout(f"applied migration(s) {', '.join(map(str, applied))} to schema {resolved}")
        else:
            _stdout(f"schema {resolved} is up to date")
        return 0

    guarded(options, run)
