"""``finmaas train credit|forecast|sentiment``: a CSV or Parquet file to registered,
documented versions."""

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
from finmaas.training.forecast import TARGETS
from finmaas.training.forecast_runs import ForecastRun, train_forecast
from finmaas.training.metrics import CostMatrix
from finmaas.training.neural import NetworkSettings, Optimizer
from finmaas.training.runs import STAGING, CreditRun, SelectionMetric, train_credit
from finmaas.training.sentiment_runs import SentimentRun, train_sentiment

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


@app.command()
def forecast(
    ctx: typer.Context,
    data: Annotated[
        Path, typer.Option(help="OHLCV CSV or Parquet: Date, Open, High, Low, Close, Volume.")
    ],
    name: Annotated[str, typer.Option(help="Model to register the version under.")] = "forecast",
    target: Annotated[str, typer.Option(help="direction (up or down) or return.")] = "direction",
    date_column: Annotated[str, typer.Option(help="Column of the dates.")] = "Date",
    lags: Annotated[int, typer.Option(help="Lagged returns as features.")] = 5,
    initial: Annotated[int, typer.Option(help="Rows of the first training window.")] = 500,
    step: Annotated[int, typer.Option(help="Rows predicted before each refit.")] = 20,
    description: Annotated[str, typer.Option(help="What the model predicts.")] = "",
) -> None:
    """Evaluate a next-period forecast walk-forward beside naive baselines; register it,
    staged only if it beats them."""
    state = cli_context(ctx)
    if target not in TARGETS:
        raise Invalid(f"--target must be direction or return, got {target!r}")
    run = ForecastRun(
        data=data,
        name=name,
        target=target,
        date_column=date_column,
        lags=lags,
        initial=initial,
        step=step,
        description=description,
    )
    with progress_steps(f"train forecast: {data.name}") as step_done:
        result = train_forecast(
            run,
            state.registry,
            state.store,
            actor=state.actor,
            max_bytes=state.settings.max_upload_bytes,
            progress=step_done,
        )
    report = result.report
    out = table(
        "predictor",
        *report.model,
        title=f"{name} version {result.version.version}: walk-forward over "
        f"{report.test_rows:,} periods ({report.first_test_date} to {report.last_test_date})",
    )
    out.add_row("model", *(metric(v) for v in report.model.values()))
    for baseline, values in report.baselines.items():
        out.add_row(baseline, *(metric(values.get(key)) for key in report.model))
    console.print(out)
    console.print(
        f"{STAGING} → {name} version {result.version.version}"
        if result.staged
        else f"not staged: the edge of version {result.version.version} over the baselines "
        "could be noise"
    )


@app.command()
def sentiment(
    ctx: typer.Context,
    data: Annotated[Path, typer.Option(help="CSV or Parquet of labelled texts.")],
    name: Annotated[str, typer.Option(help="Model to register the version under.")] = "sentiment",
    text: Annotated[str, typer.Option(help="Column of the texts.")] = "text",
    label: Annotated[str, typer.Option(help="Column of the labels.")] = "label",
    folds: Annotated[int, typer.Option(help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    description: Annotated[str, typer.Option(help="What the model tells.")] = "",
) -> None:
    """Cross-validate the TF-IDF + logistic baseline on labelled texts and register it."""
    state = cli_context(ctx)
    run = SentimentRun(
        data=data,
        name=name,
        text=text,
        label=label,
        folds=folds,
        seed=seed,
        description=description,
    )
    with progress_steps(f"train sentiment: {data.name}") as step_done:
        result = train_sentiment(
            run,
            state.registry,
            state.store,
            actor=state.actor,
            max_bytes=state.settings.max_upload_bytes,
            progress=step_done,
        )
    report = result.report
    out = table(
        "class",
        "precision",
        "recall",
        "F1",
        "texts",
        title=f"{name} version {result.version.version}: macro-F1 "
        f"{report.macro_f1:.3f} ± {report.macro_f1_sd:.3f} ({report.folds}-fold), "
        f"majority floor {report.majority_macro_f1:.3f}",
    )
    for label_name, values in report.per_class.items():
        out.add_row(
            label_name,
            metric(values["precision"]),
            metric(values["recall"]),
            metric(values["f1-score"]),
            str(values["support"]),
        )
    console.print(out)
    console.print(
        f"{STAGING} → {name} version {result.version.version}"
        if result.staged
        else f"not staged: version {result.version.version} is no better than the floor"
    )
