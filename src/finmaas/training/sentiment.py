"""Financial text classification: TF-IDF and a linear model, cross-validated.

The baseline every text model in finmaas is compared with: word and word-pair
TF-IDF (sublinear term frequencies) into a class-balanced logistic regression.
:func:`evaluate_sentiment` reports macro-F1 over stratified folds (mean and
standard deviation), a per-class report from the pooled out-of-fold
predictions, and the macro-F1 of always answering the most frequent class,
beside it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import classification_report, f1_score
from sklearn.model_selection import StratifiedKFold
from sklearn.pipeline import Pipeline, make_pipeline

from finmaas.errors import Invalid
from finmaas.training.metrics import check_int

MAX_TEXT_CHARS = 10_000


@dataclass(frozen=True)
class SentimentReport:
    classes: tuple[str, ...]
    rows: int
    folds: int
    macro_f1: float
    macro_f1_sd: float
    per_class: dict[str, dict[str, float]]
    """precision, recall, f1 and support of each class, from out-of-fold predictions."""
    majority_macro_f1: float
    """Macro-F1 of always answering the most frequent class: the floor to beat."""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def check_labelled_texts(
    frame: pd.DataFrame, text: str, label: str, folds: int = 5
) -> tuple[list[str], list[str]]:
    """The texts and labels of ``frame``, validated: both columns present, texts
    non-empty and at most ``MAX_TEXT_CHARS``, two classes or more, each with at
    least ``folds`` rows."""
    for column in (text, label):
        if column not in frame.columns:
            raise Invalid(
                f"column {column!r} not found; the columns are {', '.join(frame.columns)}"
            )
    texts: list[str] = []
    for row, value in enumerate(frame[text].tolist(), start=1):
        if not isinstance(value, str) or not value.strip():
            raise Invalid(f"column {text!r} must hold non-empty text, got {value!r} at row {row}")
        if len(value) > MAX_TEXT_CHARS:
            raise Invalid(
                f"column {text!r} holds a text over {MAX_TEXT_CHARS} characters at row {row}"
            )
        texts.append(value)
    labels = ["" if pd.isna(v) else str(v) for v in frame[label].tolist()]
    if "" in labels:
        raise Invalid(f"column {label!r} has no label at row {labels.index('') + 1}")
    counts = pd.Series(labels).value_counts()
    if len(counts) < 2:
        raise Invalid(
            f"column {label!r} must hold two classes or more, got only {counts.index[0]!r}"
        )
    rare = counts[counts < folds]
    if len(rare):
        raise Invalid(
            f"class {rare.index[0]!r} has {int(rare.iloc[0])} row(s), fewer than the {folds} folds"
        )
    return texts, labels


def sentiment_pipeline(seed: int = 0) -> Pipeline:
    return make_pipeline(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1),
        LogisticRegression(max_iter=2000, class_weight="balanced", random_state=seed),
    )


def evaluate_sentiment(
    texts: Sequence[str], labels: Sequence[str], *, folds: int = 5, seed: int = 0
) -> SentimentReport:
    """Stratified ``folds``-fold evaluation of :func:`sentiment_pipeline`."""
    check_int("folds", folds, 2, 20)
    x = np.asarray(texts, dtype=object)
    y = np.asarray(labels, dtype=object)
    classes = tuple(sorted(set(labels)))
    predicted = np.empty(len(y), dtype=object)
    scores = []
    splitter = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in splitter.split(x, y):
        model = sentiment_pipeline(seed).fit(x[train], y[train])
        predicted[test] = model.predict(x[test])
        scores.append(f1_score(y[test], predicted[test], average="macro", labels=list(classes)))
    report = classification_report(
        y, predicted, labels=list(classes), output_dict=True, zero_division=0
    )
    majority = pd.Series(labels).value_counts().index[0]
    floor = f1_score(y, np.full(len(y), majority, dtype=object), average="macro", zero_division=0)
    return SentimentReport(
        classes=classes,
        rows=len(y),
        folds=folds,
        macro_f1=float(np.mean(scores)),
        macro_f1_sd=float(np.std(scores, ddof=1)),
        per_class={
            c: {k: float(v) for k, v in report[c].items() if k != "support"}
            | {"support": int(report[c]["support"])}
            for c in classes
        },
        majority_macro_f1=float(floor),
    )
