"""``finmaas train forecast``: an OHLCV file to a registered forecasting version.

The prices are checked (:func:`~finmaas.training.forecast.check_prices`:
duplicate or unsorted dates, non-numeric values, non-positive closes are
refused with their row), evaluated walk-forward beside the naive baselines,
and one model is refit on every row and registered with its walk-forward
metrics, the baselines' (``baseline_<name>_<metric>``), lineage and model
card. It gets the ``staging`` alias only when its edge over every baseline on
the headline metric (directional accuracy, or absolute error for returns) is
more than ``SKILL_Z`` standard errors, period by period (``edge_z``): a model
whose edge could be noise is registered for the record, not staged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from finmaas.actor import Actor
from finmaas.errors import Invalid
from finmaas.publish.model_cards import CardContext, DataFacts
from finmaas.publish.registration import register
from finmaas.registry import ArtifactStore, ModelVersion, Registry
from finmaas.registry.names import check_model_name
from finmaas.training.data import read_table
from finmaas.training.forecast import (
    TARGETS,
    ForecastReport,
    Target,
    check_prices,
    evaluate_forecast,
    lagged_features,
)
from finmaas.training.runs import new_run_id, run_lineage, stage

DOWN, UP = "down", "up"
SKILL_Z = 2.0


@dataclass(frozen=True)
class ForecastRun:
    data: Path
    name: str
    target: Target = "direction"
    date_column: str = "Date"
    lags: int = 5
    initial: int = 500
    step: int = 20
    description: str = ""

    def settings(self) -> dict[str, Any]:
        return {
            "target": self.target,
            "date_column": self.date_column,
            "lags": self.lags,
            "initial": self.initial,
            "step": self.step,
        }


@dataclass(frozen=True)
class ForecastResult:
    version: ModelVersion
    report: ForecastReport
    staged: bool


def train_forecast(
    run: ForecastRun,
    registry: Registry,
    store: ArtifactStore,
    *,
    actor: Actor,
    max_bytes: int,
    progress: Callable[[str], None] | None = None,
) -> ForecastResult:
    """Check, evaluate walk-forward, refit, register; see the module."""
    say = progress or (lambda _: None)
    check_model_name(run.name)
    if run.target not in TARGETS:
        raise Invalid(f"target must be one of {', '.join(TARGETS)}, got {run.target!r}")
    say(f"reading {run.data.name}")
    table = read_table(run.data, max_bytes=max_bytes)
    prices = check_prices(table.frame, run.date_column)
    say(f"{len(prices):,} periods; walk-forward evaluation")
    report = evaluate_forecast(
        prices, run.target, lags=run.lags, initial=run.initial, step=run.step
    )
    features, future = lagged_features(prices, run.lags)
    say("refit on every row")
    model = _final_model(run.target, features.to_numpy(dtype=np.float64), future.to_numpy())
    metrics = {**report.model, "test_rows": float(report.test_rows)}
    for baseline, values in report.baselines.items():
        metrics |= {f"baseline_{baseline}_{key}": value for key, value in values.items()}
    headline = "mae" if run.target == "return" else "directional_accuracy"
    skill = all(z > SKILL_Z for z in report.edge_z.values())
    metrics |= {f"edge_z_{baseline}": z for baseline, z in report.edge_z.items()}
    run_id = new_run_id()
    walk = f"walk-forward: {run.initial} first rows, refit every {run.step}"
    version = register(
        run.name,
        model,
        features.reset_index(drop=True),
        task="binary" if run.target == "direction" else "regression",
        classes=(DOWN, UP) if run.target == "direction" else None,
        positive_class=UP if run.target == "direction" else None,
        metrics=metrics,
        params={"model": _describe(run.target), "lags": run.lags, "validation": walk},
        tags={"training_run": run_id},
        lineage={
            **run_lineage(
                "finmaas train forecast", run_id, table, None, run.settings(), validation=walk
            ),
            "template": f"forecast/{run.target}",
        },
        trained_on_encoded=True,
        description=run.description
        or f"Next-period {'direction' if run.target == 'direction' else 'return'} of "
        f"{table.name}, from lagged prices and volumes.",
        card_context=CardContext(
            intended_use=(
                "Research and monitoring of a next-period market forecast from lagged "
                "prices; not investment advice, and not a trading signal without its "
                "own backtest of costs."
            ),
            data=DataFacts(
                name=table.name,
                sha256=table.sha256,
                rows=len(prices),
                target=f"next-period {run.target}",
            ),
            selection=_verdict(report, headline, skill),
            limitations=[
                f"Tested on {report.test_rows:,} periods from {report.first_test_date} to "
                f"{report.last_test_date} of one series; markets change regime.",
                *(
                    []
                    if skill
                    else [
                        f"No proven skill: its {headline} edge over the baselines could be noise."
                    ]
                ),
            ],
            produced_by=(f"`finmaas train forecast` run `{run_id}`", walk),
        ),
        registry=registry,
        store=store,
        actor=actor,
    )
    stage(registry, version, skill, actor=actor, say=say, why_not="no proven skill")
    return ForecastResult(version, report, skill)


def _final_model(target: Target, x: np.ndarray, future: np.ndarray) -> Pipeline:
    if target == "return":
        return make_pipeline(StandardScaler(), Ridge(alpha=1.0)).fit(x, future)
    labels = np.where(future > 0, UP, DOWN).astype(object)
    if len(set(labels.tolist())) < 2:
        raise Invalid("every period moved the same way: a direction model needs both")
    classifier = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=1000))
    return classifier.fit(x, labels)


def _describe(target: Target) -> str:
    if target == "return":
        return "standardised lagged features into ridge regression (alpha 1)"
    return "standardised lagged features into logistic regression (C 1)"


def _verdict(report: ForecastReport, headline: str, skill: bool) -> str:
    shown = ", ".join(f"{name} {values[headline]:.4f}" for name, values in report.baselines.items())
    verdict = (
        "it beats every baseline, so it was given the `staging` alias"
        if skill
        else "it does not beat every baseline, so it was not staged"
    )
    return f"Walk-forward {headline}: {report.model[headline]:.4f} against {shown}: {verdict}."
