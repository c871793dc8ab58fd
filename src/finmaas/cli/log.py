"""``finmaas log export``: a model's prediction log, as one file for offline validation."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import orjson
import pandas as pd
import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import parse_day
from finmaas.errors import Invalid
from finmaas.monitoring.predictions import log_files, read_log, unfinished_files

app = typer.Typer(help="The prediction log (sampled inputs and outputs).", no_args_is_help=True)


@app.command()
def export(
    ctx: typer.Context,
    name: Annotated[str, typer.Argument(help="Model name.")],
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write.")],
    version: Annotated[
        str | None, typer.Option("--version", "-v", help="Only this version (number or alias).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="First day (YYYY-MM-DD, UTC).")] = None,
    until: Annotated[
        str | None, typer.Option(help="Day after the last (YYYY-MM-DD, exclusive).")
    ] = None,
    file_format: Annotated[
        Literal["jsonl", "csv"],
        typer.Option(
            "--format", help="jsonl: the lines as logged; csv: one column per input and output."
        ),
    ] = "jsonl",
    force: Annotated[bool, typer.Option("--force", help="Overwrite OUTPUT.")] = False,
) -> None:
    """Write a model's logged rows, in time order, to one file."""
    state = cli_context(ctx)
    registry = state.registry
    registry.get_model(name)  # an unknown model is an error, not an empty file
    number = None
    if version is not None:
        number = registry.get_version(name, int(version) if version.isdigit() else version).version
    first, end = parse_day(since, "--since"), parse_day(until, "--until")
    if first is not None and end is not None and end <= first:
        raise Invalid("--until must be after --since")
    if output.exists() and not force:
        raise Invalid(f"{str(output)!r} exists; pass --force to overwrite it")
    root = state.settings.home / "predictions"
    files = log_files(root, name, first, end)
    rows = read_log(files, number)
    if file_format == "csv":
        count = _write_csv(output, list(rows))
    else:
        count = 0
        with output.open("wb") as out:
            for row in rows:
                out.write(orjson.dumps(row) + b"\n")
                count += 1
    typer.echo(f"exported {count} logged row(s) of {name} from {len(files)} file(s) to {output}")
    open_files = unfinished_files(root, name, first, end)
    if open_files:
        typer.echo(
            f"left out {len(open_files)} Parquet file(s) still being written: a server closes "
            "its files every prediction_log_rotate_seconds and when it stops (a file of a "
            "worker that died without stopping stays unreadable)",
            err=True,
        )


def _write_csv(output: Path, rows: list[dict[str, object]]) -> int:
    frame = pd.json_normalize(rows) if rows else pd.DataFrame()
    frame.to_csv(output, index=False)
    return len(frame)
