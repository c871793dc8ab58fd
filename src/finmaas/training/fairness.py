"""Fairness of credit decisions across the groups of a protected attribute.

Decisions are those of :mod:`finmaas.training.metrics`: an applicant is
**approved** when ``p_bad < threshold``. Labels are ``1`` for bad, ``0`` for
good. For each group of the protected column (an age band, say):

* **approval rate**, and the **adverse-impact ratio**: the group's approval
  rate over the most-favoured group's (the reference: the highest approval
  rate among the groups large enough to judge). A ratio below 0.8 is flagged
  (the four-fifths rule of the US Uniform Guidelines on Employee Selection
  Procedures, used the same way in fair-lending reviews).
* **equal-opportunity gap**: the group's approval rate among good applicants
  minus the reference group's (goods should be approved alike).
* **equalised-odds gap**: the larger, in absolute value, of that gap and the
  same gap among bad applicants.

Each figure but the reference group's own (1 and 0 by definition) has a 95%
percentile bootstrap interval. The bootstrap resamples
every group × label stratum on its own; the approvals in a resample of ``n``
applicants with approval share ``p`` are Binomial(n, p), so they are drawn as
such, ``draws`` times, from a seeded generator (the same data gives the same
interval). A group with fewer than ``min_group_size`` applicants gets no
figures and the verdict ``too few``: small groups drift by chance.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from finmaas.errors import Invalid
from finmaas.training.metrics import _check_scored, _check_threshold, check_int

FOUR_FIFTHS = 0.8
"""An adverse-impact ratio below this is flagged."""
DEFAULT_MIN_GROUP_SIZE = 30
DEFAULT_DRAWS = 2000

Verdict = Literal["reference", "pass", "adverse impact", "too few", "undefined"]
"""``undefined``: the reference group approves nobody, so no ratio exists."""
Interval = tuple[float, float]


@dataclass(frozen=True)
class GroupFairness:
    """One group's figures against the reference group (None where undefined)."""

    group: str
    size: int
    goods: int
    bads: int
    approval_rate: float
    adverse_impact_ratio: float | None
    adverse_impact_ci: Interval | None
    equal_opportunity_gap: float | None
    equal_opportunity_ci: Interval | None
    equalized_odds_gap: float | None
    equalized_odds_ci: Interval | None
    verdict: Verdict


@dataclass(frozen=True)
class FairnessReport:
    protected: str
    threshold: float
    min_group_size: int
    reference: str | None
    """The most-favoured group; None when no group is large enough."""
    groups: tuple[GroupFairness, ...]

    @property
    def flagged(self) -> list[str]:
        """Groups whose adverse-impact ratio is below four fifths."""
        return [g.group for g in self.groups if g.verdict == "adverse impact"]

    def to_json(self) -> dict[str, Any]:
        return asdict(self) | {"flagged": self.flagged}


@dataclass(frozen=True)
class _Counts:
    """Applicants and approvals of one group, split by label (index 0 good, 1 bad)."""

    size: NDArray[np.int64]
    approved: NDArray[np.int64]

    def draws(self, rng: np.random.Generator, n: int) -> NDArray[np.int64]:
        """Bootstrap approvals per label: shape (2, n)."""
        share = np.divide(self.approved, self.size, out=np.zeros(2), where=self.size > 0)
        return rng.binomial(self.size[:, None], share[:, None], size=(2, n))


def fairness_report(
    protected: str,
    groups: ArrayLike,
    y_true: ArrayLike,
    p_bad: ArrayLike,
    threshold: float,
    *,
    min_group_size: int = DEFAULT_MIN_GROUP_SIZE,
    draws: int = DEFAULT_DRAWS,
    seed: int = 0,
) -> FairnessReport:
    """Fairness of approving ``p_bad < threshold``, per group of ``groups``
    (the protected column's values, one per applicant; missing values form the
    group ``"missing"``). Groups are listed largest first."""
    y, p = _check_scored(y_true, p_bad)
    _check_threshold(threshold)
    check_int("min_group_size", min_group_size, 1, 1_000_000)
    check_int("draws", draws, 100, 100_000)
    labels = _group_labels(groups, y.size, protected)
    names, group_of = np.unique(labels, return_inverse=True)
    cell = group_of * 2 + (y == 1)  # group × label (0 good, 1 bad)
    sizes = np.bincount(cell, minlength=2 * names.size).reshape(-1, 2)
    approvals = np.bincount(cell[p < threshold], minlength=2 * names.size).reshape(-1, 2)
    order = sorted(range(names.size), key=lambda i: (-int(sizes[i].sum()), str(names[i])))
    counts = {str(names[i]): _Counts(sizes[i], approvals[i]) for i in order}

    judged = {name: c for name, c in counts.items() if int(c.size.sum()) >= min_group_size}
    reference = max(judged, key=lambda g: _rate(judged[g]), default=None)
    rng = np.random.default_rng(seed)
    drawn = {name: c.draws(rng, draws) for name, c in judged.items()}

    results = []
    for name, c in counts.items():
        size = int(c.size.sum())
        base = dict(group=name, size=size, goods=int(c.size[0]), bads=int(c.size[1]))
        if reference is None or name not in judged:
            results.append(_too_few(base, _rate(c)))
            continue
        results.append(
            _judged(base, c, counts[reference], drawn[name], drawn[reference], name == reference)
        )
    return FairnessReport(protected, float(threshold), min_group_size, reference, tuple(results))


def _group_labels(groups: ArrayLike, n: int, protected: str) -> NDArray[np.str_]:
    values = np.asarray(groups, dtype=object)
    if values.ndim != 1:
        raise Invalid(
            f"protected column {protected!r} must be one-dimensional, got shape {values.shape}"
        )
    if values.size != n:
        raise Invalid(
            f"protected column {protected!r} must have one value per applicant, "
            f"got {values.size} for {n}"
        )
    return np.array(["missing" if pd.isna(v) else str(v) for v in values.tolist()], dtype=str)


def _rate(c: _Counts) -> float:
    size = int(c.size.sum())
    return float(c.approved.sum()) / size if size else 0.0


def _too_few(base: dict[str, Any], rate: float) -> GroupFairness:
    return GroupFairness(
        **base,
        approval_rate=rate,
        adverse_impact_ratio=None,
        adverse_impact_ci=None,
        equal_opportunity_gap=None,
        equal_opportunity_ci=None,
        equalized_odds_gap=None,
        equalized_odds_ci=None,
        verdict="too few",
    )


def _judged(
    base: dict[str, Any],
    c: _Counts,
    ref: _Counts,
    drawn: NDArray[np.int64],
    ref_drawn: NDArray[np.int64],
    is_reference: bool,
) -> GroupFairness:
    rate, ref_rate = _rate(c), _rate(ref)
    rates = drawn.sum(axis=0) / c.size.sum()
    ref_rates = ref_drawn.sum(axis=0) / ref.size.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        ratios = rates / ref_rates
        good_gap = drawn[0] / c.size[0] - ref_drawn[0] / ref.size[0]
        bad_gap = drawn[1] / c.size[1] - ref_drawn[1] / ref.size[1]
    good = _gap(c, ref, 0)
    bad = _gap(c, ref, 1)
    odds = None if good is None or bad is None else max(good, bad, key=abs)
    odds_draws = np.where(np.abs(good_gap) >= np.abs(bad_gap), good_gap, bad_gap)
    ratio = rate / ref_rate if ref_rate > 0 else None
    if is_reference:
        verdict: Verdict = "reference"
    elif ratio is None:
        verdict = "undefined"
    else:
        verdict = "adverse impact" if ratio < FOUR_FIFTHS else "pass"
    return GroupFairness(
        **base,
        approval_rate=rate,
        adverse_impact_ratio=ratio,
        adverse_impact_ci=None if ratio is None or is_reference else _interval(ratios),
        equal_opportunity_gap=good,
        equal_opportunity_ci=None if good is None or is_reference else _interval(good_gap),
        equalized_odds_gap=odds,
        equalized_odds_ci=None if odds is None or is_reference else _interval(odds_draws),
        verdict=verdict,
    )


def _gap(c: _Counts, ref: _Counts, label: int) -> float | None:
    """Approval rate among one label, this group's minus the reference's."""
    if c.size[label] == 0 or ref.size[label] == 0:
        return None
    return float(c.approved[label] / c.size[label] - ref.approved[label] / ref.size[label])


def _interval(values: NDArray[np.float64]) -> Interval | None:
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return None
    low, high = np.percentile(finite, [2.5, 97.5])
    return float(low), float(high)
