"""``finmaas train credit``: a CSV or Parquet file to registered, documented versions."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, get_args

import typer

from finmaas.cli.context import cli_context
from finmaas.cli.files import read_file
from finmaas.cli.render import console, metric, progress_steps, table
from finmaas.errors import Invalid
from finmaas.schema import signature_from_json
from finmaas.training.credit import CANDIDATES
from finmaas.training.metrics import CostMatrix
from finmaas.training.neural import NetworkSettings, Optimizer
from finmaas.training.runs import STAGING, CreditRun, SelectionMetric, train_credit

app = typer.Typer(help="Train models from data files with finance templates.", no_args_is_help=True)

SHOWN = {"auc": "AUC", "ks": "KS", "brier": "Brier", "expected_cost": "cost/applicant"}


@app.command()
def credit(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="CSV or Parquet file, one row per applicant.")],
    target: Annotated[str, typer.Option(help="Column of the outcome (two classes).")],
    name: Annotated[str, typer.Option(help="Model to register the versions under.")] = (
        "credit-model"
    ),
    positive: Annotated[
        str | None,
        typer.Option(help="The adverse class, whose probability is served (default: bad or 1)."),
    ] = None,
    signature: Annotated[
        Path | None, typer.Option(help="Signature JSON declaring the inputs (default: inferred).")
    ] = None,
    pii: Annotated[list[str] | None, typer.Option(help="Column holding personal data.")] = None,
    drop: Annotated[list[str] | None, typer.Option(help="Column not to train on.")] = None,
    protected: Annotated[
        list[str] | None, typer.Option(help="Column to report fairness across (repeatable).")
    ] = None,
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    repeats: Annotated[int, typer.Option(help="Times the folds are reshuffled.")] = 2,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same models).")] = 42,
    select: Annotated[str, typer.Option(help="Metric that picks the staging candidate.")] = "auc",
    cost_accept_bad: Annotated[
        float, typer.Option(help="Cost of accepting an applicant who turns bad.")
    ] = 5.0,
    cost_reject_good: Annotated[
        float, typer.Option(help="Cost of rejecting an applicant who would be good.")
    ] = 1.0,
    candidate: Annotated[
        list[str] | None,
        typer.Option(
            help=f"Candidate to train (repeatable; default all: {', '.join(CANDIDATES)})."
        ),
    ] = None,
    optimizer: Annotated[str, typer.Option(help="The network's optimizer: adam or sgd.")] = "adam",
    hidden: Annotated[int, typer.Option(help="The network's hidden units.")] = 32,
    description: Annotated[str, typer.Option(help="What the model predicts.")] = "",
) -> None:
    """Cross-validate LightGBM, a scorecard and a neural network; register each as a version;
    give the best the staging alias."""
    state = cli_context(ctx)
    if select not in get_args(SelectionMetric):
        raise Invalid(
            f"--select must be one of {', '.join(get_args(SelectionMetric))}, got {select!r}"
        )
    kinds = tuple(candidate or CANDIDATES)
    for kind in kinds:
        if kind not in CANDIDATES:
            raise Invalid(f"--candidate must be one of {', '.join(CANDIDATES)}, got {kind!r}")
    if optimizer not in get_args(Optimizer):
        raise Invalid(f"--optimizer must be adam or sgd, got {optimizer!r}")
    run = CreditRun(
        data=data,
        target=target,
        name=name,
        positive=positive,
        signature=signature_from_json(read_file(signature, "signature")) if signature else None,
        pii=tuple(pii or ()),
        drop=tuple(drop or ()),
        protected=tuple(protected or ()),
        folds=folds,
        repeats=repeats,
        seed=seed,
        select=select,  # type: ignore[arg-type]  # checked above
        costs=CostMatrix(accept_bad=cost_accept_bad, reject_good=cost_reject_good),
        candidates=kinds,  # type: ignore[arg-type]  # checked above
        network=NetworkSettings(optimizer=optimizer, hidden=hidden),  # type: ignore[arg-type]
        description=description,
    )
    with progress_steps(f"train credit: {data.name}") as step:
        trained = train_credit(
            run,
            state.registry,
            state.store,
            actor=state.actor,
            max_bytes=state.settings.max_upload_bytes,
            progress=step,
        )
    cv = trained[0].version.params.get("cv", "")
    out = table("version", "candidate", *SHOWN.values(), title=f"{name}: {cv} CV, mean ± sd")
    for result in trained:
        metrics = result.version.metrics
        star = " ★" if result.selected else ""
        out.add_row(
            f"{result.version.version}{star}",
            result.candidate,
            *(f"{metric(metrics.get(key))} ± {metric(metrics.get(f'{key}_sd'))}" for key in SHOWN),
        )
    console.print(out)
    reject_all = trained[0].version.metrics.get("reject_all_cost")
    console.print(
        f"cost/applicant at the cost-optimal cut-off ({cost_accept_bad:g}:{cost_reject_good:g}); "
        f"rejecting everyone costs {metric(reject_all)}"
    )
    chosen = next(r for r in trained if r.selected)
    console.print(f"{STAGING} → {name} version {chosen.version.version} (best CV {select})")
    console.print(f"model cards: finmaas models card {name} --version N", markup=False)
