"""The explanation profile: what a version's explanations are measured against.

Built at registration from the reference sample and stored with the version:
the method, the reference population and the mean contribution of each input
over it (so served contributions are centred on that population), the global
importance of each input, and the reason-code texts.

Reference populations (the two that Regulation B's commentary accepts for
adverse-action reasons):

* ``sample``: the whole reference sample;
* ``cutoff``: the applicants at or just above the approval cut-off, i.e. the
  approved rows (P(adverse) below the version's threshold) closest to it:
  the 10% of approved rows with the highest P(adverse), and at least 30.

Contributions of a row are ``phi(x) - mean over the reference of phi``, so
``base_value`` (the mean margin over the reference population) plus their sum
is the row's margin, exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from finmaas.errors import Invalid
from finmaas.explain.methods import (
    Method,
    additive_method,
    anchor_row,
    antithetic_permutations,
    is_additive,
    margin,
    sampled_method,
    tree_method,
)
from finmaas.runtimes.base import Predictor
from finmaas.schema import ModelSignature

Reference = Literal["sample", "cutoff"]
REFERENCES: tuple[Reference, ...] = ("sample", "cutoff")
MIN_CUTOFF_ROWS = 30
MAX_REASON_TEXT = 200
_PROBE_ROWS = 200
BACKGROUND_ROWS = 16
PERMUTATIONS = 8
"""The sampled method's budget: each explained row costs 8 × 16 × (inputs + 1) evaluations."""
_SAMPLED_IMPORTANCE_ROWS = 100
MAX_ROWS = 10_000
"""Reference rows the profile is measured on (the first ones of the sample)."""


class ExplanationProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    method: Method | None
    """``None``: the model is neither a tree ensemble nor additive."""
    reference: Reference
    reference_rows: int = Field(ge=0)
    base_value: float
    """Mean margin over the reference population."""
    mean_contributions: tuple[float, ...]
    """Per input, in signature order: the raw contributions' mean over the reference."""
    global_importance: dict[str, float]
    """Mean |contribution| per input over the whole reference sample."""
    anchor: tuple[float | None, ...] | None = None
    """The additive method's anchor row (None for missing values)."""
    background: tuple[tuple[float | None, ...], ...] | None = None
    """The sampled method's background: each input drawn on its own from the reference
    population, so no row is any applicant's."""
    permutations: int = 0
    """The sampled method's permutations per explained row."""
    reason_texts: dict[str, str]


def default_reason_text(name: str) -> str:
    """``duration_in_month`` → ``Duration in month``."""
    words = name.replace("_", " ").replace("-", " ").split()
    text = " ".join(words) or name
    return text[:1].upper() + text[1:]


def check_reason_texts(signature: ModelSignature, texts: Mapping[str, object]) -> dict[str, str]:
    """Registered reason texts: one per input at most, 1-200 characters each."""
    names = {f.name for f in signature.inputs}
    out: dict[str, str] = {}
    for name, text in texts.items():
        if name not in names:
            raise Invalid(f"reason code for {name[:64]!r}: the signature has no such input")
        if not isinstance(text, str) or not 0 < len(text.strip()) <= MAX_REASON_TEXT:
            raise Invalid(
                f"reason code for {name!r} must be text of 1 to {MAX_REASON_TEXT} characters"
            )
        out[name] = text.strip()
    return out


def build_explanation_profile(
    predictor: Predictor,
    signature: ModelSignature,
    encoded: np.ndarray,
    *,
    threshold: float,
    reference: str = "sample",
    reason_texts: Mapping[str, object] | None = None,
) -> ExplanationProfile:
    """Choose the method, check it on the sample and measure the reference population."""
    if reference not in REFERENCES:
        raise Invalid(f"explanation reference must be one of {', '.join(REFERENCES)}")
    if encoded.shape[0] == 0:
        raise Invalid("the reference sample has no rows")
    texts = {f.name: default_reason_text(f.name) for f in signature.inputs}
    texts.update(check_reason_texts(signature, reason_texts or {}))
    names = [f.name for f in signature.inputs]
    empty = ExplanationProfile(
        method=None,
        reference="sample",
        reference_rows=0,
        base_value=0.0,
        mean_contributions=(),
        global_importance={},
        reason_texts=texts,
    )
    if signature.task == "multiclass" or any(f.dtype == "string" for f in signature.inputs):
        return empty
    x = encoded[:MAX_ROWS].astype(np.float64)
    population = _population(predictor, signature, x, reference, threshold)
    k = len(names)
    method: Method = "tree_shap"
    anchor = None
    contribute = tree_method(predictor, signature)
    if contribute is None:
        anchor = anchor_row(x, signature)
        contribute = additive_method(predictor, signature, anchor)
        method = "additive"
        if not is_additive(predictor, signature, contribute, x[:_PROBE_ROWS]):
            return _sampled_profile(predictor, signature, x, population, reference, texts)
    raw = contribute(x)
    mean = raw[population, :k].mean(axis=0)
    centred = raw[:, :k] - mean
    return ExplanationProfile(
        method=method,
        reference=reference,
        reference_rows=int(population.sum()),
        base_value=float(margin(predictor, signature, x[population]).mean()),
        mean_contributions=tuple(float(v) for v in mean),
        global_importance=_importance(names, centred),
        anchor=None if anchor is None else _row(anchor),
        reason_texts=texts,
    )


def _sampled_profile(
    predictor: Predictor,
    signature: ModelSignature,
    x: np.ndarray,
    population: np.ndarray,
    reference: str,
    texts: dict[str, str],
) -> ExplanationProfile:
    rng = np.random.default_rng(0)
    rows = x[population]
    columns = [rows[rng.integers(0, len(rows), BACKGROUND_ROWS), j] for j in range(x.shape[1])]
    background = np.column_stack(columns)
    contribute = sampled_method(
        predictor, signature, background, antithetic_permutations(x.shape[1], PERMUTATIONS)
    )
    raw = contribute(x[:_SAMPLED_IMPORTANCE_ROWS])
    names = [f.name for f in signature.inputs]
    return ExplanationProfile(
        method="sampled",
        reference=reference,
        reference_rows=int(population.sum()),
        base_value=float(raw[0, -1]),
        mean_contributions=(),
        global_importance=_importance(names, raw[:, :-1]),
        background=tuple(_row(row) for row in background),
        permutations=PERMUTATIONS,
        reason_texts=texts,
    )


def _importance(names: list[str], contributions: np.ndarray) -> dict[str, float]:
    means = np.abs(contributions).mean(axis=0)
    return {name: float(v) for name, v in zip(names, means, strict=True)}


def _row(values: np.ndarray) -> tuple[float | None, ...]:
    return tuple(None if np.isnan(v) else float(v) for v in values)


def _population(
    predictor: Predictor,
    signature: ModelSignature,
    x: np.ndarray,
    reference: str,
    threshold: float,
) -> np.ndarray:
    """A boolean mask of the reference rows the contributions are measured against."""
    everyone = np.ones(x.shape[0], dtype=bool)
    if reference == "sample":
        return everyone
    if signature.task != "binary":
        raise Invalid("the 'cutoff' reference needs a binary model with a decision threshold")
    scores = np.asarray(predictor.predict(x), dtype=np.float64)
    approved = np.flatnonzero(scores < threshold)
    if approved.size == 0:
        raise Invalid(
            f"no reference row is approved at the threshold {threshold:g}; "
            "use the 'sample' reference"
        )
    count = min(approved.size, max(MIN_CUTOFF_ROWS, approved.size // 10))
    nearest = approved[np.argsort(scores[approved])[::-1][:count]]
    mask = np.zeros(x.shape[0], dtype=bool)
    mask[nearest] = True
    return mask
