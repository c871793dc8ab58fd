"""``finmaas decisions``: find a served decision again, and purge records past retention."""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from finmaas.cli.context import cli_context
from finmaas.cli.render import console, echo_json, table
from finmaas.monitoring.decision_records import DecisionStore

app = typer.Typer(help="Decision records of decision models.", no_args_is_help=True)


@app.command()
def show(
    ctx: typer.Context,
    request_id: Annotated[str, typer.Argument(help="The X-Request-ID of the request.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A request's decisions: probability, decision, reason codes, and how they were explained."""
    report = cli_context(ctx).control.decision_report(request_id)
    if as_json:
        echo_json(report)
        return
    for decision in report["decisions"]:
        alias = f" ({decision['alias']})" if decision["alias"] else ""
        output = "value" if "value" in decision else "probability"
        console.print(
            f"[bold]{decision['model']}@{decision['version']}{alias}[/bold] row "
            f"{decision['row']} at {decision['recorded_at']}: [bold]{decision['decision']}"
            f"[/bold], {output} {decision[output]:.4f}",
            highlight=False,
        )
        console.print(
            f"  subject {decision['subject'] or '—'}, key {decision['key_id'] or '—'}, "
            f"tenant {decision['tenant']}",
            highlight=False,
        )
        reasons = decision["reasons"]
        if reasons is None:
            console.print("  no explanation was asked for", highlight=False)
            continue
        out = table("reason", "contribution", "probability effect")
        for reason in reasons:
            effect = reason.get("probability_effect")
            out.add_row(
                reason["text"],
                f"{reason['contribution']:+.4f}",
                "—" if effect is None else f"{effect:+.3f}",
            )
        console.print(out)
    for ref, explanation in report["explanations"].items():
        if explanation is not None:
            console.print(
                f"{ref} explains with {explanation['method']} against the "
                f"{explanation['reference']} reference (base value "
                f"{explanation['base_value']:.4f})",
                highlight=False,
            )


@app.command()
def purge(
    ctx: typer.Context,
    older_than: Annotated[
        int | None,
        typer.Option(
            min=1, help="Days to keep; default the decision_retention_days setting (183)."
        ),
    ] = None,
    yes: Annotated[bool, typer.Option("--yes", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete decision records older than the retention period (audited)."""
    state = cli_context(ctx)
    days = older_than or state.settings.decision_retention_days
    before = state.registry.now() - timedelta(days=days)
    if not yes:
        typer.confirm(
            f"delete decision records from before {before:%Y-%m-%d %H:%M} UTC?", abort=True
        )
    deleted = DecisionStore(state.registry).purge(before, actor=state.actor)
    typer.echo(f"purged {deleted} decision record(s) older than {days} days")
