"""Counterfactuals: the smallest change to at most two actionable inputs that flips a decision.

For a binary version whose decision for a row is adverse (P(adverse) at or
above the threshold), the search scores, in one model call, the row with:

* each actionable input moved to each of its candidate values: every other
  category, or for numbers the reference sample's decile cut points and its
  mean ± 1 and 2 standard deviations, within the signature's bounds (whole
  numbers for ``int``);
* every pair of actionable inputs moved together, while the budget allows.

A change costs 1 per category (or bool) changed, and ``|new - old| / std``
per number; the cheapest candidate that brings P(adverse) below the threshold
wins. Inputs not marked ``actionable`` in the signature (age, for one) are
never changed. When no candidate within the budget flips the decision the
answer says so.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finmaas.runtimes.base import Predictor
from finmaas.schema import ModelSignature
from finmaas.schema.encoding import decode_value

BUDGET = 4096
"""Candidate rows scored per explained row, at most."""
MAX_CHANGES = 2


@dataclass(frozen=True)
class _Input:
    col: int
    values: np.ndarray
    scale: float
    """Cost of a unit change: 0 for categories (each change costs 1), else 1/std."""


class CounterfactualSearch:
    def __init__(
        self,
        signature: ModelSignature,
        predictor: Predictor,
        threshold: float,
        reference_profile: Mapping[str, Any] | None,
    ) -> None:
        self.signature = signature
        self.predictor = predictor
        self.threshold = threshold
        features = (reference_profile or {}).get("features", {})
        self.inputs = [
            found
            for col, feature in enumerate(signature.inputs)
            if feature.actionable
            and (found := _candidates(col, feature, features.get(feature.name))) is not None
        ]
        self.names = tuple(f.name for f in signature.inputs)

    @property
    def actionable(self) -> list[str]:
        return [self.names[i.col] for i in self.inputs]

    def search(self, x: np.ndarray, probability: float) -> dict[str, Any]:
        """The cheapest flip for one encoded row ``x`` whose P(adverse) is ``probability``."""
        if probability < self.threshold:
            return {"needed": False}
        if not self.inputs:
            return {"needed": True, "found": False, "message": "the model has no actionable inputs"}
        rows, costs, moves = self._candidates(x)
        scores = np.asarray(self.predictor.predict(rows), dtype=np.float64)
        flips = np.flatnonzero(scores < self.threshold)
        if flips.size == 0:
            return {
                "needed": True,
                "found": False,
                "message": (
                    f"no change to at most {MAX_CHANGES} of the actionable inputs "
                    f"({', '.join(self.actionable)}) within the search budget brings the "
                    f"probability below the threshold {self.threshold:g}"
                ),
            }
        best = flips[np.lexsort((scores[flips], costs[flips]))[0]]
        return {
            "needed": True,
            "found": True,
            "changes": [
                {
                    "feature": self.names[col],
                    "from": decode_value(self.signature.inputs[col], x[col]),
                    "to": decode_value(self.signature.inputs[col], v),
                }
                for col, v in moves[best]
            ],
            "probability": float(scores[best]),
            "cost": float(costs[best]),
        }

    def _candidates(
        self, x: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, list[list[tuple[int, float]]]]:
        rows: list[np.ndarray] = []
        costs: list[float] = []
        moves: list[list[tuple[int, float]]] = []
        per_input = []
        for item in self.inputs:
            values = item.values[item.values != x[item.col]]
            cost = (
                np.ones(values.size)
                if item.scale == 0
                else np.abs(values - x[item.col]) * item.scale
            )
            per_input.append((item.col, values, cost))
        for col, values, cost in per_input:
            for value, c in zip(values.tolist(), cost.tolist(), strict=True):
                rows.append(_with(x, ((col, value),)))
                costs.append(c)
                moves.append([(col, value)])
        for (col_a, values_a, cost_a), (col_b, values_b, cost_b) in itertools.combinations(
            per_input, 2
        ):
            for (va, ca), (vb, cb) in itertools.product(
                zip(values_a.tolist(), cost_a.tolist(), strict=True),
                zip(values_b.tolist(), cost_b.tolist(), strict=True),
            ):
                if len(rows) >= BUDGET:
                    break
                rows.append(_with(x, ((col_a, va), (col_b, vb))))
                costs.append(ca + cb)
                moves.append([(col_a, va), (col_b, vb)])
        return np.array(rows, dtype=np.float64), np.array(costs), moves


def _with(x: np.ndarray, changes: tuple[tuple[int, float], ...]) -> np.ndarray:
    row = x.astype(np.float64).copy()
    for col, value in changes:
        row[col] = value
    return row


def _candidates(col: int, feature: Any, stats: Mapping[str, Any] | None) -> _Input | None:
    if feature.dtype == "category":
        return _Input(col, np.arange(len(feature.categories or ()), dtype=np.float64), 0.0)
    if feature.dtype == "bool":
        return _Input(col, np.array([0.0, 1.0]), 0.0)
    if feature.dtype not in ("int", "float") or not stats or stats.get("kind") != "numeric":
        return None
    std = stats.get("std") or 0.0
    mean = stats.get("mean")
    values = list(stats.get("edges", ()))
    if mean is not None:
        values += [mean + k * std for k in (-2, -1, 0, 1, 2)]
    candidates = np.array(values, dtype=np.float64)
    if feature.min is not None:
        candidates = np.maximum(candidates, feature.min)
    if feature.max is not None:
        candidates = np.minimum(candidates, feature.max)
    if feature.dtype == "int":
        candidates = np.round(candidates)
    candidates = np.unique(candidates)
    if candidates.size == 0 or std <= 0:
        return None
    return _Input(col, candidates, 1.0 / std)
