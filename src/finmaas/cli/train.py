"""``finmaas train credit|forecast|sentiment``: a CSV or Parquet file to registered,
documented versions, as a training job; ``finmaas jobs``: list, show and attach.

Each command checks its options, records a job and starts its worker process
(:mod:`finmaas.jobs.runner`), then follows it with a progress bar until it
ends. ``--detach`` returns at once with the job id; Ctrl-C while following
detaches too. The job keeps running either way: ``finmaas jobs attach ID``
follows it again.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any, get_args

import orjson
import typer

from finmaas.cli.context import cli_context
from finmaas.cli.control import ControlPlane
from finmaas.cli.files import read_file
from finmaas.cli.render import console, echo_json, metric, progress_steps, table, when
from finmaas.errors import Invalid
from finmaas.jobs.runner import Job
from finmaas.training.credit import CANDIDATES
from finmaas.training.forecast import TARGETS
from finmaas.training.neural import Optimizer
from finmaas.training.runs import STAGING, SelectionMetric

app = typer.Typer(help="Train models from data files with finance templates.", no_args_is_help=True)
jobs_app = typer.Typer(help="Training jobs: list, show, attach.", no_args_is_help=True)

POLL_SECONDS = 0.3
DetachOption = Annotated[
    bool, typer.Option("--detach", help="Start the job and return its id without following it.")
]


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
    hidden: Annotated[int, typer.Option(help="The network's units per hidden layer.")] = 32,
    depth: Annotated[int, typer.Option(help="The network's hidden layers.")] = 1,
    description: Annotated[str, typer.Option(help="What the model predicts.")] = "",
    detach: DetachOption = False,
) -> None:
    """Cross-validate LightGBM, a scorecard and a neural network; register each as a version;
    give the best the staging alias."""
    if select not in get_args(SelectionMetric):
        raise Invalid(
            f"--select must be one of {', '.join(get_args(SelectionMetric))}, got {select!r}"
        )
    for kind in candidate or ():
        if kind not in CANDIDATES:
            raise Invalid(f"--candidate must be one of {', '.join(CANDIDATES)}, got {kind!r}")
    if optimizer not in get_args(Optimizer):
        raise Invalid(f"--optimizer must be adam or sgd, got {optimizer!r}")
    options: dict[str, Any] = {
        "data": str(data.resolve()),
        "target": target,
        "name": name,
        "positive": positive,
        "signature": orjson.loads(read_file(signature, "signature")) if signature else None,
        "pii": list(pii or ()),
        "drop": list(drop or ()),
        "protected": list(protected or ()),
        "folds": folds,
        "repeats": repeats,
        "seed": seed,
        "select": select,
        "costs": {"accept_bad": cost_accept_bad, "reject_good": cost_reject_good},
        "candidates": list(candidate or CANDIDATES),
        "network": {"optimizer": optimizer, "hidden": hidden, "depth": depth},
        "description": description,
    }
    start_job(ctx, "credit", options, detach)


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
    detach: DetachOption = False,
) -> None:
    """Evaluate a next-period forecast walk-forward beside naive baselines; register it,
    staged only if its edge over them is significant."""
    if target not in TARGETS:
        raise Invalid(f"--target must be direction or return, got {target!r}")
    options = {
        "data": str(data.resolve()),
        "name": name,
        "target": target,
        "date_column": date_column,
        "lags": lags,
        "initial": initial,
        "step": step,
        "description": description,
    }
    start_job(ctx, "forecast", options, detach)


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
    detach: DetachOption = False,
) -> None:
    """Cross-validate the TF-IDF + logistic baseline on labelled texts and register it."""
    options = {
        "data": str(data.resolve()),
        "name": name,
        "text": text,
        "label": label,
        "folds": folds,
        "seed": seed,
        "description": description,
    }
    start_job(ctx, "sentiment", options, detach)


@jobs_app.command("list")
def list_jobs(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The latest training jobs, newest first."""
    jobs = cli_context(ctx).control.recent_jobs()
    if as_json:
        echo_json([job.to_json() for job in jobs])
        return
    out = table("id", "template", "state", "message", "created", "by")
    for job in jobs:
        out.add_row(
            job.id, job.template, job.state, job.message[:60], when(job.created_at), job.created_by
        )
    console.print(out)


@jobs_app.command()
def show(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="Job id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """A job's state, log, versions and error."""
    control = cli_context(ctx).control
    job = control.get_job(job_id)
    if as_json:
        echo_json(job.to_json())
        return
    console.print(f"job {job.id}: {job.template}, {job.state}", markup=False)
    for line in job.log:
        console.print(f"  {line}", markup=False)
    _print_result(control, job)


@jobs_app.command()
def attach(
    ctx: typer.Context,
    job_id: Annotated[str, typer.Argument(help="Job id.")],
) -> None:
    """Follow a job until it ends (Ctrl-C detaches again)."""
    control = cli_context(ctx).control
    _follow(control, control.get_job(job_id))


def start_job(ctx: typer.Context, template: str, options: dict[str, Any], detach: bool) -> None:
    control = cli_context(ctx).control
    job = control.start_job(template, options)
    if detach:
        attach = control.command("jobs", "attach", job.id)
        typer.echo(f"job {job.id} started; follow it with: {attach}")
        return
    _follow(control, job)


def _follow(control: ControlPlane, job: Job) -> None:
    seen = 0
    try:
        with progress_steps(f"{job.template} job {job.id[:8]}") as step:
            while True:
                for line in job.log[seen:]:
                    step(line)
                seen = max(seen, len(job.log))
                if job.done:  # its last lines were shown above
                    break
                time.sleep(POLL_SECONDS)
                job = control.get_job(job.id)
    except KeyboardInterrupt:
        attach = control.command("jobs", "attach", job.id)
        typer.echo(f"detached; job {job.id} keeps running: {attach}")
        return
    _print_result(control, job)


def _print_result(control: ControlPlane, job: Job) -> None:
    if job.state == "failed":
        raise Invalid(f"job {job.id} failed: {job.error}")
    if job.state != "succeeded":
        console.print(f"{job.message} (job {job.state})", markup=False)
        return
    if job.template == "optimize":
        listed = job.versions[0]
        console.print(listed["report"], markup=False)
        model, version = listed["model"], str(listed["version"])
        console.print(
            f"registered {model}@{version} ({listed['candidate']} of {listed['parent']}); "
            "no alias moved. Next: a validator other than its author approves it ("
            f"{control.command('models', 'approve', model, version, '--note', '…')}), "
            f"then promote it ({control.command('models', 'promote', model, version)})",
            markup=False,
        )
        return
    if job.template == "credit":
        shown = {"auc": "AUC", "ks": "KS", "brier": "Brier", "expected_cost": "cost/applicant"}
        out = table("version", "candidate", *shown.values(), title="cross-validated, mean")
        for listed in job.versions:
            star = " ★" if listed["staging"] else ""
            out.add_row(
                f"{listed['version']}{star}",
                listed["candidate"],
                *(metric(listed["metrics"].get(key)) for key in shown),
            )
        console.print(out)
        reject_all = job.versions[0]["metrics"].get("reject_all_cost")
        console.print(f"rejecting everyone costs {metric(reject_all)} per applicant")
        console.print(_fairness_note(job), markup=False)
    else:
        for listed in job.versions:
            figures = ", ".join(
                f"{key} {metric(value)}" for key, value in sorted(listed["metrics"].items())
            )
            console.print(f"{listed['model']} version {listed['version']}: {figures}", markup=False)
    for listed in job.versions:
        if listed["staging"]:
            console.print(f"{STAGING} → {listed['model']} version {listed['version']}")
    if not any(listed["staging"] for listed in job.versions):
        console.print("nothing staged: see the model card for why", markup=False)
    model = job.versions[0]["model"]
    console.print(
        f"model cards: {control.command('models', 'card', model, '--version', 'N')}",
        markup=False,
    )


def _fairness_note(job: Job) -> str:
    """What the run found about fairness, or how to have it checked."""
    protected = job.options.get("protected") or []
    if not protected:
        return (
            "fairness not checked: name a protected attribute with --protected COLUMN "
            "(repeatable, e.g. --protected age_in_years) to report approval rates and "
            "adverse impact by group in each model card"
        )
    flagged = [
        f"{listed['candidate']}: {', '.join(listed['fairness_flagged'])}"
        for listed in job.versions
        if listed.get("fairness_flagged")
    ]
    if not flagged:
        return f"fairness across {', '.join(protected)}: no group flagged (see the model cards)"
    return (
        "adverse impact (approval ratio below four fifths) for "
        + "; ".join(flagged)
        + ": review the model cards' fairness section before any use in decisions"
    )
