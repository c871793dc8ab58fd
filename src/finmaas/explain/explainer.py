"""Explanations of served decisions: contributions, reasons, and how to read them.

An :class:`Explainer` is built once per loaded version from its explanation
profile. The data plane batches :attr:`Explainer.contribute` calls across
concurrent requests like predictions, then :meth:`Explainer.rows` turns the
raw contributions into one JSON-ready explanation per row.

Reading an explanation of a binary model: ``output`` is the log-odds of the
adverse class (``classes[1]``), ``base_value`` the mean log-odds over the
reference population, and each contribution moves the log-odds by that much;
``sigmoid(output)`` is the probability served. A reason's
``probability_effect`` is how much lower that probability would be without
the contribution: ``sigmoid(output) - sigmoid(output - contribution)``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import orjson

from finmaas.errors import Invalid, NotSupported
from finmaas.explain.counterfactual import CounterfactualSearch
from finmaas.explain.methods import (
    Contribute,
    additive_method,
    antithetic_permutations,
    sampled_method,
    tree_method,
)
from finmaas.explain.profile import ExplanationProfile, default_reason_text
from finmaas.registry import ModelVersion
from finmaas.runtimes.base import Predictor
from finmaas.schema.encoding import decode_value
from finmaas.schema.output_rule import decision_threshold

DEFAULT_REASONS = 4


class Explainer:
    def __init__(self, version: ModelVersion, predictor: Predictor) -> None:
        self.signature = signature = version.signature
        self.names = tuple(f.name for f in signature.inputs)
        raw = version.explanation
        self.profile = None if raw is None else ExplanationProfile.model_validate(raw)
        self.contribute: Contribute | None = None
        self.method = ""
        self.problem = ""
        profile = self.profile
        if profile is not None and profile.method == "additive" and profile.anchor is not None:
            self.contribute = additive_method(predictor, signature, _array(profile.anchor))
            self.method = "additive"
        elif profile is not None and profile.method == "sampled" and profile.background:
            background = np.array([_array(row) for row in profile.background])
            permutations = antithetic_permutations(len(self.names), profile.permutations)
            self.contribute = sampled_method(predictor, signature, background, permutations)
            self.method = "sampled"
        elif profile is None or profile.method == "tree_shap":
            self.contribute = tree_method(predictor, signature)
            self.method = "tree_shap"
        if self.contribute is None:
            self.problem = _problem(version, profile)
        self.reference = profile.reference if profile is not None else "model"
        self.texts = (
            profile.reason_texts
            if profile is not None
            else {name: default_reason_text(name) for name in self.names}
        )
        self._mean = (
            np.asarray(profile.mean_contributions, dtype=np.float64)
            if profile is not None and profile.method in ("tree_shap", "additive")
            else None
        )
        self.exact = self.method != "sampled"
        self._binary = signature.task == "binary"
        self.counterfactuals = (
            CounterfactualSearch(
                signature,
                predictor,
                decision_threshold(version.metrics, version.params),
                version.reference_profile,
            )
            if self._binary
            else None
        )

    def check(self) -> Contribute:
        """The contribution function, or 501 saying why this version has none."""
        if self.contribute is None:
            raise NotSupported(self.problem)
        return self.contribute

    def counterfactual(self, x: np.ndarray, scores: np.ndarray) -> list[dict[str, Any]]:
        """For each row, the cheapest flip of an adverse decision (see :mod:`.counterfactual`).

        Scores candidate rows with the model: call it off the event loop.
        """
        search = self.counterfactuals
        if search is None:
            raise NotSupported(
                f"counterfactuals need a binary model; this one is {self.signature.task}"
            )
        return [search.search(x[row], float(scores[row])) for row in range(x.shape[0])]

    def check_reasons(self, count: int | None) -> int:
        most = len(self.names)
        if count is None:
            return min(DEFAULT_REASONS, most)
        if not 1 <= count <= most:
            raise Invalid(f"reasons must be a whole number from 1 to {most}, got {count}")
        return count

    def rows(self, raw: np.ndarray, x: np.ndarray, reasons: int) -> list[dict[str, Any]]:
        """One explanation per row from ``contribute(x)``'s output."""
        k = len(self.names)
        phi = raw[:, :k] if self._mean is None else raw[:, :k] - self._mean
        if self.profile is not None and self._mean is not None:
            base = np.full(raw.shape[0], self.profile.base_value)
        else:
            base = raw[:, k]
        output = base + phi.sum(axis=1)
        out = []
        for row in range(raw.shape[0]):
            contributions = phi[row].tolist()
            margin = float(output[row])
            explanation: dict[str, Any] = {
                "method": self.method,
                "exact": self.exact,
                "reference": self.reference,
                "base_value": float(base[row]),
                "output": margin,
                "contributions": dict(zip(self.names, contributions, strict=True)),
                "reasons": self._reasons(contributions, x[row], margin, reasons),
            }
            out.append(explanation)
        return out

    def tensors(self, rows: list[dict[str, Any]]) -> dict[str, np.ndarray]:
        """V2 outputs of :meth:`rows`: ``contributions`` (n, inputs in signature order),
        ``base_value`` and ``explanation`` (each row's explanation as JSON text, as V1
        gives it)."""
        contributions = np.array([list(r["contributions"].values()) for r in rows])
        explanation = np.empty(len(rows), dtype=object)
        explanation[:] = [orjson.dumps(r).decode() for r in rows]
        return {
            "contributions": contributions.reshape(len(rows), len(self.names)),
            "base_value": np.array([r["base_value"] for r in rows], dtype=np.float64),
            "explanation": explanation,
        }

    def _reasons(
        self, contributions: list[float], x: np.ndarray, margin: float, count: int
    ) -> list[dict[str, Any]]:
        """The inputs that push hardest towards the adverse outcome (higher output)."""
        order = sorted(range(len(contributions)), key=lambda j: -contributions[j])
        reasons = []
        for j in order[:count]:
            value = contributions[j]
            if value <= 0.0:
                break
            name = self.names[j]
            reason: dict[str, Any] = {
                "feature": name,
                "value": decode_value(self.signature.inputs[j], x[j]),
                "contribution": value,
                "text": self.texts.get(name, default_reason_text(name)),
            }
            if self._binary:
                reason["probability_effect"] = _sigmoid(margin) - _sigmoid(margin - value)
            reasons.append(reason)
        return reasons


def _array(values: tuple[float | None, ...]) -> np.ndarray:
    return np.array([np.nan if v is None else v for v in values], dtype=np.float64)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _problem(version: ModelVersion, profile: ExplanationProfile | None) -> str:
    what = f"model {version.model!r} version {version.version} ({version.artifact_format})"
    if version.signature.task == "multiclass":
        return f"{what}: explanations of multiclass models are not supported"
    if any(f.dtype == "string" for f in version.signature.inputs):
        return f"{what}: explanations of models with string inputs are not supported"
    if profile is None:
        return (
            f"{what} has no explanation profile: publish it with a reference sample "
            "(--reference) to explain it"
        )
    return f"{what}: no explanation method for this {version.artifact_format} model"
