"""The AUC a push's labels are checked with: numpy's ranks, equal to scikit-learn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from finmaas.publish.label_check import rank_auc


@pytest.mark.parametrize("seed", range(5))
def test_rank_auc_equals_scikit_learns_with_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    positive = rng.random(300) < 0.3
    scores = np.round(rng.random(300) * 0.5 + positive * 0.2, 2)  # many ties
    assert rank_auc(positive, scores) == pytest.approx(roc_auc_score(positive, scores), abs=1e-12)


@pytest.mark.parametrize(
    ("scores", "auc"),
    [([0.1, 0.2, 0.8, 0.9], 1.0), ([0.9, 0.8, 0.2, 0.1], 0.0), ([0.5, 0.5, 0.5, 0.5], 0.5)],
)
def test_rank_auc_bounds(scores: list[float], auc: float) -> None:
    positive = np.array([False, False, True, True])
    assert rank_auc(positive, np.asarray(scores)) == auc
