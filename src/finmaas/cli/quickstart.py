"""``finmaas quickstart``: train, register and promote a credit model on German Credit."""

from __future__ import annotations

from typing import Annotated

import typer

from finmaas.cli.context import cli_context
from finmaas.cli.render import console, metric, progress_steps, table
from finmaas.quickstart import MODEL_NAME, run_quickstart

SHOWN_METRICS = {
    "auc": "AUC",
    "ks": "KS",
    "gini": "Gini",
    "brier": "Brier",
    "threshold": "cut-off",
    "accuracy": "accuracy",
    "expected_cost": "cost/applicant",
}


def quickstart(
    ctx: typer.Context,
    folds: Annotated[int, typer.Option(min=2, max=20, help="Cross-validation folds.")] = 5,
    seed: Annotated[int, typer.Option(help="Random seed (same seed, same models).")] = 42,
) -> None:
    """Train two credit models on German Credit, register them and promote the better one."""
    state = cli_context(ctx)
    console.print(f"finmaas home: {state.settings.home}")
    with progress_steps("German Credit") as step:
        result = run_quickstart(
            state.registry, state.store, actor=state.actor, folds=folds, seed=seed, progress=step
        )
    if result.reused:
        console.print("these versions were registered by an earlier quickstart run; reusing them")
    out = table(
        "version",
        "candidate",
        *SHOWN_METRICS.values(),
        title=f"{MODEL_NAME}: {folds}-fold CV (mean)",
    )
    for v in result.versions:
        star = " ★" if v.version == result.production.version else ""
        out.add_row(
            f"{v.version}{star}",
            v.tags.get("candidate", ""),
            *(metric(v.metrics.get(name)) for name in SHOWN_METRICS),
        )
    console.print(out)
    reject_all = result.versions[0].metrics.get("reject_all_cost")
    console.print(
        "cost/applicant: expected cost under the 5:1 cost matrix (accepting a bad risk costs 5, "
        "rejecting a good one 1) when rejecting at the cost-optimal cut-off on P(bad); "
        f"rejecting everyone costs {metric(reject_all)}. Accuracy is at that cut-off."
    )
    console.print(f"production → {MODEL_NAME} version {result.production.version} (best CV AUC)")
    console.print(
        "Serving comes with `finmaas serve` in the data-plane release; until then the quickstart "
        "stops here. Inspect what was registered with:\n"
        f"  finmaas models show {MODEL_NAME}\n"
        f"  finmaas models show {MODEL_NAME} --version production"
    )
