"""Per-feature contributions in the model's raw margin, by the method a model allows.

Every method returns a ``(n, k + 1)`` array for ``k`` signature inputs: ``k``
contributions, then a base column, each row summing to the margin (log-odds
of the positive class for binary classifiers, the prediction for regression):

* ``tree_shap``: tree ensembles (LightGBM, XGBoost) compute exact TreeSHAP
  themselves (:class:`~finmaas.runtimes.base.ContributionPredictor`);
* ``additive``: a model whose margin is a sum of one function per input (a
  linear or logistic model, also behind one-hot encoding and scaling, as the
  quickstart's scorecard is) is exact by substitution: input ``i``'s
  contribution is the margin change when ``x[i]`` replaces the anchor row's
  value. Whether a model is additive is checked on the reference sample at
  registration, to 1e-6.

Because the encoded matrix has one column per signature input (categories
are codes, not one-hot columns), contributions are per characteristic the
applicant gave, and a pipeline's engineered columns are summed back by
construction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import numpy as np

from finmaas.runtimes.base import ContributionPredictor, Predictor
from finmaas.schema import ModelSignature

Method = Literal["tree_shap", "additive"]
Contribute = Callable[[np.ndarray], np.ndarray]

ADDITIVITY_TOLERANCE = 1e-6
_EPS = 1e-15


def margin(predictor: Predictor, signature: ModelSignature, x: np.ndarray) -> np.ndarray:
    """The raw margin of ``x``: log-odds of the positive class, or the regression value."""
    scores = np.asarray(predictor.predict(x), dtype=np.float64)
    if signature.task == "regression":
        return scores
    p = np.clip(scores, _EPS, 1.0 - _EPS)
    out: np.ndarray = np.log(p) - np.log1p(-p)
    return out


def tree_method(predictor: Predictor, signature: ModelSignature) -> Contribute | None:
    """Native TreeSHAP, when the runtime offers it and the task has one margin."""
    if signature.task == "multiclass" or not isinstance(predictor, ContributionPredictor):
        return None
    return predictor.contributions


def additive_method(
    predictor: Predictor, signature: ModelSignature, anchor: np.ndarray
) -> Contribute:
    """Contributions by substitution into ``anchor`` (exact for additive models only)."""
    k = anchor.shape[0]
    base = float(margin(predictor, signature, anchor.reshape(1, k))[0])

    def contribute(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        probes = np.repeat(anchor.reshape(1, k), n * k, axis=0).astype(np.float64)
        rows = np.arange(n * k)
        probes[rows, rows % k] = x.reshape(-1)
        out = np.empty((n, k + 1), dtype=np.float64)
        out[:, :k] = margin(predictor, signature, probes).reshape(n, k) - base
        out[:, k] = base
        return out

    return contribute


def anchor_row(encoded: np.ndarray, signature: ModelSignature) -> np.ndarray:
    """A typical row of the reference: medians of numbers, the most frequent category.

    It is a summary, not any applicant's row; only the difference between
    values matters to an additive model, so any valid row would do.
    """
    anchor = np.empty(encoded.shape[1], dtype=np.float64)
    for col, feature in enumerate(signature.inputs):
        column = encoded[:, col].astype(np.float64)
        present = column[~np.isnan(column)]
        if present.size == 0:
            anchor[col] = np.nan
        elif feature.dtype in ("category", "bool"):
            values, counts = np.unique(present, return_counts=True)
            anchor[col] = values[np.argmax(counts)]
        else:
            anchor[col] = float(np.median(present))
    return anchor


def is_additive(
    predictor: Predictor, signature: ModelSignature, contribute: Contribute, probe: np.ndarray
) -> bool:
    """Whether ``contribute`` sums to the margin on every probe row (to 1e-6)."""
    if signature.task == "multiclass":
        return False
    found = contribute(probe).sum(axis=1)
    expected = margin(predictor, signature, probe)
    error = np.abs(found - expected) / np.maximum(1.0, np.abs(expected))
    return bool(np.all(error <= ADDITIVITY_TOLERANCE))
