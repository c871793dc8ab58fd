"""Reference profiles: the population a version was built on, in bins.

Captured at registration from a sample; monitoring compares live traffic to it
(PSI/CSI). Numeric features and the score get up to 10 equal-frequency bins cut
on the sample; categorical features get their level frequencies, with levels
rarer than ``rare_share`` merged into one ``__other__`` bin.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from finmaas.schema.signature import ModelSignature

OTHER = "__other__"
MISSING = "__missing__"


class NumericBins(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["numeric"] = "numeric"
    edges: tuple[float, ...]
    """Inner cut points; bin i holds values in (edges[i-1], edges[i]]."""
    shares: tuple[float, ...]
    """Share of the sample in each of the len(edges)+1 bins."""
    missing_share: float = 0.0
    mean: float | None = None
    std: float | None = None


class CategoryBins(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["category"] = "category"
    levels: tuple[str, ...]
    """Kept levels, then ``__other__`` when rare levels were merged."""
    shares: tuple[float, ...]
    merged: tuple[str, ...] = ()
    missing_share: float = 0.0


class ReferenceProfile(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    rows: int
    features: dict[str, Annotated[NumericBins | CategoryBins, Field(discriminator="kind")]]
    score: NumericBins | None = None


def numeric_bins(values: np.ndarray, n_bins: int = 10) -> NumericBins:
    values = np.asarray(values, dtype=np.float64)
    present = values[~np.isnan(values)]
    missing_share = 1.0 - present.size / values.size if values.size else 0.0
    if present.size == 0:
        return NumericBins(edges=(), shares=(1.0 - missing_share,), missing_share=missing_share)
    quantiles = np.quantile(present, np.linspace(0, 1, n_bins + 1)[1:-1])
    edges = np.unique(quantiles)
    counts = np.bincount(np.searchsorted(edges, present, side="left"), minlength=edges.size + 1)
    return NumericBins(
        edges=tuple(float(e) for e in edges),
        shares=tuple(float(c) for c in counts / values.size),
        missing_share=float(missing_share),
        mean=float(present.mean()),
        std=float(present.std()),
    )


def category_bins(codes: np.ndarray, levels: tuple[str, ...], rare_share: float) -> CategoryBins:
    codes = np.asarray(codes, dtype=np.float64)
    missing = np.isnan(codes)
    counts = np.bincount(codes[~missing].astype(np.int64), minlength=len(levels))
    total = max(codes.size, 1)
    shares = counts / total
    kept = [i for i, share in enumerate(shares) if share >= rare_share]
    rare = [i for i, share in enumerate(shares) if share < rare_share]
    out_levels = [levels[i] for i in kept]
    out_shares = [float(shares[i]) for i in kept]
    if rare:
        out_levels.append(OTHER)
        out_shares.append(float(shares[rare].sum()))
    return CategoryBins(
        levels=tuple(out_levels),
        shares=tuple(out_shares),
        merged=tuple(levels[i] for i in rare),
        missing_share=float(missing.sum() / total),
    )


def build_reference_profile(
    signature: ModelSignature,
    encoded: np.ndarray,
    scores: np.ndarray | None = None,
    *,
    n_bins: int = 10,
    rare_share: float = 0.01,
) -> ReferenceProfile:
    """Profile an encoded sample (see :func:`finmaas.schema.encode_frame`)."""
    features: dict[str, NumericBins | CategoryBins] = {}
    for col, feature in enumerate(signature.inputs):
        if feature.dtype == "string":
            continue
        column = np.asarray(encoded[:, col], dtype=np.float64)
        if feature.dtype == "category":
            features[feature.name] = category_bins(column, feature.categories or (), rare_share)
        else:
            features[feature.name] = numeric_bins(column, n_bins)
    score = None
    if scores is not None:
        flat = np.asarray(scores, dtype=np.float64)
        score = numeric_bins(flat if flat.ndim == 1 else flat.max(axis=1), n_bins)
    return ReferenceProfile(rows=int(encoded.shape[0]), features=features, score=score)
