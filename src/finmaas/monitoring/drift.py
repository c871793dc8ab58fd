"""Population stability: PSI of the score and CSI of each input, against the reference.

Both indices compare two distributions over the same bins, the reference
shares ``e`` captured at registration and the live shares ``a``::

    PSI = Σ_i (a_i - e_i) · ln(a_i / e_i)

(CSI is the same formula on one input's bins.) A bin with no rows on one side
would make the logarithm infinite, so shares are floored at ``EPSILON``
(0.0001) before the sum. The usual bands: below 0.10 stable, 0.10 to 0.25
watch, 0.25 and above alert.

An index depends on the sample size (a few hundred live rows drift by chance),
so each one comes with a chi-square goodness-of-fit test of the live bin
counts against the reference shares: a small p-value says the difference is
not chance; a large index with a large p-value says there are too few rows to
tell. Below a minimum count of rows (``drift_min_rows``, 100 by default) there is
no index at all: one or two rows against ten equal bins give a PSI of 6.8 to
8.3 whatever the population, and an alert on that is noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

EPSILON = 1e-4
WATCH = 0.10
ALERT = 0.25

Band = Literal["stable", "watch", "alert"]


@dataclass(frozen=True)
class Thresholds:
    watch: float = WATCH
    alert: float = ALERT

    def band(self, index: float) -> Band:
        if index >= self.alert:
            return "alert"
        if index >= self.watch:
            return "watch"
        return "stable"


def psi(expected: np.ndarray, actual: np.ndarray, epsilon: float = EPSILON) -> float:
    """PSI (or CSI) of two share vectors over the same bins; each should sum to 1."""
    e = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    a = np.maximum(np.asarray(actual, dtype=np.float64), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def chi_square_p(expected: np.ndarray, counts: np.ndarray, epsilon: float = EPSILON) -> float:
    """p-value of the live ``counts`` being drawn from the ``expected`` shares."""
    observed = np.asarray(counts, dtype=np.float64)
    total = observed.sum()
    if total == 0:
        return math.nan
    shares = np.maximum(np.asarray(expected, dtype=np.float64), epsilon)
    shares = shares / shares.sum()
    from scipy import stats  # on first use: a server worker imports this module at start

    result = stats.chisquare(observed, shares * total)
    return float(result.pvalue)


@dataclass(frozen=True)
class Drift:
    """The drift of one input (or the score) over a window of live rows."""

    name: str
    index: float
    """PSI for the score, CSI for an input; NaN below the minimum count of live rows."""
    band: Band | None
    p_value: float
    rows: int
    labels: tuple[str, ...]
    expected: tuple[float, ...]
    actual: tuple[float, ...]


def drift_of(
    name: str,
    labels: tuple[str, ...],
    expected: np.ndarray,
    counts: np.ndarray,
    thresholds: Thresholds,
    *,
    min_rows: int = 1,
) -> Drift:
    """The drift of ``counts`` from ``expected``; no index (NaN) below ``min_rows`` rows."""
    total = int(counts.sum())
    if total == 0:
        return Drift(name, math.nan, None, math.nan, 0, labels, tuple(expected.tolist()), ())
    actual = counts / total
    if total < min_rows:
        return Drift(
            name,
            math.nan,
            None,
            math.nan,
            total,
            labels,
            tuple(float(v) for v in expected),
            tuple(float(v) for v in actual),
        )
    index = psi(expected, actual)
    return Drift(
        name=name,
        index=index,
        band=thresholds.band(index),
        p_value=chi_square_p(expected, counts),
        rows=total,
        labels=labels,
        expected=tuple(float(v) for v in expected),
        actual=tuple(float(v) for v in actual),
    )
