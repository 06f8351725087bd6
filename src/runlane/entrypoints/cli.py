"""The ``runlane`` console script."""

import asyncio

import typer
from rich.console import Console

app = typer.Typer(no_args_is_help=True, add_completion=False, help="runlane: a durable task runtime.")


@app.callback()
def root() -> None:
    """runlane: a durable task runtime."""


@app.command()
def demo(max_seconds: float = typer.Option(15.0, help="Give up after this many seconds.")) -> None:
    """Run the demo application on the local lane (every job shape, live view, final tables)."""
    from runlane.entrypoints.demo import run_demo

    code = asyncio.run(run_demo(Console(), max_seconds=max_seconds))
    raise typer.Exit(code)


def main() -> None:
    app()
