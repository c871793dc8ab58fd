"""Statlog German Credit: 1000 applicants, 20 attributes, ``creditability`` good/bad.

The CSV is package data, read with :mod:`importlib.resources`, so it works from
any working directory and from an installed wheel. See ``README.md`` in this
folder for the source, the licence (CC BY 4.0) and the 5:1 cost matrix.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources

import pandas as pd

from finmaas.schema import Feature, ModelSignature, infer_signature

GERMAN_CREDIT_TARGET = "creditability"
"""Target column: ``good`` or ``bad``."""

GERMAN_CREDIT_CLASSES = ("good", "bad")
"""Class order of the signature: the model's probability is P(``bad``)."""

GERMAN_CREDIT_PII = ("age_in_years", "personal_status_and_sex")
"""Columns holding personal data (masked in every log)."""

_BOUNDS: dict[str, dict[str, float | bool]] = {
    "duration_in_month": {"min": 0.0, "actionable": True},
    "credit_amount": {"min": 0.0, "actionable": True},
    "age_in_years": {"min": 18.0, "max": 100.0},
    "installment_rate_in_percentage_of_disposable_income": {"actionable": True},
    "other_debtors_or_guarantors": {"actionable": True},
}
"""Rules beyond what inference finds: bounds, and the inputs an applicant can change
(the loan's amount, term and instalment rate, and bringing a guarantor)."""

_FILE = "germancredit.csv"


def _csv_bytes() -> bytes:
    return resources.files("finmaas.datasets").joinpath(_FILE).read_bytes()


def load_german_credit() -> pd.DataFrame:
    """Return the 1000 × 21 frame: 20 attributes, then :data:`GERMAN_CREDIT_TARGET`.

    Numeric attributes are ``int64``, categorical ones are text. Each call
    returns a fresh frame, so callers may change it freely.
    """
    return pd.read_csv(io.BytesIO(_csv_bytes()))


def german_credit_data_sha256() -> str:
    """The sha256 (hex) of the shipped CSV bytes, for lineage."""
    return hashlib.sha256(_csv_bytes()).hexdigest()


def german_credit_signature() -> ModelSignature:
    """The input signature of a German Credit model.

    Binary task with classes ``("good", "bad")`` and positive class ``bad``, so a
    model returns P(bad).
    Numeric attributes are ``int``; categorical ones are ``category`` with
    their labels in sorted order (a label is encoded as its index there).
    ``age_in_years`` and ``personal_status_and_sex`` are PII. Amounts and
    durations must be ≥ 0 and ages within 18..100. Amount, duration,
    instalment rate and guarantors are actionable (counterfactuals may change them).
    """
    frame = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET])
    inferred = infer_signature(
        frame,
        task="binary",
        classes=GERMAN_CREDIT_CLASSES,
        positive_class=GERMAN_CREDIT_CLASSES[1],
        pii=GERMAN_CREDIT_PII,
    )
    inputs = tuple(
        Feature.model_validate({**feature.model_dump(), **_BOUNDS.get(feature.name, {})})
        for feature in inferred.inputs
    )
    return ModelSignature(
        task="binary",
        inputs=inputs,
        classes=GERMAN_CREDIT_CLASSES,
        positive_class=GERMAN_CREDIT_CLASSES[1],
    )
