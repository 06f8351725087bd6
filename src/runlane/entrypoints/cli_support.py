"""What every ``runlane`` command shares: common options, settings, the container, and exit codes.

Exit codes: 0 ok; 1 a ``RunlaneError`` (``error [<code>]: <message>`` on stderr); 2 usage errors
(typer's); 70 anything unexpected (one line, the traceback only with ``--debug``); 130 a second
signal or Ctrl-C.
"""

import asyncio
import sys
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

import click
import typer

from runlane.application.app_definition import RunlaneApp
from runlane.application.runtime import Runlane
from runlane.domain.errors import RunlaneError
from runlane.entrypoints.container import RunlaneContainer, build_container
from runlane.entrypoints.logging_setup import configure_logging
from runlane.entrypoints.settings import RunlaneSettings
from runlane.entrypoints.settings_loading import load_settings, one_line

EXIT_OK = 0
EXIT_RUNLANE_ERROR = 1
EXIT_UNEXPECTED = 70
EXIT_INTERRUPTED = 130

APP_OPTION = typer.Option(
    None, "--app", help="The RunlaneApp as module:attribute (default: RUNLANE_APP).", show_default=False
)
CONFIG_OPTION = typer.Option(
    None,
    "--config",
    help="A TOML settings file (default: RUNLANE_CONFIG).",
    show_default=False,
    dir_okay=False,
)
DEBUG_OPTION = typer.Option(False, "--debug", help="Print tracebacks of unexpected errors.")
JSON_OPTION = typer.Option(False, "--json", help="Print machine-parseable JSON on stdout.")


@dataclass(frozen=True, slots=True)
class CommonOptions:
    app: str | None
    config: Path | None
    debug: bool


def common(ctx: typer.Context, app: str | None, config: Path | None, debug: bool) -> CommonOptions:
    """Per-command values win over the ones given before the command (``runlane --app x worker``)."""
    root = ctx.find_root().obj if ctx.find_root().obj is not None else CommonOptions(None, None, False)
    assert isinstance(root, CommonOptions)
    return CommonOptions(app=app or root.app, config=config or root.config, debug=debug or root.debug)


def fail(message: str, *, code: int = EXIT_RUNLANE_ERROR) -> NoReturn:
    sys.stderr.write(f"{one_line(message)}\n")
    raise typer.Exit(code)


def guarded(options: CommonOptions, action: Callable[[], int | None]) -> NoReturn:
    """Run ``action`` and turn its outcome into an exit code; never let a traceback escape by default."""
    try:
        code = action() or EXIT_OK
    except (typer.Exit, click.exceptions.Exit, click.exceptions.Abort, click.UsageError):
        raise
    except RunlaneError as exc:
        fail(f"error [{exc.code.value}]: {exc.message}")
    except KeyboardInterrupt:
        fail("interrupted", code=EXIT_INTERRUPTED)
    except Exception as exc:
        if options.debug:
            traceback.print_exc(file=sys.stderr)
            fail(f"error: unexpected {type(exc).__name__}: {exc}", code=EXIT_UNEXPECTED)
        fail(
            f"error: unexpected {type(exc).__name__}: {exc} (run with --debug for the traceback)",
            code=EXIT_UNEXPECTED,
        )
    raise typer.Exit(code)


def settings_for(options: CommonOptions) -> RunlaneSettings:
    settings = load_settings(config_file=options.config, app=options.app)
    configure_logging(settings.log)
    return settings


RuntimeAction = Callable[[Runlane, RunlaneApp, RunlaneContainer], Awaitable[int | None]]


def with_runtime(options: CommonOptions, action: RuntimeAction, *, start: bool = True) -> NoReturn:
    """Load settings, build the container and runtime, run ``action``, always release resources."""

    def run() -> int | None:
        settings = settings_for(options)
        container = build_container(settings)
        try:
            return asyncio.run(_run(container, action, start=start))
        finally:
            container.shutdown_resources()

    guarded(options, run)


async def _run(container: RunlaneContainer, action: RuntimeAction, *, start: bool) -> int | None:
    runtime = container.runtime()
    app = container.app()
    if not start:
        return await action(runtime, app, container)
    async with runtime:
        return await action(runtime, app, container)
