"""Stratified folds, out-of-fold scores and cross-fitted fold metrics."""

from __future__ import annotations

import numpy as np
import pytest

from finmaas.errors import Invalid
from finmaas.training.cross_validation import (
    cv_metrics,
    out_of_fold,
    repeated_folds,
    stratified_folds,
)
from finmaas.training.metrics import (
    DEFAULT_COSTS,
    CostMatrix,
    cost_optimal_threshold,
    expected_cost,
    roc_auc,
)

Y = np.array([0] * 14 + [1] * 6)


def test_folds_partition_the_rows_and_keep_the_class_shares() -> None:
    splits = stratified_folds(Y, 3, seed=1)
    held_out = np.sort(np.concatenate([test for _, test in splits]))
    assert np.array_equal(held_out, np.arange(Y.size))
    for train, test in splits:
        assert np.intersect1d(train, test).size == 0
        assert Y[test].sum() == 2


def test_folds_depend_on_the_seed_only() -> None:
    first = stratified_folds(Y, 3, seed=1)
    again = stratified_folds(Y, 3, seed=1)
    other = stratified_folds(Y, 3, seed=2)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(first, again, strict=True))
    assert not all(np.array_equal(a[1], b[1]) for a, b in zip(first, other, strict=True))


@pytest.mark.parametrize(
    ("folds", "message"),
    [
        (1, "folds must be an integer ≥ 2, got 1"),
        (2.5, "folds must be an integer ≥ 2, got 2.5"),
        (True, "folds must be an integer ≥ 2, got True"),
        (7, "folds must be at most the size of the rarer class (6 rows), got 7"),
    ],
)
def test_bad_fold_counts(folds: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        stratified_folds(Y, folds, seed=0)  # type: ignore[arg-type]
    assert str(caught.value) == message


def test_out_of_fold_scores_every_row_with_a_model_that_never_saw_it() -> None:
    ids = np.arange(Y.size, dtype=np.float64).reshape(-1, 1)
    messages: list[str] = []

    def fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray) -> np.ndarray:
        assert np.intersect1d(x_train[:, 0], x_test[:, 0]).size == 0
        assert x_train.shape[0] + x_test.shape[0] == Y.size
        return x_test[:, 0] / 100

    splits = stratified_folds(Y, 4, seed=0)
    oof = out_of_fold(fit_predict, ids, Y, splits, progress=messages.append, label="toy")
    assert np.allclose(oof, np.arange(Y.size) / 100)
    assert messages == ["toy: fold 1/4", "toy: fold 2/4", "toy: fold 3/4", "toy: fold 4/4"]


def test_cv_metrics_are_fold_means_with_sample_sd() -> None:
    rng = np.random.default_rng(3)
    y = np.array([0] * 70 + [1] * 30)
    oof = np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, y.size), 0, 1)
    splits = stratified_folds(y, 2, seed=0)
    metrics = cv_metrics(y, [oof], [splits])
    aucs = [roc_auc(y[test], oof[test]) for _, test in splits]
    assert metrics["auc"] == pytest.approx(np.mean(aucs))
    assert metrics["auc_sd"] == pytest.approx(abs(aucs[0] - aucs[1]) / np.sqrt(2))
    assert metrics["gini"] == pytest.approx(2 * metrics["auc"] - 1)
    assert metrics["reject_all_cost"] == pytest.approx(0.70)
    names = ["auc", "ks", "gini", "brier", "log_loss", "threshold", "expected_cost", "accuracy"]
    names.append("reject_all_cost")
    assert set(metrics) == {*names, *(f"{name}_sd" for name in names)}


def test_each_folds_cost_uses_a_threshold_tuned_on_the_other_folds() -> None:
    rng = np.random.default_rng(5)
    y = np.array([0] * 70 + [1] * 30)
    oof = np.clip(0.3 + 0.2 * y + rng.normal(0, 0.25, y.size), 0, 1)
    splits = stratified_folds(y, 2, seed=0)
    costs = CostMatrix(accept_bad=4, reject_good=1)
    metrics = cv_metrics(y, [oof], [splits], costs)
    (train_a, test_a), (train_b, test_b) = splits
    # With two folds, "the other folds" of one fold are its training part.
    t_a, _ = cost_optimal_threshold(y[train_a], oof[train_a], costs)
    t_b, _ = cost_optimal_threshold(y[train_b], oof[train_b], costs)
    fold_costs = [
        expected_cost(y[test_a], oof[test_a], t_a, costs),
        expected_cost(y[test_b], oof[test_b], t_b, costs),
    ]
    assert metrics["expected_cost"] == pytest.approx(np.mean(fold_costs))
    assert metrics["threshold_sd"] == pytest.approx(abs(t_a - t_b) / np.sqrt(2))
    # The threshold to deploy is tuned on every out-of-fold score.
    assert metrics["threshold"] == cost_optimal_threshold(y, oof, costs)[0]
    # Tuning on the scored rows themselves would look cheaper than cross-fitting.
    in_sample = np.mean([cost_optimal_threshold(y[t], oof[t], costs)[1] for t in (test_a, test_b)])
    assert in_sample <= metrics["expected_cost"]


def test_repeats_are_differently_shuffled_partitions() -> None:
    y = np.array([0] * 70 + [1] * 30)
    repeats = repeated_folds(y, 5, 2, seed=4)
    assert len(repeats) == 2
    for splits in repeats:
        held = np.sort(np.concatenate([test for _, test in splits]))
        assert np.array_equal(held, np.arange(y.size))  # each row held out once per repeat
        assert all(y[test].sum() == 6 for _, test in splits)  # stratified
    assert not np.array_equal(repeats[0][0][1], repeats[1][0][1])
    assert [t.tolist() for _, t in repeats[1]] == [
        t.tolist() for _, t in stratified_folds(y, 5, seed=5)
    ]


def test_repeated_cv_metrics_pool_every_fold_of_every_repeat() -> None:
    rng = np.random.default_rng(9)
    y = np.array([0] * 70 + [1] * 30)
    repeats = repeated_folds(y, 2, 3, seed=0)
    oofs = [np.clip(0.3 + 0.3 * y + rng.normal(0, 0.2, y.size), 0, 1) for _ in repeats]
    metrics = cv_metrics(y, oofs, repeats)
    aucs = [
        roc_auc(y[test], oof[test])
        for oof, splits in zip(oofs, repeats, strict=True)
        for _, test in splits
    ]
    assert len(aucs) == 6
    assert metrics["auc"] == pytest.approx(np.mean(aucs))
    assert metrics["auc_sd"] == pytest.approx(np.std(aucs, ddof=1))
    stacked = cost_optimal_threshold(np.tile(y, 3), np.concatenate(oofs), DEFAULT_COSTS)
    assert metrics["threshold"] == stacked[0]
    with pytest.raises(ValueError, match=r"^2 out-of-fold score sets for 3 repeats$"):
        cv_metrics(y, oofs[:2], repeats)


@pytest.mark.parametrize("repeats", [0, 101, 1.5, True])
def test_bad_repeats_are_refused(repeats: object) -> None:
    with pytest.raises(Invalid) as caught:
        repeated_folds(np.array([0, 1] * 10), 2, repeats, seed=0)  # type: ignore[arg-type]
    assert str(caught.value) == f"repeats must be an integer from 1 to 100, got {repeats!r}"
