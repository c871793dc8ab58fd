"""``finmaas quickstart``: train, register and promote a credit model on German Credit."""

from __future__ import annotations

from typing import Annotated

import orjson
import typer

from finmaas.cli.context import cli_context
from finmaas.cli.render import console, metric, progress_steps, table
from finmaas.cli.serve import serve
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.quickstart import (
    ADMIN_KEY,
    CONSUMER_KEY,
    MODEL_NAME,
    quickstart_keys,
    run_quickstart,
)

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
    serve_after: Annotated[
        bool, typer.Option("--serve/--no-serve", help="Serve credit-risk@production afterwards.")
    ] = True,
) -> None:
    """Train two credit models on German Credit, register them, promote the better one, serve it."""
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
    keys = quickstart_keys(state.registry, actor=state.actor)
    admin, consumer = keys.admin.token, keys.consumer.token
    console.print(
        "API keys (secrets shown once; a new quickstart run replaces them):\n"
        f"  {ADMIN_KEY} (role admin): {admin}\n"
        f"  {CONSUMER_KEY} (role consumer, may predict, explain and read {MODEL_NAME}): "
        f"{consumer}",
        markup=False,
    )
    settings = state.settings
    applicant = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).iloc[0].to_dict()
    body = orjson.dumps({"instances": [applicant]}).decode()
    when = (
        "in another terminal, once the server below is up"
        if serve_after
        else "once a server is up: finmaas serve"
    )
    console.print(
        f"Inspect it: finmaas models show {MODEL_NAME}\n"
        f"Get a prediction ({when}):\n"
        f"  curl -s http://{settings.host}:{settings.port}/v1/models/{MODEL_NAME}:predict "
        f"-H 'authorization: Bearer {consumer}' "
        f"-H 'content-type: application/json' -d '{body}'\n"
        "Or from Python:\n"
        "  from finmaas import Client\n"
        f"  Client('http://{settings.host}:{settings.port}', api_key='{consumer}').predict("
        f"'{MODEL_NAME}', [applicant]).predictions  # applicant: the record in the curl body",
        markup=False,
    )
    if serve_after:
        serve(
            ctx,
            host=None,
            port=None,
            workers=None,
            preload=True,
            max_model_memory=None,
            model=f"{MODEL_NAME}@production",
        )
