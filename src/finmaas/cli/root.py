"""The ``finmaas`` command line: the root options and the table of commands.

A command's module is imported only when that command runs (or ``--help`` lists
it, see :mod:`finmaas.cli.commands`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from finmaas import __version__
from finmaas.cli.commands import LazyCommands

app = typer.Typer(
    name="finmaas",
    help="Self-hosted Model-as-a-Service for financial models.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    cls=LazyCommands,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"finmaas {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    home: Annotated[
        Path | None, typer.Option(help="Home folder (default ~/.finmaas; env FINMAAS_HOME).")
    ] = None,
    database_url: Annotated[
        str | None,
        typer.Option(
            help="Metadata database URL (default SQLite in the home; env FINMAAS_DATABASE_URL)."
        ),
    ] = None,
    artifacts_dir: Annotated[
        Path | None,
        typer.Option(
            help="Artifact store folder (default <home>/artifacts; env FINMAAS_ARTIFACTS_DIR)."
        ),
    ] = None,
    debug: Annotated[bool, typer.Option(help="Show tracebacks of errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version.")
    ] = False,
) -> None:
    overrides: dict[str, Any] = {
        "home": home,
        "database_url": database_url,
        "artifacts_dir": artifacts_dir,
    }
    from finmaas.cli.context import CliContext  # the registry, for a command that runs
    from finmaas.config import Settings  # pydantic-settings: not for --help or --version

    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    state = CliContext(settings=settings, debug=debug)
    ctx.obj = state
    ctx.call_on_close(state.close)
