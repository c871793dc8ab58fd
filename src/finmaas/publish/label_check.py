"""Check a binary model's positive class on labelled reference rows.

A model that returns P(good) under a signature that declares ``bad`` positive
labels every applicant the wrong way round and gives adverse-action reasons to
the wrong people, with no error anywhere. When a push brings labels (its
reference sample with the target), the model's scores must rank the declared
positive class at least as high as chance: an AUC under 0.5 refuses the push.

The AUC is computed here with numpy (ranks, ties counted half), because a server
worker publishes and must not import scikit-learn.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from finmaas.errors import Invalid
from finmaas.schema.signature import ModelSignature


@dataclass(frozen=True)
class LabelCheck:
    """The positive class's AUC on the labelled reference rows."""

    auc: float
    rows: int
    positives: int

    def params(self, positive_class: str) -> dict[str, object]:
        """What the version records in its params about the check."""
        return {"rows": self.rows, "positives": self.positives, "positive_class": positive_class}


def rank_auc(positive: NDArray[np.bool_], scores: NDArray[np.float64]) -> float:
    """Area under the ROC curve: the chance that a positive row outscores a
    negative one, ties counted half (the Mann-Whitney U statistic)."""
    _, inverse, counts = np.unique(scores, return_inverse=True, return_counts=True)
    ends = np.cumsum(counts)
    ranks = ((ends - counts + 1 + ends) / 2.0)[inverse]
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def check_positive_class(
    signature: ModelSignature,
    labels: Sequence[object],
    scores: NDArray[np.float64],
    *,
    target: str,
) -> LabelCheck:
    """The AUC of ``scores`` for the signature's positive class against ``labels``
    (the ``target`` values of the scored rows); refuse one under 0.5."""
    if signature.task != "binary" or signature.classes is None:
        raise Invalid(
            f"a reference target checks the positive class of a binary model; "
            f"this signature is {signature.task}"
        )
    negative, positive = signature.classes
    if len(labels) != len(scores):
        raise Invalid(
            f"the reference target has {len(labels)} values for {len(scores)} reference rows"
        )
    text = [_label_text(value, signature.classes) for value in labels]
    for row, value in enumerate(text):
        if value not in (negative, positive):
            got = "it is missing" if value is None else f"got {value!r}"
            raise Invalid(
                f"row {row} of the reference: target {target!r} must be {negative!r} or "
                f"{positive!r}, the signature's classes; {got}"
            )
    is_positive = np.asarray([value == positive for value in text], dtype=bool)
    count = int(is_positive.sum())
    if count in (0, len(text)):
        only = positive if count else negative
        raise Invalid(
            f"the reference target {target!r} holds only {only!r}: checking the positive "
            "class needs labelled rows of both classes"
        )
    values = np.asarray(scores, dtype=np.float64).ravel()
    if not np.isfinite(values).all():
        row = int(np.argmin(np.isfinite(values)))
        raise Invalid(f"the model returned a non-finite score for reference row {row}")
    auc = rank_auc(is_positive, values)
    if auc < 0.5:
        raise Invalid(
            f"refused: on the {len(text)} labelled reference rows the model's probability of "
            f"{positive!r} ranks {positive!r} below chance (AUC {auc:.3f}, under 0.5); is the "
            f"positive class inverted? If the model returns the probability of {negative!r}, "
            f"declare classes [{positive!r}, {negative!r}] with positive_class {negative!r}"
        )
    return LabelCheck(auc=auc, rows=len(text), positives=count)


def _label_text(value: object, classes: tuple[str, ...]) -> str | None:
    """A label as the signature's classes spell it (None when missing)."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    if text not in classes and isinstance(value, float) and value.is_integer():
        return str(int(value))  # 1.0 from a CSV column with a gap is the class "1"
    return text
