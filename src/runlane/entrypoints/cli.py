"""The ``runlane`` console script: demo, worker, tick, sqs-consume, migrate, trigger and operator commands.

Every runtime-backed command loads ``RunlaneSettings``, builds the container for the configured
lane and the app given by ``--app``/``RUNLANE_APP``, and releases everything on exit. Common
options may come before the command (``runlane --app jobs:app worker``) or after it.
"""

import asyncio
from pathlib import Path

import typer
from rich.console import Console

from runlane.entrypoints.cli_process import migrate, sqs_consume, tick, worker
from runlane.entrypoints.cli_runs import idempotency_app, runs_app, trigger
from runlane.entrypoints.cli_support import APP_OPTION, CONFIG_OPTION, DEBUG_OPTION, CommonOptions

app = typer.Typer(
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    help="runlane: a durable task runtime.",
)


@app.callback()
def root(
    ctx: typer.Context,
    app_reference: str | None = APP_OPTION,
    config: Path | None = CONFIG_OPTION,
    debug: bool = DEBUG_OPTION,
) -> None:
    """runlane: a durable task runtime."""
    ctx.obj = CommonOptions(app=app_reference, config=config, debug=debug)


@app.command()
def demo(max_seconds: float = typer.Option(15.0, help="Give up after this many seconds.")) -> None:
    """Run the demo application on the local lane (every job shape, live view, final tables)."""
    from runlane.entrypoints.demo import run_demo

    code = asyncio.run(run_demo(Console(), max_seconds=max_seconds))
    raise typer.Exit(code)


app.command()(worker)
app.command()(tick)
app.command("sqs-consume")(sqs_consume)
app.command()(migrate)
app.command()(trigger)
app.add_typer(runs_app, name="runs")
app.add_typer(idempotency_app, name="idempotency")


def main() -> None:
    app()
