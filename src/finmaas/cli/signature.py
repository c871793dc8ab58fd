"""``finmaas signature``: write a signature file from a CSV sample."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import read_csv
from finmaas.errors import Invalid
from finmaas.schema import infer_signature
from finmaas.schema.signature import Task

app = typer.Typer(help="Model signatures: the inputs a model reads.", no_args_is_help=True)


@app.command()
def infer(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="CSV sample of the model's inputs.")],
    task: Annotated[str, typer.Option(help="binary, multiclass or regression.")],
    target: Annotated[
        str | None, typer.Option(help="Target column: dropped, and its values give the classes.")
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="Comma-separated class labels, positive class last.")
    ] = None,
    pii: Annotated[
        list[str] | None, typer.Option(help="A column holding personal data; repeatable.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Infer a signature from a CSV sample (text columns become categories)."""
    cli_context(ctx)
    if task not in ("binary", "multiclass", "regression"):
        raise Invalid(f"--task must be binary, multiclass or regression, got {task!r}")
    frame = read_csv(data, "data")
    labels: tuple[str, ...] | None = None
    if target is not None:
        if target not in frame.columns:
            raise Invalid(f"--target column {target!r} is not in {data.name}")
        if task != "regression":
            labels = tuple(sorted(str(v) for v in frame[target].dropna().unique()))
        frame = frame.drop(columns=[target])
    if classes is not None:
        labels = tuple(label.strip() for label in classes.split(","))
    if task != "regression" and labels is None:
        raise Invalid(f"a {task} signature needs its classes: pass --classes or --target")
    task_name: Task = task  # type: ignore[assignment]
    signature = infer_signature(frame, task=task_name, classes=labels, pii=pii or ())
    text = signature.to_json()
    if output is None:
        typer.echo(text.decode())
    else:
        output.write_bytes(text + b"\n")
        typer.echo(f"wrote {output} ({len(signature.inputs)} inputs, task {task})")
