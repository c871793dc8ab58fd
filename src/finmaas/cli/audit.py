"""``finmaas audit``: read the hash-chained audit trail and check that it is whole."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated

import orjson
import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import parse_day
from finmaas.cli.render import console, echo_json, table
from finmaas.registry.audit import AuditEntry, AuditFilter

app = typer.Typer(help="The audit trail of every control-plane change.", no_args_is_help=True)


@app.command("list")
def list_entries(
    ctx: typer.Context,
    actor: Annotated[str | None, typer.Option(help="Only this actor (e.g. key:<id>).")] = None,
    action: Annotated[
        str | None, typer.Option(help="Only this action; * matches any text (alias.*).")
    ] = None,
    target: Annotated[
        str | None, typer.Option(help="Only this target; * matches any text (credit*).")
    ] = None,
    tenant: Annotated[
        str | None,
        typer.Option(help="Only this tenant's entries: those about its keys and models."),
    ] = None,
    since: Annotated[str | None, typer.Option(help="From this day (YYYY-MM-DD, UTC).")] = None,
    until: Annotated[
        str | None, typer.Option(help="Day after the last (YYYY-MM-DD, exclusive).")
    ] = None,
    limit: Annotated[
        int, typer.Option(min=1, max=10_000, help="Show the newest LIMIT entries.")
    ] = 100,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """List audit entries, oldest first: who, what, when, from where, before → after."""
    first, last = parse_day(since, "--since"), parse_day(until, "--until")
    entries = cli_context(ctx).control.audit_entries(
        AuditFilter(
            actor=actor,
            action=action,
            target=target,
            tenant=tenant,
            since=_midnight(first) if first else None,
            until=_midnight(last) if last else None,
            limit=limit,
        )
    )
    if as_json:
        echo_json([{**entry.__dict__, "at": entry.at.isoformat()} for entry in entries])
        return
    if not entries:
        typer.echo("no audit entries for this selection")
        return
    out = table("id", "at (UTC)", "actor", "tenant", "from", "action", "target", "change")
    for entry in entries:
        out.add_row(
            str(entry.id),
            entry.at.strftime("%Y-%m-%d %H:%M:%S"),
            entry.actor,
            entry.tenant,
            entry.origin,
            entry.action,
            entry.target,
            _change(entry),
        )
    console.print(out, markup=False)


@app.command()
def verify(ctx: typer.Context) -> None:
    """Recompute the hash chain; exit 1 if any entry was edited, deleted or reordered."""
    report = cli_context(ctx).control.verify_audit()
    if report.ok:
        typer.echo(f"audit trail intact: {report.checked} entries checked")
        return
    typer.echo(f"audit trail broken: {report.problem}", err=True)
    raise typer.Exit(1)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _change(entry: AuditEntry) -> str:
    before = "" if entry.before is None else orjson.dumps(entry.before).decode()
    after = "" if entry.after is None else orjson.dumps(entry.after).decode()
    return f"{before} → {after}" if before else after
