"""How fairness reads in model cards: age bands as ``19–27`` (pandas wrote
``(18.999, 27.0]``) and intervals as ``[-0.317, -0.123]`` (they read
``-0.317--0.123``)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from finmaas.publish.model_cards import CardContext, build_model_card
from finmaas.schema import Feature, ModelSignature
from finmaas.training.fairness import fairness_report
from finmaas.training.runs import _groups, band_label


def test_whole_number_bands_read_as_their_first_and_last_values() -> None:
    ages = pd.Series(np.r_[np.arange(19, 76), np.arange(19, 40), [np.nan]])
    groups = _groups(ages)
    assert groups[-1] is None  # a missing age stays missing
    labels = sorted(set(groups[:-1]), key=lambda label: int(label.split("–")[0]))
    assert labels[0].startswith("19–")
    assert labels[-1].endswith("–75")
    for lower, upper in itertools.pairwise(labels):  # adjacent, no gap, no overlap
        assert int(upper.split("–")[0]) == int(lower.split("–")[1]) + 1
    assert not any("(" in label or "]" in label or "." in label for label in labels)


@pytest.mark.parametrize(
    ("interval", "whole", "lowest", "label"),
    [
        (pd.Interval(18.999, 27.0), True, 19, "19–27"),
        (pd.Interval(27.0, 33.0), True, 19, "28–33"),
        (pd.Interval(33.0, 34.0), True, 19, "34"),
        (pd.Interval(0.499, 25.25), False, 0.5, "0.5–25.25"),
        (pd.Interval(25.25, 50.0), False, 0.5, "25.25–50"),
    ],
)
def test_band_label(interval: pd.Interval, whole: bool, lowest: float, label: str) -> None:
    assert band_label(interval, whole=whole, lowest=lowest) == label


def test_a_card_writes_intervals_in_brackets() -> None:
    rng = np.random.default_rng(0)
    groups = np.repeat(["19–27", "43–75"], 200)
    y = rng.integers(0, 2, 400)
    p_bad = np.r_[rng.uniform(0.3, 1.0, 200), rng.uniform(0.0, 0.7, 200)]
    report = fairness_report("age_in_years", groups, y, p_bad, 0.5, seed=1)
    signature = ModelSignature(
        task="binary",
        classes=("good", "bad"),
        positive_class="bad",
        inputs=(Feature(name="x", dtype="float"),),
    )
    card = build_model_card(
        "m",
        signature=signature,
        metrics={},
        params={},
        lineage={},
        context=CardContext(fairness=[report.to_json()]),
    )
    row = next(line for line in card.splitlines() if line.startswith("| 19–27 |"))
    ratio, gap = row.split(" | ")[3:5]
    assert ratio.count("[") == 1
    assert ratio.endswith("]")
    assert ", " in ratio
    assert gap.startswith("-0.")
    assert "--" not in gap
    low, high = (float(v) for v in gap[gap.index("[") + 1 : -1].split(", "))
    assert low < high < 0
