"""``finmaas signature``: write a signature file from a CSV sample."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import read_csv
from finmaas.errors import Invalid
from finmaas.schema import infer_signature
from finmaas.schema.signature import Task, missing_positive_class

if TYPE_CHECKING:
    import pandas as pd

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
        str | None,
        typer.Option(
            help="Comma-separated class labels in the model's order (its label 0 first); "
            "for binary the positive class is the second."
        ),
    ] = None,
    positive_class: Annotated[
        str | None,
        typer.Option(
            help="Binary: the class whose probability the model returns (for credit the "
            "adverse one, e.g. bad). Required."
        ),
    ] = None,
    pii: Annotated[
        list[str] | None, typer.Option(help="A column holding personal data; repeatable.")
    ] = None,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of standard output.")
    ] = None,
) -> None:
    """Infer a signature from a CSV sample (text columns become categories).

    With --target the classes are the column's values, sorted, except that the
    --positive-class goes last; --classes gives them in the model's order.
    """
    cli_context(ctx)
    if task not in ("binary", "multiclass", "regression"):
        raise Invalid(f"--task must be binary, multiclass or regression, got {task!r}")
    if task == "binary" and positive_class is None:
        raise Invalid(missing_positive_class("pass --positive-class"))
    if task != "binary" and positive_class is not None:
        raise Invalid(f"--positive-class is for binary tasks, not {task}")
    frame = read_csv(data, "data")
    labels: tuple[str, ...] | None = None
    if target is not None:
        if target not in frame.columns:
            raise Invalid(f"--target column {target!r} is not in {data.name}")
        if task != "regression":
            labels = _target_classes(frame[target], target, positive_class)
        frame = frame.drop(columns=[target])
    if classes is not None:
        labels = tuple(label.strip() for label in classes.split(","))
    if task != "regression" and labels is None:
        raise Invalid(f"a {task} signature needs its classes: pass --classes or --target")
    task_name: Task = task  # type: ignore[assignment]
    signature = infer_signature(
        frame, task=task_name, classes=labels, positive_class=positive_class, pii=pii or ()
    )
    text = signature.to_json()
    if output is None:
        typer.echo(text.decode())
    else:
        output.write_bytes(text + b"\n")
        positive = f", positive class {positive_class}" if positive_class is not None else ""
        typer.echo(f"wrote {output} ({len(signature.inputs)} inputs, task {task}{positive})")


def _target_classes(values: pd.Series, target: str, positive_class: str | None) -> tuple[str, ...]:
    """The target's values, sorted, with the positive class moved last."""
    labels = sorted({str(v) for v in values.dropna().unique()})
    if positive_class is None:
        return tuple(labels)
    if positive_class not in labels:
        shown = ", ".join(repr(label) for label in labels[:10])
        raise Invalid(
            f"--positive-class {positive_class!r} is not a value of --target column "
            f"{target!r} (its values: {shown})"
        )
    return (*(label for label in labels if label != positive_class), positive_class)
