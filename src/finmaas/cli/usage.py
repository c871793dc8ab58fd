"""``finmaas usage``: metered requests and rows per key × model × version × day."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import parse_day
from finmaas.cli.render import console, echo_json, table
from finmaas.registry.usage import usage_csv, usage_report


def usage(
    ctx: typer.Context,
    since: Annotated[
        str | None, typer.Option(help="First day (YYYY-MM-DD, UTC); default: all.")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Day after the last (YYYY-MM-DD, exclusive).")
    ] = None,
    key: Annotated[str | None, typer.Option(help="Only this key id.")] = None,
    model: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    tenant: Annotated[str | None, typer.Option(help="Only this tenant.")] = None,
    csv_file: Annotated[
        Path | None,
        typer.Option("--csv", help="Write the billing CSV to this file ('-' for stdout)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Report usage; a running server flushes its counts at least every 5 s and on shutdown."""
    rows = cli_context(ctx).control.usage(
        tenant=tenant,
        key_id=key,
        model=model,
        since=parse_day(since, "--since"),
        until=parse_day(until, "--until"),
    )
    if csv_file is not None:
        text = usage_csv(rows)
        if str(csv_file) == "-":
            typer.echo(text, nl=False)
        else:
            csv_file.write_text(text)
            typer.echo(f"wrote {len(rows)} row(s) to {csv_file}")
        return
    if as_json:
        echo_json(usage_report(rows))
        return
    if not rows:
        typer.echo("no usage recorded for this selection")
        return
    out = table("day", "tenant", "key", "model", "version", "requests", "rows", "errors", "mean ms")
    for row in rows:
        mean = row.latency_us / row.requests / 1000 if row.requests else 0.0
        out.add_row(
            row.day.isoformat(),
            row.tenant,
            row.key_id,
            row.model,
            str(row.version),
            str(row.requests),
            str(row.rows),
            str(row.errors),
            f"{mean:.2f}",
        )
    console.print(out)
    totals = usage_report(rows)["totals"]
    typer.echo(
        f"total: {totals['requests']} requests, {totals['rows']} rows, {totals['errors']} errors"
    )
