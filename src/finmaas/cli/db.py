"""``finmaas db``: schema migrations of the metadata store."""

from __future__ import annotations

import typer

from finmaas.cli.context import cli_context
from finmaas.registry.database import create_engine, safe_url
from finmaas.registry.migrate import current_revision, head_revision
from finmaas.registry.migrate import upgrade as run_upgrade

app = typer.Typer(help="Metadata database: migrations.", no_args_is_help=True)


@app.command()
def upgrade(ctx: typer.Context) -> None:
    """Bring the database schema to the version this finmaas needs."""
    settings = cli_context(ctx).settings
    engine = create_engine(
        settings.resolved_database_url,
        busy_timeout=settings.db_busy_timeout,
        connect_timeout=settings.db_connect_timeout,
    )
    try:
        before = run_upgrade(engine)
        after = current_revision(engine)
    finally:
        engine.dispose()
    where = safe_url(engine.url)
    if before == after:
        typer.echo(f"{where}: already at revision {after}")
    else:
        typer.echo(f"{where}: upgraded from {before or 'empty'} to {after}")


@app.command()
def current(ctx: typer.Context) -> None:
    """Show the schema revision of the database and the one this finmaas needs."""
    settings = cli_context(ctx).settings
    engine = create_engine(
        settings.resolved_database_url, connect_timeout=settings.db_connect_timeout
    )
    try:
        revision = current_revision(engine)
    finally:
        engine.dispose()
    typer.echo(f"{safe_url(engine.url)}: at {revision or 'empty'}, finmaas needs {head_revision()}")
