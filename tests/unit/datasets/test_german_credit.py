"""The German Credit loader and its signature."""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from finmaas.datasets import (
    GERMAN_CREDIT_TARGET,
    german_credit_data_sha256,
    german_credit_signature,
    load_german_credit,
)
from finmaas.errors import SchemaMismatch
from finmaas.schema import encode_frame, encode_records

CSV_SHA256 = "2c0bae00275c028fc853a1ea72cc7a68002c3f6876c41300c5c948711540c8c6"


def test_frame_has_1000_rows_20_attributes_and_the_target_last() -> None:
    frame = load_german_credit()
    assert frame.shape == (1000, 21)
    assert frame.columns[-1] == GERMAN_CREDIT_TARGET == "creditability"
    assert frame[GERMAN_CREDIT_TARGET].value_counts().to_dict() == {"good": 700, "bad": 300}
    assert not frame.isna().any().any()


def test_loads_from_the_package_whatever_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert len(load_german_credit()) == 1000


def test_each_call_returns_a_fresh_frame() -> None:
    first = load_german_credit()
    first.loc[0, "credit_amount"] = -1
    assert load_german_credit().loc[0, "credit_amount"] == 1169


def test_data_sha256_is_the_digest_of_the_shipped_csv() -> None:
    shipped = resources.files("finmaas.datasets").joinpath("germancredit.csv").read_bytes()
    assert german_credit_data_sha256() == hashlib.sha256(shipped).hexdigest() == CSV_SHA256


def test_attribution_ships_with_the_data() -> None:
    readme = resources.files("finmaas.datasets").joinpath("README.md").read_text("utf-8")
    assert "Hans Hofmann" in readme
    assert "CC BY 4.0" in readme
    assert "0.70 per applicant" in readme


def test_signature_is_binary_with_bad_as_the_positive_class() -> None:
    signature = german_credit_signature()
    assert signature.task == "binary"
    assert signature.classes == ("good", "bad")
    assert signature.positive_class == "bad"
    frame = load_german_credit()
    assert signature.feature_names == tuple(frame.columns.drop(GERMAN_CREDIT_TARGET))


def test_signature_types_13_categories_and_7_integers() -> None:
    frame = load_german_credit()
    features = german_credit_signature().inputs
    categories = [f for f in features if f.dtype == "category"]
    assert len(categories) == 13
    assert {f.dtype for f in features if f.dtype != "category"} == {"int"}
    for feature in categories:
        assert feature.categories == tuple(sorted(frame[feature.name].unique()))


def test_pii_flags() -> None:
    pii = {f.name for f in german_credit_signature().inputs if f.pii}
    assert pii == {"age_in_years", "personal_status_and_sex"}


def test_bounds_are_set_and_respected_by_the_data() -> None:
    frame = load_german_credit()
    bounds = {
        f.name: (f.min, f.max)
        for f in german_credit_signature().inputs
        if f.min is not None or f.max is not None
    }
    assert bounds == {
        "duration_in_month": (0.0, None),
        "credit_amount": (0.0, None),
        "age_in_years": (18.0, 100.0),
    }
    for name, (low, high) in bounds.items():
        assert frame[name].min() >= (low if low is not None else -np.inf)
        assert frame[name].max() <= (high if high is not None else np.inf)


def test_signature_encodes_the_whole_frame() -> None:
    frame = load_german_credit()
    signature = german_credit_signature()
    encoded = encode_frame(signature, frame)
    assert encoded.shape == (1000, 20)
    assert encoded.dtype == np.float64
    assert np.isfinite(encoded).all()
    rows = frame.drop(columns=[GERMAN_CREDIT_TARGET]).head(5).to_dict("records")
    records = [{str(key): value for key, value in row.items()} for row in rows]
    assert np.array_equal(encode_records(signature, records), encoded[:5])


def test_signature_rejects_an_underage_applicant_without_echoing_the_age() -> None:
    frame = load_german_credit().head(1)
    frame.loc[0, "age_in_years"] = 17
    with pytest.raises(SchemaMismatch) as caught:
        encode_frame(german_credit_signature(), frame)
    assert str(caught.value) == (
        "field 'age_in_years' must be ≥ 18, got a value not shown (the field is PII)"
    )
