"""``finmaas drift``: how far the served population has moved from a version's reference."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import parse_day
from finmaas.cli.render import console, echo_json, table
from finmaas.monitoring.report import window_dates

_STYLE = {"stable": "green", "watch": "yellow", "alert": "bold red"}


def drift(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    version: Annotated[
        str, typer.Option("--version", "-v", help="A version number or an alias.")
    ] = "production",
    window: Annotated[
        str | None, typer.Option(help="The last N days, like 7d (default), up to 366d.")
    ] = None,
    since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD, UTC).")] = None,
    until: Annotated[
        str | None, typer.Option(help="Day after the last (YYYY-MM-DD, exclusive).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """PSI of the score and CSI of every input over a window of served rows."""
    control = cli_context(ctx).control
    found = control.get_version(name, int(version) if version.isdigit() else version)
    first, end = window_dates(
        window, parse_day(since, "--since"), parse_day(until, "--until"), control.now().date()
    )
    report = control.drift(found, first, end)
    if as_json:
        echo_json(report)
        return
    console.print(
        f"[bold]{found.ref}[/bold]: {report['rows']} served rows from {report['since']} "
        f"to {report['until']} (exclusive)"
    )
    if not report["rows"]:
        console.print("no rows served in this window")
        return
    if report["note"] is not None:
        console.print(report["note"], markup=False)
        return
    out = table("input", "index", "band", "p-value", "rows")
    for entry in ([report["score"]] if report["score"] else []) + report["features"]:
        out.add_row(
            "score (PSI)" if entry["name"] == "__score__" else entry["name"],
            _number(entry["index"]),
            _band(entry["band"]),
            _number(entry["p_value"], "{:.3g}"),
            str(entry["rows"]),
        )
    console.print(out)
    limits = report["thresholds"]
    console.print(
        f"bands: < {limits['watch']} stable, {limits['watch']}-{limits['alert']} watch, "
        f"≥ {limits['alert']} alert; a small p-value says a shift is not chance"
    )


def _number(value: Any, pattern: str = "{:.4f}") -> str:
    return "—" if value is None else pattern.format(value)


def _band(band: str | None) -> str:
    return "—" if band is None else f"[{_STYLE[band]}]{band}[/{_STYLE[band]}]"
