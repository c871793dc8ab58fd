"""From model scores to what a client reads: probability, label, score.

For ``binary`` versions the model returns P(positive class), the adverse
outcome for credit models (``classes[1]``, e.g. ``bad``). The label is the
positive class when the probability reaches the version's decision threshold:
``params["decision_threshold"]`` if the version has one, else the CV
cost-optimal cut-off recorded as ``metrics["threshold"]``, else 0.5.

``score`` is the conventional scorecard scale: 600 points at good:bad odds of
50:1, and 20 more points each time the odds double (PDO 20). Higher is better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finmaas.schema.signature import ModelSignature

SCORE_BASE = 600.0
SCORE_BASE_ODDS = 50.0
SCORE_PDO = 20.0
_FACTOR = SCORE_PDO / math.log(2.0)
_OFFSET = SCORE_BASE - _FACTOR * math.log(SCORE_BASE_ODDS)
_EPS = 1e-9


@dataclass(frozen=True)
class DecisionRule:
    """How one version's scores become outputs; built once per loaded version."""

    task: str
    classes: tuple[str, ...]
    threshold: float

    @classmethod
    def of(
        cls, signature: ModelSignature, metrics: Mapping[str, Any], params: Mapping[str, Any]
    ) -> DecisionRule:
        """The rule of a version with this signature, metrics and params."""
        threshold = decision_threshold(metrics, params)
        return cls(signature.task, tuple(signature.classes or ()), threshold)

    def outputs(self, scores: np.ndarray) -> dict[str, np.ndarray]:
        """Named output arrays (V2 tensors): probability/label/score or value."""
        if self.task == "regression":
            return {"value": scores}
        if self.task == "binary":
            positive = scores >= self.threshold
            labels = np.where(positive, self.classes[1], self.classes[0]).astype(object)
            return {"probability": scores, "label": labels, "score": credit_score(scores)}
        labels = np.asarray(self.classes, dtype=object)[np.argmax(scores, axis=1)]
        return {"probability": scores, "label": labels}

    def decisions(self, scores: np.ndarray) -> list[tuple[float, str]]:
        """Per row, the output a decision record keeps and the decision: P(positive) and
        the label (binary), the top probability and its label (multiclass), or the value."""
        if self.task == "regression":
            return [(v, f"{v:.6g}") for v in scores.tolist()]
        if self.task == "binary":
            low, high = self.classes[0], self.classes[1]
            return [(p, high if p >= self.threshold else low) for p in scores.tolist()]
        best = np.argmax(scores, axis=1)
        top = scores[np.arange(len(best)), best]
        return [(p, self.classes[i]) for p, i in zip(top.tolist(), best.tolist(), strict=True)]

    def records(self, scores: np.ndarray) -> list[dict[str, object]]:
        """One JSON-ready dict per row (V1 predictions, MLflow responses)."""
        if self.task == "regression":
            return [{"value": float(v)} for v in scores.tolist()]
        if self.task == "binary":
            low, high = self.classes[0], self.classes[1]
            threshold = self.threshold
            return [
                {"probability": p, "label": high if p >= threshold else low, "score": _points(p)}
                for p in scores.tolist()
            ]
        out: list[dict[str, object]] = []
        for row in scores.tolist():
            best = max(range(len(row)), key=row.__getitem__)
            out.append(
                {
                    "probabilities": dict(zip(self.classes, row, strict=True)),
                    "label": self.classes[best],
                }
            )
        return out


def decision_threshold(metrics: Mapping[str, Any], params: Mapping[str, Any]) -> float:
    """``params["decision_threshold"]``, else ``metrics["threshold"]``, else 0.5."""
    threshold = params.get("decision_threshold", metrics.get("threshold", 0.5))
    if not isinstance(threshold, int | float) or not 0.0 <= float(threshold) <= 1.0:
        return 0.5
    return float(threshold)


def _points(p_bad: float) -> float:
    """:func:`credit_score` of one probability, without numpy's per-call overhead."""
    p = min(max(p_bad, _EPS), 1.0 - _EPS)
    return round(_OFFSET + _FACTOR * math.log((1.0 - p) / p), 1)


def credit_score(p_bad: np.ndarray) -> np.ndarray:
    """Scorecard points from P(bad), rounded to one decimal."""
    p = np.clip(p_bad, _EPS, 1.0 - _EPS)
    points: np.ndarray = np.round(_OFFSET + _FACTOR * np.log((1.0 - p) / p), 1)
    return points
