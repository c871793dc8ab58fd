"""Metrics of a binary credit model and cost-sensitive accept/reject decisions.

Labels are ``1`` for the adverse outcome (``bad``) and ``0`` otherwise;
``p_bad`` is the model's probability of ``1``. An applicant is **rejected**
when ``p_bad >= threshold`` and accepted otherwise, so ``threshold=0`` rejects
everyone. Costs are per applicant, averaged over the sample.

Every function validates its inputs and raises :class:`finmaas.errors.Invalid`
naming the argument, the rule and the offending value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.metrics import roc_auc_score, roc_curve

from finmaas.errors import Invalid

LOG_LOSS_EPS = 1e-15
"""Probabilities are clipped to ``[eps, 1 - eps]`` in :func:`log_loss`."""


@dataclass(frozen=True)
class CostMatrix:
    """Cost of each wrong decision; correct decisions cost nothing.

    The defaults are the German Credit documentation's: accepting a bad
    applicant is five times as costly as rejecting a good one.
    """

    accept_bad: float = 5.0
    """Cost of accepting an applicant who turns out bad (a false negative)."""
    reject_good: float = 1.0
    """Cost of rejecting an applicant who would have been good (a false positive)."""

    def __post_init__(self) -> None:
        for name in ("accept_bad", "reject_good"):
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, Real)
                or not math.isfinite(value)
                or value < 0
            ):
                raise Invalid(f"cost {name!r} must be a finite number ≥ 0, got {_shown(value)}")
        if self.accept_bad == 0 and self.reject_good == 0:
            raise Invalid("costs 'accept_bad' and 'reject_good' must not both be 0")


DEFAULT_COSTS = CostMatrix()
"""The German Credit cost matrix: accepting a bad costs 5, rejecting a good costs 1."""


def roc_auc(y_true: ArrayLike, p_bad: ArrayLike) -> float:
    """Area under the ROC curve (probability a bad outranks a good; ties count half)."""
    y, p = _check_scored(y_true, p_bad, both_classes="auc")
    return float(roc_auc_score(y, p))


def gini(y_true: ArrayLike, p_bad: ArrayLike) -> float:
    """Gini coefficient (accuracy ratio): ``2 · AUC − 1``."""
    return 2.0 * roc_auc(y_true, p_bad) - 1.0


def ks_statistic(y_true: ArrayLike, p_bad: ArrayLike) -> float:
    """Kolmogorov–Smirnov statistic: the largest ``|TPR − FPR|`` over all thresholds.

    Equivalently, the largest gap between the score distributions of bads and goods.
    """
    y, p = _check_scored(y_true, p_bad, both_classes="ks")
    fpr, tpr, _ = roc_curve(y, p)
    return float(np.max(np.abs(tpr - fpr)))


def brier(y_true: ArrayLike, p_bad: ArrayLike) -> float:
    """Brier score: mean squared difference between ``p_bad`` and the label."""
    y, p = _check_scored(y_true, p_bad)
    return float(np.mean((p - y) ** 2))


def log_loss(y_true: ArrayLike, p_bad: ArrayLike) -> float:
    """Mean negative log-likelihood (natural log), probabilities clipped by :data:`LOG_LOSS_EPS`."""
    y, p = _check_scored(y_true, p_bad)
    clipped = np.clip(p, LOG_LOSS_EPS, 1.0 - LOG_LOSS_EPS)
    return float(-np.mean(y * np.log(clipped) + (1.0 - y) * np.log1p(-clipped)))


def expected_cost(
    y_true: ArrayLike, p_bad: ArrayLike, threshold: float, costs: CostMatrix = DEFAULT_COSTS
) -> float:
    """Average cost per applicant when rejecting every ``p_bad >= threshold``."""
    y, p = _check_scored(y_true, p_bad)
    _check_threshold(threshold)
    reject = p >= threshold
    bad = y == 1
    accepted_bads = np.count_nonzero(bad & ~reject)
    rejected_goods = np.count_nonzero(~bad & reject)
    return (costs.accept_bad * accepted_bads + costs.reject_good * rejected_goods) / y.size


def cost_optimal_threshold(
    y_true: ArrayLike, p_bad: ArrayLike, costs: CostMatrix = DEFAULT_COSTS
) -> tuple[float, float]:
    """The threshold with the lowest :func:`expected_cost` on this data, and that cost.

    Candidates are the distinct values of ``p_bad`` (each one the lowest
    threshold rejecting that score) and ``1.0`` (accept everyone below 1).
    Among equally cheap thresholds the lowest wins.
    """
    y, p = _check_scored(y_true, p_bad)
    candidates = np.union1d(p, [1.0])
    bads = np.sort(p[y == 1])
    goods = np.sort(p[y == 0])
    # For each candidate t: bads scored below t are accepted, goods at or above t rejected.
    accepted_bads = np.searchsorted(bads, candidates, side="left")
    rejected_goods = goods.size - np.searchsorted(goods, candidates, side="left")
    totals = costs.accept_bad * accepted_bads + costs.reject_good * rejected_goods
    best = int(np.argmin(totals))
    return float(candidates[best]), float(totals[best] / y.size)


def reject_all_cost(y_true: ArrayLike, costs: CostMatrix = DEFAULT_COSTS) -> float:
    """Cost per applicant of rejecting everyone: the share of goods × ``reject_good``."""
    y = _check_labels(y_true)
    return costs.reject_good * float(np.count_nonzero(y == 0)) / y.size


def accuracy(y_true: ArrayLike, p_bad: ArrayLike, threshold: float) -> float:
    """Share of applicants whose decision matches the label (reject bads, accept goods)."""
    y, p = _check_scored(y_true, p_bad)
    _check_threshold(threshold)
    return float(np.mean((p >= threshold) == (y == 1)))


def binary_classification_report(
    y_true: ArrayLike, p_bad: ArrayLike, costs: CostMatrix = DEFAULT_COSTS
) -> dict[str, float]:
    """Ranking, calibration and decision metrics of one set of scores.

    ``threshold`` is tuned on these same scores (see :func:`cost_optimal_threshold`),
    and ``expected_cost`` and ``accuracy`` are measured at it, so pass held-out
    scores (e.g. out-of-fold predictions) for an honest estimate.
    """
    y, p = _check_scored(y_true, p_bad, both_classes="a report")
    auc = roc_auc(y, p)
    threshold, cost = cost_optimal_threshold(y, p, costs)
    return {
        "auc": auc,
        "ks": ks_statistic(y, p),
        "gini": 2.0 * auc - 1.0,
        "brier": brier(y, p),
        "log_loss": log_loss(y, p),
        "threshold": threshold,
        "expected_cost": cost,
        "accuracy": accuracy(y, p, threshold),
        "reject_all_cost": reject_all_cost(y, costs),
    }


def _check_labels(y_true: ArrayLike) -> NDArray[np.float64]:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise Invalid(f"y_true must be one-dimensional, got shape {y.shape}")
    if y.size == 0:
        raise Invalid("y_true must not be empty")
    if y.dtype.kind not in "biuf":
        raise Invalid(f"y_true must hold binary labels 0 and 1, got {_shown(y[0])}")
    labels = y.astype(np.float64)
    wrong = (labels != 0) & (labels != 1)
    if wrong.any():
        raise Invalid(f"y_true must hold binary labels 0 and 1, got {_shown(y[np.argmax(wrong)])}")
    return labels


def _check_scored(
    y_true: ArrayLike, p_bad: ArrayLike, *, both_classes: str | None = None
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    y = _check_labels(y_true)
    raw = np.asarray(p_bad)
    if raw.ndim != 1:
        raise Invalid(f"p_bad must be one-dimensional, got shape {raw.shape}")
    if raw.size != y.size:
        raise Invalid(f"y_true and p_bad must have the same length, got {y.size} and {raw.size}")
    if raw.dtype.kind not in "iuf":
        raise Invalid(f"p_bad must be probabilities in [0, 1], got {_shown(raw[0])}")
    p = raw.astype(np.float64)
    outside = ~((p >= 0.0) & (p <= 1.0))  # NaN is outside too
    if outside.any():
        raise Invalid(f"p_bad must be probabilities in [0, 1], got {_shown(p[np.argmax(outside)])}")
    if both_classes and y.min() == y.max():
        raise Invalid(
            f"y_true must contain both labels 0 and 1 for {both_classes}, got only {int(y[0])}"
        )
    return y, p


def _check_threshold(threshold: float) -> None:
    if (
        isinstance(threshold, bool)
        or not isinstance(threshold, Real)
        or not 0.0 <= threshold <= 1.0
    ):
        raise Invalid(f"threshold must be a number in [0, 1], got {_shown(threshold)}")


def check_int(name: str, value: object, low: int, high: int) -> None:
    """Refuse anything but an integer (not a bool) from ``low`` to ``high``."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise Invalid(f"{name} must be an integer from {low} to {high}, got {_shown(value)}")


def _shown(value: object) -> str:
    """``repr`` of a bad value, as Python would show it (``2``, not ``np.int64(2)``)."""
    if isinstance(value, np.generic):
        value = value.item()
    return repr(value)
