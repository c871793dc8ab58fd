"""Repeated stratified k-fold cross-validation of a binary scorer, and its metrics.

:func:`repeated_folds` cuts the rows into ``folds`` stratified folds
``repeats`` times, each repeat shuffled with its own seed (``seed + r``).
:func:`out_of_fold` scores every row with a model that never saw it, once per
repeat. :func:`cv_metrics` turns those out-of-fold scores into the metrics a
version is registered with: each metric is computed on each held-out fold of
each repeat, then averaged, with its sample standard deviation across the
``folds × repeats`` folds as ``<metric>_sd``.

The accept/reject threshold is **cross-fitted**, so no fold's cost is measured
at a threshold tuned on that fold: for fold *k* the cost-optimal threshold is
searched on the out-of-fold scores of the *other* folds of the same repeat, and
``expected_cost`` and ``accuracy`` of fold *k* are measured at it. (Those other scores come from
models that were trained with fold *k* among their rows, which is the usual,
mild, price of not nesting a second CV.) The ``threshold`` reported is the one
to deploy: tuned on all out-of-fold scores; ``threshold_sd`` is the spread of
the per-fold thresholds. With repeats, the deployed threshold is tuned on the
out-of-fold scores of every repeat together.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import NDArray
from sklearn.model_selection import StratifiedKFold

from finmaas.errors import Invalid
from finmaas.training.metrics import (
    DEFAULT_COSTS,
    CostMatrix,
    accuracy,
    brier,
    check_int,
    cost_optimal_threshold,
    expected_cost,
    ks_statistic,
    log_loss,
    reject_all_cost,
    roc_auc,
)

Split = tuple[NDArray[np.intp], NDArray[np.intp]]
"""Row indices of one fold: (training part, held-out part)."""
Repeat = list[Split]
"""The folds of one repeat: every row is held out exactly once."""

FitPredict = Callable[
    [NDArray[np.float64], NDArray[np.int_], NDArray[np.float64]], NDArray[np.float64]
]
"""``fit_predict(x_train, y_train, x_test) -> p_bad of x_test``."""

FOLD_METRICS = ("auc", "ks", "gini", "brier", "log_loss")
DECISION_METRICS = ("expected_cost", "accuracy", "reject_all_cost")


def stratified_folds(y: NDArray[np.int_], folds: int, seed: int) -> list[Split]:
    """Shuffled stratified folds; each class must have at least ``folds`` rows."""
    if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
        raise Invalid(f"folds must be an integer ≥ 2, got {folds!r}")
    rarest = int(np.bincount(y, minlength=2).min())
    if folds > rarest:
        raise Invalid(
            f"folds must be at most the size of the rarer class ({rarest} rows), got {folds}"
        )
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    return [(train, test) for train, test in splitter.split(np.zeros(y.size), y)]


def repeated_folds(y: NDArray[np.int_], folds: int, repeats: int, seed: int) -> list[Repeat]:
    """``repeats`` differently shuffled :func:`stratified_folds` (seeds ``seed + r``)."""
    check_int("repeats", repeats, 1, 100)
    return [stratified_folds(y, folds, seed + r) for r in range(repeats)]


def out_of_fold(
    fit_predict: FitPredict,
    x: NDArray[np.float64],
    y: NDArray[np.int_],
    splits: Sequence[Split],
    *,
    progress: Callable[[str], None] | None = None,
    label: str = "model",
) -> NDArray[np.float64]:
    """Score each row with the model fitted on the folds that do not hold it."""
    oof = np.full(y.size, np.nan)
    for k, (train, test) in enumerate(splits, start=1):
        if progress:
            progress(f"{label}: fold {k}/{len(splits)}")
        oof[test] = fit_predict(x[train], y[train], x[test])
    return oof


def cv_metrics(
    y: NDArray[np.int_],
    oofs: Sequence[NDArray[np.float64]],
    repeats: Sequence[Repeat],
    costs: CostMatrix = DEFAULT_COSTS,
) -> dict[str, float]:
    """Fold-wise means and standard deviations of out-of-fold metrics, over every fold
    of every repeat; ``oofs[r]`` are the out-of-fold scores of ``repeats[r]``."""
    if len(oofs) != len(repeats):
        raise ValueError(f"{len(oofs)} out-of-fold score sets for {len(repeats)} repeats")
    per_fold: dict[str, list[float]] = {
        name: [] for name in (*FOLD_METRICS, "threshold", *DECISION_METRICS)
    }
    everyone = np.arange(y.size)
    for oof, splits in zip(oofs, repeats, strict=True):
        for _, test in splits:
            y_k, p_k = y[test], oof[test]
            rest = np.setdiff1d(everyone, test, assume_unique=True)
            threshold, _ = cost_optimal_threshold(y[rest], oof[rest], costs)
            auc = roc_auc(y_k, p_k)
            per_fold["auc"].append(auc)
            per_fold["ks"].append(ks_statistic(y_k, p_k))
            per_fold["gini"].append(2.0 * auc - 1.0)
            per_fold["brier"].append(brier(y_k, p_k))
            per_fold["log_loss"].append(log_loss(y_k, p_k))
            per_fold["threshold"].append(threshold)
            per_fold["expected_cost"].append(expected_cost(y_k, p_k, threshold, costs))
            per_fold["accuracy"].append(accuracy(y_k, p_k, threshold))
            per_fold["reject_all_cost"].append(reject_all_cost(y_k, costs))
    out: dict[str, float] = {}
    for name, values in per_fold.items():
        out[name] = float(np.mean(values))
        out[f"{name}_sd"] = float(np.std(values, ddof=1))
    out["threshold"], _ = cost_optimal_threshold(np.tile(y, len(oofs)), np.concatenate(oofs), costs)
    return out
