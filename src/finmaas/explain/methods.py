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
  registration, to 1e-6;
* ``sampled``: any other model: permutation SHAP against a small background
  drawn from the reference population, with a fixed budget (permutations ×
  background rows) per explained row. The attribution is an estimate, but it
  is additive exactly: along each permutation the margin changes telescope
  from a background row to ``x``, so the contributions sum to the margin minus
  the background's mean margin (the base column).

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

Method = Literal["tree_shap", "additive", "sampled"]
Contribute = Callable[[np.ndarray], np.ndarray]

ADDITIVITY_TOLERANCE = 1e-6
_PROBES_PER_CALL = 65_536
"""Rows one sampled-method model call scores at most (bounds its memory)."""
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


def sampled_method(
    predictor: Predictor,
    signature: ModelSignature,
    background: np.ndarray,
    permutations: np.ndarray,
) -> Contribute:
    """Permutation SHAP of every row against ``background`` (b, k) along ``permutations`` (m, k).

    Cost per explained row: ``m * b * (k + 1)`` margin evaluations, in one call per batch.
    """
    b, k = background.shape
    m = permutations.shape[0]
    base = float(margin(predictor, signature, background).mean())
    # masks[p, s, j]: after s steps of permutation p, is input j taken from x?
    steps = np.arange(k + 1).reshape(1, k + 1, 1)
    position = np.argsort(permutations, axis=1).reshape(m, 1, k)
    masks = position < steps

    def contribute(x: np.ndarray) -> np.ndarray:
        if len(x) == 0:
            return np.empty((0, k + 1), dtype=np.float64)
        chunk = max(1, _PROBES_PER_CALL // (m * b * (k + 1)))
        return np.concatenate([explain_rows(x[i : i + chunk]) for i in range(0, len(x), chunk)])

    def explain_rows(x: np.ndarray) -> np.ndarray:
        n = x.shape[0]
        probes = np.where(
            masks[None, :, None, :, :],  # (1, m, 1, k+1, k)
            x[:, None, None, None, :],  # (n, 1, 1, 1, k)
            background[None, None, :, None, :],  # (1, 1, b, 1, k)
        ).reshape(-1, k)
        margins = margin(predictor, signature, probes).reshape(n, m, b, k + 1)
        deltas = np.diff(margins, axis=3).mean(axis=2)  # (n, m, k): the step that adds p[s]
        out = np.zeros((n, k + 1), dtype=np.float64)
        for p in range(m):
            out[:, permutations[p]] += deltas[:, p, :]
        out[:, :k] /= m
        out[:, k] = base
        return out

    return contribute


def antithetic_permutations(k: int, count: int, seed: int = 0) -> np.ndarray:
    """``count`` permutations of ``k`` inputs in reversed pairs (lower variance), seeded."""
    rng = np.random.default_rng(seed)
    pairs = []
    for _ in range((count + 1) // 2):
        order = rng.permutation(k)
        pairs.extend([order, order[::-1]])
    return np.array(pairs[:count], dtype=np.int64)
