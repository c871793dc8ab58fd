"""Live bin counts per version: what the served population looks like, cheaply.

The serving path only appends a reference to each batch the model scored
(:meth:`LiveCounts.add`, called by the batcher once per model call, not per
request); :meth:`LiveCounts.count`, called off the request path every few
seconds, bins everything pending at once, vectorised over thousands of rows.
Bins are exactly the reference profile's: the same edges for numbers, the same
kept levels (and ``__other__``) for categories, plus a ``missing`` bin for
nulls; the score is binned like any input.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finmaas.schema import ModelSignature
from finmaas.schema.profile import OTHER, CategoryBins, NumericBins, ReferenceProfile

SCORE = "__score__"
"""The name under which the score's bins are counted."""
MISSING_BIN = "missing"


@dataclass(frozen=True)
class Binning:
    """How one input (or the score) is binned, and its reference shares per bin."""

    name: str
    labels: tuple[str, ...]
    expected: np.ndarray
    column: int | None
    """Column of the encoded matrix; None for the score."""
    edges: np.ndarray | None = None
    lookup: np.ndarray | None = None
    """Category code → bin (categories only)."""

    def bins(self, values: np.ndarray) -> np.ndarray:
        values = np.asarray(values, dtype=np.float64)
        missing = np.isnan(values)
        out = np.full(values.shape[0], len(self.labels) - 1, dtype=np.int64)
        present = values[~missing]
        if self.edges is not None:
            out[~missing] = np.searchsorted(self.edges, present, side="left")
        else:
            assert self.lookup is not None
            out[~missing] = self.lookup[present.astype(np.int64)]
        return out


def binnings_of(signature: ModelSignature, profile: Mapping[str, Any] | None) -> list[Binning]:
    """One binning per profiled input, then the score's; none without a profile."""
    if profile is None:
        return []
    reference = ReferenceProfile.model_validate(profile)
    out = []
    for col, feature in enumerate(signature.inputs):
        bins = reference.features.get(feature.name)
        if isinstance(bins, NumericBins):
            out.append(_numeric(feature.name, bins, col))
        elif isinstance(bins, CategoryBins):
            out.append(_category(feature.name, bins, col, feature.categories or ()))
    if reference.score is not None:
        out.append(_numeric(SCORE, reference.score, None))
    return out


def _numeric(name: str, bins: NumericBins, column: int | None) -> Binning:
    edges = np.asarray(bins.edges, dtype=np.float64)
    bounds = ["-inf", *(f"{e:g}" for e in edges), "inf"]
    labels = tuple(f"({lo}, {hi}]" for lo, hi in itertools.pairwise(bounds))
    expected = np.array([*bins.shares, bins.missing_share], dtype=np.float64)
    return Binning(name, (*labels, MISSING_BIN), expected, column, edges=edges)


def _category(name: str, bins: CategoryBins, column: int, categories: tuple[str, ...]) -> Binning:
    position = {level: i for i, level in enumerate(bins.levels)}
    other = position.get(OTHER, len(bins.levels))
    lookup = np.array([position.get(c, other) for c in categories], dtype=np.int64)
    levels = bins.levels if OTHER in position else (*bins.levels, OTHER)
    shares = list(bins.shares) + ([] if OTHER in position else [0.0])
    expected = np.array([*shares, bins.missing_share], dtype=np.float64)
    return Binning(name, (*levels, MISSING_BIN), expected, column, lookup=lookup)


class LiveCounts:
    """Pending batches of one version, binned later by :meth:`count`.

    :meth:`add` and :meth:`take` belong to the event loop's thread (no lock
    needed); :meth:`count` does the numpy work and may run in any thread.
    """

    def __init__(self, binnings: list[Binning]) -> None:
        self.binnings = binnings
        self._pending: list[tuple[np.ndarray, np.ndarray]] = []

    def add(self, x: np.ndarray, scores: np.ndarray) -> None:
        """Remember a scored batch (no copy, no binning: O(1) on the serving path)."""
        if self.binnings:
            self._pending.append((x, scores))

    def take(self) -> list[tuple[np.ndarray, np.ndarray]]:
        pending, self._pending = self._pending, []
        return pending

    def count(self, batches: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, np.ndarray]:
        """Counts per bin of ``batches`` (empty if there are none)."""
        if not batches:
            return {}
        x = np.concatenate([batch for batch, _ in batches])
        scores = _score_column(np.concatenate([s for _, s in batches]))
        counts = {}
        for binning in self.binnings:
            column = scores if binning.column is None else x[:, binning.column]
            counts[binning.name] = np.bincount(
                binning.bins(column), minlength=len(binning.labels)
            ).astype(np.int64)
        return counts


def _score_column(scores: np.ndarray) -> np.ndarray:
    """What the reference profile binned: the score, or the top class's probability."""
    scores = np.asarray(scores, dtype=np.float64)
    return scores if scores.ndim == 1 else scores.max(axis=1)
