"""Fairness figures against hand-computed examples, and the inputs they refuse."""

from __future__ import annotations

import numpy as np
import pytest

from finmaas.errors import Invalid
from finmaas.training.fairness import fairness_report

APPROVE, REJECT = 0.2, 0.8
THRESHOLD = 0.5


Data = tuple[list[str], list[int], list[float]]


def _applicants(group: str, goods: int, approved_goods: int, bads: int, approved_bads: int) -> Data:
    labels = [0] * goods + [1] * bads
    scores = (
        [APPROVE] * approved_goods
        + [REJECT] * (goods - approved_goods)
        + [APPROVE] * approved_bads
        + [REJECT] * (bads - approved_bads)
    )
    return [group] * len(labels), labels, scores


def _data(*parts: tuple[str, int, int, int, int]) -> Data:
    groups: list[str] = []
    labels: list[int] = []
    scores: list[float] = []
    for part in parts:
        g, y, p = _applicants(*part)
        groups += g
        labels += y
        scores += p
    return groups, labels, scores


def test_adverse_impact_and_gaps_match_the_hand_computed_figures() -> None:
    # A approves 60/80 goods and 6/20 bads (66%); B approves 40/80 and 4/20 (44%).
    groups, y, p = _data(("A", 80, 60, 20, 6), ("B", 80, 40, 20, 4))
    report = fairness_report("age_band", groups, y, p, THRESHOLD)
    assert report.reference == "A"
    a, b = report.groups
    assert (a.group, a.verdict, a.adverse_impact_ratio) == ("A", "reference", 1.0)
    assert (a.equal_opportunity_gap, a.adverse_impact_ci, a.equal_opportunity_ci) == (
        0.0,
        None,
        None,
    )
    assert b.group == "B"
    assert b.approval_rate == pytest.approx(0.44)
    assert b.adverse_impact_ratio == pytest.approx(0.44 / 0.66)
    assert b.verdict == "adverse impact"
    assert b.equal_opportunity_gap == pytest.approx(40 / 80 - 60 / 80)
    assert b.equalized_odds_gap == pytest.approx(-0.25)  # larger than the bads' -0.10
    assert report.flagged == ["B"]
    assert b.adverse_impact_ci is not None
    low, high = b.adverse_impact_ci
    assert low < b.adverse_impact_ratio < high


def test_a_ratio_of_four_fifths_or_more_passes() -> None:
    groups, y, p = _data(("A", 80, 50, 20, 0), ("B", 80, 40, 20, 0))  # 0.5 vs 0.4: ratio 0.8
    report = fairness_report("sex", groups, y, p, THRESHOLD)
    assert report.groups[1].adverse_impact_ratio == pytest.approx(0.8)
    assert report.groups[1].verdict == "pass"
    assert report.flagged == []


def test_small_groups_get_no_verdict_and_cannot_be_the_reference() -> None:
    groups, y, p = _data(("A", 80, 60, 20, 6), ("B", 80, 40, 20, 4), ("C", 8, 8, 2, 2))
    report = fairness_report("age_band", groups, y, p, THRESHOLD, min_group_size=30)
    assert report.reference == "A"  # C approves everyone but has only 10 applicants
    c = report.groups[2]
    assert (c.group, c.size, c.verdict) == ("C", 10, "too few")
    assert c.approval_rate == 1.0
    assert c.adverse_impact_ratio is None
    assert c.adverse_impact_ci is None
    assert c.equal_opportunity_gap is None
    assert c.equalized_odds_gap is None


def test_missing_values_form_their_own_group() -> None:
    groups, y, p = _data(("A", 40, 30, 10, 3), ("B", 40, 30, 10, 3))
    groups = [None if g == "B" else g for g in groups]
    report = fairness_report("age_band", groups, y, p, THRESHOLD)
    assert sorted(g.group for g in report.groups) == ["A", "missing"]


def test_a_reference_that_approves_nobody_leaves_the_ratio_undefined() -> None:
    groups, y, p = _data(("A", 40, 0, 10, 0), ("B", 40, 0, 10, 0))
    report = fairness_report("age_band", groups, y, p, THRESHOLD)
    assert [g.verdict for g in report.groups] == ["reference", "undefined"]
    assert report.groups[1].adverse_impact_ratio is None
    assert report.groups[1].equal_opportunity_gap == 0.0


def test_intervals_are_reproducible_and_narrow_with_more_applicants() -> None:
    small = _data(("A", 80, 60, 20, 6), ("B", 80, 40, 20, 4))
    large = _data(("A", 800, 600, 200, 60), ("B", 800, 400, 200, 40))
    first = fairness_report("g", *small, THRESHOLD, seed=7).groups[1]
    again = fairness_report("g", *small, THRESHOLD, seed=7).groups[1]
    assert first.adverse_impact_ci == again.adverse_impact_ci
    wide = fairness_report("g", *small, THRESHOLD).groups[1].equal_opportunity_ci
    narrow = fairness_report("g", *large, THRESHOLD).groups[1].equal_opportunity_ci
    assert wide is not None
    assert narrow is not None
    assert narrow[1] - narrow[0] < (wide[1] - wide[0]) / 2
    assert narrow[0] < -0.25 < narrow[1]


def test_the_report_is_json_ready() -> None:
    groups, y, p = _data(("A", 80, 60, 20, 6), ("B", 80, 40, 20, 4))
    data = fairness_report("age_band", groups, y, p, THRESHOLD).to_json()
    assert data["protected"] == "age_band"
    assert data["flagged"] == ["B"]
    assert data["groups"][1]["verdict"] == "adverse impact"
    assert len(data["groups"][1]["adverse_impact_ci"]) == 2


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"groups": ["A", "B", "A"]},
            "protected column 'age_band' must have one value per applicant, got 3 for 4",
        ),
        ({"min_group_size": 0}, "min_group_size must be an integer from 1 to 1000000, got 0"),
        ({"draws": 10}, "draws must be an integer from 100 to 100000, got 10"),
        ({"threshold": 2}, "threshold must be a number in [0, 1], got 2"),
        ({"y_true": [0, 1, 2, 0]}, "y_true must hold binary labels 0 and 1, got 2"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(kwargs: dict[str, object], message: str) -> None:
    arguments: dict[str, object] = {
        "groups": ["A", "B", "A", "B"],
        "y_true": [0, 1, 0, 1],
        "p_bad": np.array([0.1, 0.9, 0.2, 0.7]),
        "threshold": THRESHOLD,
    } | kwargs
    with pytest.raises(Invalid) as raised:
        fairness_report("age_band", **arguments)  # type: ignore[arg-type]
    assert str(raised.value) == message
