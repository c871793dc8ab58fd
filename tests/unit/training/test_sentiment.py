"""The sentiment baseline on generated headlines, and the inputs it refuses."""

from __future__ import annotations

import pandas as pd
import pytest

from finmaas.datasets.headlines import generated_headlines
from finmaas.errors import Invalid
from finmaas.training.sentiment import check_labelled_texts, evaluate_sentiment


def test_generated_headlines_are_reproducible_and_balanced() -> None:
    first = generated_headlines(300, seed=3)
    assert first.equals(generated_headlines(300, seed=3))
    assert not first.equals(generated_headlines(300, seed=4))
    clean = generated_headlines(300, seed=3, noise=0.0)
    assert clean["label"].value_counts().to_dict() == {
        "positive": 100,
        "negative": 100,
        "neutral": 100,
    }


def test_the_baseline_learns_the_tone_and_reports_each_class() -> None:
    texts, labels = check_labelled_texts(generated_headlines(), "text", "label")
    report = evaluate_sentiment(texts, labels, folds=5)
    assert report.classes == ("negative", "neutral", "positive")
    assert (report.rows, report.folds) == (600, 5)
    # 10% of the labels are random: about 6.7% wrong, so a perfect reader gets ~0.93
    assert 0.85 < report.macro_f1 < 0.96
    assert 0 < report.macro_f1_sd < 0.05
    assert report.majority_macro_f1 == pytest.approx(1 / 6, abs=0.01)
    assert sum(c["support"] for c in report.per_class.values()) == 600
    assert set(report.per_class["neutral"]) == {"precision", "recall", "f1-score", "support"}
    assert report.to_json()["macro_f1"] == report.macro_f1


def test_random_labels_give_no_skill() -> None:
    frame = generated_headlines(300, seed=1, noise=1.0)  # every label drawn at random
    texts, labels = check_labelled_texts(frame, "text", "label")
    assert evaluate_sentiment(texts, labels).macro_f1 < 0.5


@pytest.mark.parametrize(
    ("frame", "message"),
    [
        (
            pd.DataFrame({"body": ["a", "b"], "label": ["x", "y"]}),
            "column 'text' not found; the columns are body, label",
        ),
        (
            pd.DataFrame({"text": ["good", "  ", "bad"], "label": ["p", "n", "p"]}),
            "column 'text' must hold non-empty text, got '  ' at row 2",
        ),
        (
            pd.DataFrame({"text": ["good", 3, "bad"], "label": ["p", "n", "p"]}),
            "column 'text' must hold non-empty text, got 3 at row 2",
        ),
        (
            pd.DataFrame({"text": ["good", "bad", "so-so"], "label": ["p", None, "p"]}),
            "column 'label' has no label at row 2",
        ),
        (
            pd.DataFrame({"text": ["a"] * 6, "label": ["p"] * 6}),
            "column 'label' must hold two classes or more, got only 'p'",
        ),
        (
            pd.DataFrame({"text": ["a"] * 8, "label": ["p"] * 5 + ["n"] * 3}),
            "class 'n' has 3 row(s), fewer than the 5 folds",
        ),
    ],
)
def test_bad_input_is_refused_before_any_training(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(Invalid) as raised:
        check_labelled_texts(frame, "text", "label")
    assert str(raised.value) == message


def test_folds_are_bounded() -> None:
    with pytest.raises(Invalid) as raised:
        evaluate_sentiment(["a", "b"], ["x", "y"], folds=1)
    assert str(raised.value) == "folds must be an integer from 2 to 20, got 1"
