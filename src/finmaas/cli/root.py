"""The ``finmaas`` command line: the root options and the table of commands.

A command's module is imported only when that command runs (or ``--help`` lists
it, see :mod:`finmaas.cli.commands`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic import SecretStr

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
    server: Annotated[
        str | None,
        typer.Option(
            help="Act through this server's /api with a key instead of on the local "
            "database (env FINMAAS_SERVER)."
        ),
    ] = None,
    api_key: Annotated[
        str | None,
        typer.Option(
            help="The key for --server. Prefer env FINMAAS_API_KEY: a key on the command "
            "line is visible to other users of this machine (ps)."
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
    from finmaas.config import RemoteSettings, Settings  # pydantic-settings: not for --help

    settings = Settings(**{k: v for k, v in overrides.items() if v is not None})
    remote = RemoteSettings() if server is None else RemoteSettings(server=server)
    if api_key is not None:
        typer.echo(
            "warning: --api-key is visible to other users of this machine (ps); "
            "prefer the FINMAAS_API_KEY environment variable",
            err=True,
        )
    if api_key is not None and remote.server is None:
        from finmaas.errors import Invalid

        raise Invalid("--api-key needs --server URL (or FINMAAS_SERVER): the key is for a server")
    key = api_key if api_key is not None else remote.api_key
    state = CliContext(
        settings=settings,
        debug=debug,
        server=remote.server,
        api_key=key.get_secret_value() if isinstance(key, SecretStr) else key,
    )
    ctx.obj = state
    ctx.call_on_close(state.close)
