"""Credit metrics against hand-computed examples and scikit-learn / SciPy."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import ks_2samp
from sklearn import metrics as skm

from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.errors import Invalid
from finmaas.training.metrics import (
    DEFAULT_COSTS,
    CostMatrix,
    accuracy,
    binary_classification_report,
    brier,
    cost_optimal_threshold,
    expected_cost,
    gini,
    ks_statistic,
    log_loss,
    reject_all_cost,
    roc_auc,
)

# Two goods (0.1, 0.4) and two bads (0.35, 0.8): 3 of 4 bad/good pairs are ordered right.
Y4 = [0, 0, 1, 1]
P4 = [0.1, 0.4, 0.35, 0.8]


@pytest.fixture(scope="module")
def noisy() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(7)
    y = rng.integers(0, 2, 500)
    p = np.clip(0.3 + 0.25 * y + rng.normal(0, 0.2, 500), 0, 1).round(2)  # with ties
    return y, p


def test_hand_computed_ranking_metrics() -> None:
    assert roc_auc(Y4, P4) == pytest.approx(0.75)
    assert gini(Y4, P4) == pytest.approx(0.5)
    # At threshold 0.8: TPR 1/2, FPR 0; at 0.35: TPR 1, FPR 1/2.
    assert ks_statistic(Y4, P4) == pytest.approx(0.5)


def test_perfect_and_inverted_separation() -> None:
    assert roc_auc([0, 0, 1], [0.1, 0.2, 0.9]) == 1.0
    assert ks_statistic([0, 0, 1], [0.1, 0.2, 0.9]) == 1.0
    assert gini([0, 0, 1], [0.9, 0.8, 0.1]) == -1.0
    assert ks_statistic([0, 0, 1], [0.9, 0.8, 0.1]) == 1.0  # |TPR − FPR|


def test_ranking_metrics_agree_with_sklearn_and_scipy(noisy: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = noisy
    assert roc_auc(y, p) == pytest.approx(skm.roc_auc_score(y, p))
    assert gini(y, p) == pytest.approx(2 * skm.roc_auc_score(y, p) - 1)
    # KS is the largest gap between the score distributions of bads and goods.
    assert ks_statistic(y, p) == pytest.approx(ks_2samp(p[y == 1], p[y == 0]).statistic)


def test_brier_and_log_loss() -> None:
    assert brier([0, 1], [0.2, 0.6]) == pytest.approx((0.2**2 + 0.4**2) / 2)
    assert log_loss([1, 0], [0.5, 0.5]) == pytest.approx(math.log(2))
    # A certain wrong answer is clipped, not infinite.
    assert log_loss([1], [0.0]) == pytest.approx(-math.log(1e-15))


def test_calibration_metrics_agree_with_sklearn(noisy: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = noisy
    assert brier(y, p) == pytest.approx(skm.brier_score_loss(y, p))
    assert log_loss(y, p) == pytest.approx(skm.log_loss(y, np.clip(p, 1e-15, 1 - 1e-15)))


def test_labels_may_be_bool_and_scores_int() -> None:
    assert roc_auc(np.array([False, True]), np.array([0, 1])) == 1.0


def test_default_costs_are_the_german_credit_matrix() -> None:
    assert CostMatrix() == DEFAULT_COSTS == CostMatrix(accept_bad=5.0, reject_good=1.0)


def test_expected_cost_rejects_at_and_above_the_threshold() -> None:
    y = [1, 0, 0, 1, 0]
    p = [0.9, 0.6, 0.2, 0.3, 0.1]
    # t=0.5 rejects 0.9 (bad, right) and 0.6 (good: 1), accepts 0.3 (bad: 5).
    assert expected_cost(y, p, 0.5) == pytest.approx(6 / 5)
    # t=0.6 rejects the good scored exactly 0.6 too.
    assert expected_cost(y, p, 0.6) == expected_cost(y, p, 0.5)
    assert expected_cost(y, p, 0.0) == pytest.approx(3 / 5)  # reject everyone
    assert expected_cost(y, p, 1.0) == pytest.approx(10 / 5)  # accept everyone
    assert expected_cost(y, p, 0.5, CostMatrix(accept_bad=1, reject_good=2)) == pytest.approx(3 / 5)


# Goods at 0.1, 0.2, 0.4; bads at 0.3, 0.8.
Y5 = [0, 0, 1, 0, 1]
P5 = [0.1, 0.2, 0.3, 0.4, 0.8]


@pytest.mark.parametrize(
    ("costs", "threshold", "cost"),
    [
        # Costs per threshold (5:1): 0.1→3, 0.2→2, 0.3→1, 0.4→6, 0.8→5, 1.0→10.
        (CostMatrix(), 0.3, 1 / 5),
        # 1:1: 0.3 and 0.8 both cost 1; the lowest threshold wins.
        (CostMatrix(accept_bad=1, reject_good=1), 0.3, 1 / 5),
        # 1:10: rejecting goods is dear: 0.3→10, 0.4→11, 0.8→1, 1.0→2.
        (CostMatrix(accept_bad=1, reject_good=10), 0.8, 1 / 5),
        # Bads cost nothing: 0.8 (reject the top bad) and 1.0 (accept all) are free.
        (CostMatrix(accept_bad=0, reject_good=1), 0.8, 0.0),
    ],
)
def test_cost_optimal_threshold_on_a_tiny_example(
    costs: CostMatrix, threshold: float, cost: float
) -> None:
    got_threshold, got_cost = cost_optimal_threshold(Y5, P5, costs)
    assert got_threshold == threshold
    assert got_cost == pytest.approx(cost)


def test_cost_optimal_threshold_may_accept_everyone() -> None:
    # A good outranks the only bad: 0.3→5 (reject both), 0.6→1+5, 1.0→1 (accept both).
    costs = CostMatrix(accept_bad=1, reject_good=5)
    assert cost_optimal_threshold([1, 0], [0.3, 0.6], costs) == (1.0, 0.5)


def test_cost_optimal_threshold_beats_every_other_threshold(
    noisy: tuple[np.ndarray, np.ndarray],
) -> None:
    y, p = noisy
    threshold, cost = cost_optimal_threshold(y, p)
    assert expected_cost(y, p, threshold) == pytest.approx(cost)
    grid = np.linspace(0, 1, 1001)
    assert cost <= min(expected_cost(y, p, float(t)) for t in grid) + 1e-12


def test_reject_all_cost_is_070_on_german_credit() -> None:
    frame = load_german_credit()
    y = (frame[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int)
    assert reject_all_cost(y) == pytest.approx(0.70)
    assert reject_all_cost(y, CostMatrix(reject_good=2)) == pytest.approx(1.40)
    assert expected_cost(y, np.full(y.size, 0.5), 0.0) == pytest.approx(0.70)


def test_accuracy_counts_rejected_bads_and_accepted_goods() -> None:
    assert accuracy(Y5, P5, 0.3) == pytest.approx(4 / 5)
    assert accuracy(Y5, P5, 0.0) == pytest.approx(2 / 5)


def test_report_combines_the_metrics(noisy: tuple[np.ndarray, np.ndarray]) -> None:
    y, p = noisy
    report = binary_classification_report(y, p)
    threshold, cost = cost_optimal_threshold(y, p)
    assert report == {
        "auc": pytest.approx(roc_auc(y, p)),
        "ks": pytest.approx(ks_statistic(y, p)),
        "gini": pytest.approx(gini(y, p)),
        "brier": pytest.approx(brier(y, p)),
        "log_loss": pytest.approx(log_loss(y, p)),
        "threshold": threshold,
        "expected_cost": pytest.approx(cost),
        "accuracy": pytest.approx(accuracy(y, p, threshold)),
        "reject_all_cost": pytest.approx(reject_all_cost(y)),
    }
    assert all(isinstance(value, float) for value in report.values())


BAD_INPUTS: list[tuple[Any, tuple[Any, ...], str]] = [
    (roc_auc, ([0, 1, 1], [0.2, 0.4]), "y_true and p_bad must have the same length, got 3 and 2"),
    (brier, ([0, 2], [0.1, 0.2]), "y_true must hold binary labels 0 and 1, got 2"),
    (brier, ([0, 0.5], [0.1, 0.2]), "y_true must hold binary labels 0 and 1, got 0.5"),
    (brier, (["good", "bad"], [0.1, 0.2]), "y_true must hold binary labels 0 and 1, got 'good'"),
    (brier, ([], []), "y_true must not be empty"),
    (brier, ([[0, 1], [1, 0]], [0.1, 0.2]), "y_true must be one-dimensional, got shape (2, 2)"),
    (brier, ([0, 1], [[0.1, 0.2]]), "p_bad must be one-dimensional, got shape (1, 2)"),
    (log_loss, ([0, 1], [0.2, 1.5]), "p_bad must be probabilities in [0, 1], got 1.5"),
    (log_loss, ([0, 1], [-0.1, 0.5]), "p_bad must be probabilities in [0, 1], got -0.1"),
    (log_loss, ([0, 1], [0.2, float("nan")]), "p_bad must be probabilities in [0, 1], got nan"),
    (log_loss, ([0, 1], ["a", "b"]), "p_bad must be probabilities in [0, 1], got 'a'"),
    (log_loss, ([0, 1], [False, True]), "p_bad must be probabilities in [0, 1], got False"),
    (roc_auc, ([1, 1], [0.2, 0.3]), "y_true must contain both labels 0 and 1 for auc, got only 1"),
    (
        ks_statistic,
        ([0, 0], [0.2, 0.3]),
        "y_true must contain both labels 0 and 1 for ks, got only 0",
    ),
    (
        binary_classification_report,
        ([0], [0.2]),
        "y_true must contain both labels 0 and 1 for a report, got only 0",
    ),
    (expected_cost, ([0, 1], [0.1, 0.2], 1.5), "threshold must be a number in [0, 1], got 1.5"),
    (
        expected_cost,
        ([0, 1], [0.1, 0.2], np.float64(-1)),
        "threshold must be a number in [0, 1], got -1.0",
    ),
    (accuracy, ([0, 1], [0.1, 0.2], True), "threshold must be a number in [0, 1], got True"),
    (reject_all_cost, ([0, 3],), "y_true must hold binary labels 0 and 1, got 3"),
]


@pytest.mark.parametrize(("function", "args", "message"), BAD_INPUTS)
def test_bad_inputs_raise_invalid_with_a_clear_message(
    function: Any, args: tuple[Any, ...], message: str
) -> None:
    with pytest.raises(Invalid) as caught:
        function(*args)
    assert str(caught.value) == message


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"accept_bad": -1}, "cost 'accept_bad' must be a finite number ≥ 0, got -1"),
        ({"reject_good": float("inf")}, "cost 'reject_good' must be a finite number ≥ 0, got inf"),
        ({"reject_good": "1"}, "cost 'reject_good' must be a finite number ≥ 0, got '1'"),
        (
            {"accept_bad": 0, "reject_good": 0},
            "costs 'accept_bad' and 'reject_good' must not both be 0",
        ),
    ],
)
def test_bad_costs_raise_invalid(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        CostMatrix(**kwargs)
    assert str(caught.value) == message
