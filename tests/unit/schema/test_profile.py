"""Reference profiles: numeric and category bins, the profile builder and its JSON form."""

from __future__ import annotations

import itertools

import numpy as np
import orjson
import pytest
from pydantic import ValidationError

from finmaas.schema import (
    Feature,
    ModelSignature,
    ReferenceProfile,
    build_reference_profile,
    encode_frame,
)
from finmaas.schema.profile import (
    MISSING,
    OTHER,
    CategoryBins,
    NumericBins,
    category_bins,
    numeric_bins,
)

RNG_SEED = 20240531


def total(bins: NumericBins | CategoryBins) -> float:
    return sum(bins.shares) + bins.missing_share


def test_bin_names_are_reserved_markers() -> None:
    assert (OTHER, MISSING) == ("__other__", "__missing__")


# numeric_bins ----------------------------------------------------------------------------


def test_equal_frequency_bins_on_a_uniform_sample() -> None:
    bins = numeric_bins(np.arange(100.0))
    assert len(bins.edges) == 9
    assert bins.shares == pytest.approx((0.1,) * 10)
    assert (bins.missing_share, bins.kind) == (0.0, "numeric")
    assert bins.mean == pytest.approx(49.5)
    assert bins.std == pytest.approx(np.arange(100.0).std())


@pytest.mark.parametrize("n_bins", [2, 4, 5, 10, 20])
def test_n_bins_sets_the_number_of_bins(n_bins: int) -> None:
    bins = numeric_bins(np.random.default_rng(RNG_SEED).normal(size=1000), n_bins)
    assert len(bins.shares) == n_bins == len(bins.edges) + 1
    assert bins.shares == pytest.approx((1 / n_bins,) * n_bins)


SAMPLES = [
    pytest.param(np.arange(10.0), id="range"),
    pytest.param(np.random.default_rng(RNG_SEED).lognormal(size=997), id="skewed"),
    pytest.param(np.array([1.0, np.nan, 2.0, 3.0, np.nan]), id="with-missing"),
    pytest.param(np.array([4.0] * 7), id="constant"),
    pytest.param(np.array([0, 0, 0, 0, 0, 0, 0, 1, 1, 5.0]), id="ties"),
    pytest.param(np.array([np.nan, 7.0]), id="one-present"),
    pytest.param(np.array([np.nan, np.nan, np.nan]), id="all-missing"),
    pytest.param(np.array([1, 2, 3]), id="integers"),
]


@pytest.mark.parametrize("values", SAMPLES)
def test_shares_and_missing_share_sum_to_one(values: np.ndarray) -> None:
    assert total(numeric_bins(values)) == pytest.approx(1.0)


@pytest.mark.parametrize("values", SAMPLES)
def test_edges_are_unique_and_increasing(values: np.ndarray) -> None:
    edges = numeric_bins(values).edges
    assert all(left < right for left, right in itertools.pairwise(edges))


def test_missing_values_get_their_own_share() -> None:
    bins = numeric_bins(np.array([1.0, np.nan, 2.0, 3.0]), n_bins=2)
    assert (bins.edges, bins.shares, bins.missing_share) == ((2.0,), (0.5, 0.25), 0.25)
    assert bins.mean == 2.0
    assert bins.std == pytest.approx(np.std([1.0, 2.0, 3.0]))


def test_a_constant_column_has_one_edge_and_two_bins() -> None:
    bins = numeric_bins(np.full(50, 3.5))
    assert (bins.edges, bins.shares) == ((3.5,), (1.0, 0.0))
    assert (bins.mean, bins.std) == (3.5, 0.0)


def test_a_value_on_an_edge_falls_in_the_lower_bin() -> None:
    bins = numeric_bins(np.array([1.0, 2.0, 2.0, 2.0, 3.0]), n_bins=2)
    assert bins.edges == (2.0,)
    assert bins.shares == (0.8, 0.2)


def test_an_all_missing_column() -> None:
    bins = numeric_bins(np.array([np.nan, np.nan]))
    assert bins == NumericBins(edges=(), shares=(0.0,), missing_share=1.0)


def test_an_empty_column() -> None:
    assert numeric_bins(np.array([])) == NumericBins(edges=(), shares=(1.0,), missing_share=0.0)


# category_bins ---------------------------------------------------------------------------

LEVELS = ("car", "education", "radio/tv", "repairs")


def test_category_shares_follow_the_declared_levels() -> None:
    bins = category_bins(np.array([0, 2, 2, 1, 0, 2, 3, 3]), LEVELS, rare_share=0.1)
    assert bins == CategoryBins(levels=LEVELS, shares=(0.25, 0.125, 0.375, 0.25))


def test_rare_levels_are_merged_into_other() -> None:
    codes = np.array([0] * 50 + [2] * 45 + [1] * 4 + [3] * 1, dtype=np.float64)
    bins = category_bins(codes, LEVELS, rare_share=0.05)
    assert (bins.levels, bins.merged) == (("car", "radio/tv", OTHER), ("education", "repairs"))
    assert bins.shares == pytest.approx((0.5, 0.45, 0.05))
    assert bins.missing_share == 0.0


def test_a_level_exactly_at_rare_share_is_kept() -> None:
    bins = category_bins(np.array([0] * 9 + [1]), ("a", "b"), rare_share=0.1)
    assert (bins.levels, bins.merged) == (("a", "b"), ())


def test_a_level_absent_from_the_sample_is_merged() -> None:
    bins = category_bins(np.array([0, 1, 0, 1]), ("a", "b", "c"), rare_share=0.01)
    assert bins == CategoryBins(levels=("a", "b", OTHER), shares=(0.5, 0.5, 0.0), merged=("c",))


def test_rare_share_zero_keeps_every_level() -> None:
    bins = category_bins(np.array([0, 0, 0]), ("a", "b"), rare_share=0.0)
    assert bins == CategoryBins(levels=("a", "b"), shares=(1.0, 0.0))


def test_category_missing_share_counts_in_the_total() -> None:
    codes = np.array([0, 0, 1, np.nan, np.nan, 0, 1, 1, 0, 0])
    bins = category_bins(codes, ("a", "b"), rare_share=0.01)
    assert bins == CategoryBins(levels=("a", "b"), shares=(0.5, 0.3), missing_share=0.2)


@pytest.mark.parametrize("rare_share", [0.0, 0.01, 0.1, 0.3, 1.0])
def test_category_shares_sum_to_one_and_every_level_is_accounted_for(
    rare_share: float,
) -> None:
    rng = np.random.default_rng(RNG_SEED)
    codes = rng.choice(len(LEVELS), size=400, p=[0.6, 0.3, 0.08, 0.02]).astype(np.float64)
    codes[rng.random(400) < 0.1] = np.nan
    bins = category_bins(codes, LEVELS, rare_share)
    assert total(bins) == pytest.approx(1.0)
    kept = [level for level in bins.levels if level != OTHER]
    assert sorted(kept + list(bins.merged)) == sorted(LEVELS)
    assert (OTHER in bins.levels) == bool(bins.merged)


# build_reference_profile -----------------------------------------------------------------

SIGNATURE = ModelSignature(
    task="binary",
    classes=("good", "bad"),
    positive_class="bad",
    inputs=(
        Feature(name="amount", dtype="float", nullable=True),
        Feature(name="note", dtype="string"),
        Feature(name="purpose", dtype="category", categories=("car", "education", "other")),
        Feature(name="owner", dtype="bool"),
        Feature(name="months", dtype="int"),
    ),
)


def encoded_sample(rows: int = 200) -> np.ndarray:
    rng = np.random.default_rng(RNG_SEED)
    amount = rng.gamma(2.0, 1000.0, size=rows)
    amount[::10] = np.nan
    columns = [
        amount,
        np.array([f"note {i}" for i in range(rows)], dtype=object),
        rng.choice(3, size=rows, p=[0.7, 0.295, 0.005]).astype(np.float64),
        (rng.random(rows) < 0.3).astype(np.float64),
        rng.integers(6, 72, size=rows).astype(np.float64),
    ]
    out = np.empty((rows, len(columns)), dtype=object)
    for col, values in enumerate(columns):
        out[:, col] = values
    return out


def test_profile_bins_every_feature_except_strings() -> None:
    encoded = encoded_sample()
    profile = build_reference_profile(SIGNATURE, encoded, rare_share=0.01)
    assert profile.rows == 200
    assert list(profile.features) == ["amount", "purpose", "owner", "months"]
    assert profile.score is None
    numeric = np.asarray(encoded[:, 0], dtype=np.float64)
    assert profile.features["amount"] == numeric_bins(numeric)
    assert profile.features["amount"].missing_share == pytest.approx(0.1)
    codes = np.asarray(encoded[:, 2], dtype=np.float64)
    assert profile.features["purpose"] == category_bins(codes, ("car", "education", "other"), 0.01)
    assert isinstance(profile.features["owner"], NumericBins)
    assert isinstance(profile.features["months"], NumericBins)


def test_profile_passes_n_bins_and_rare_share_on() -> None:
    profile = build_reference_profile(SIGNATURE, encoded_sample(), n_bins=4, rare_share=0.4)
    amount = profile.features["amount"]
    purpose = profile.features["purpose"]
    assert isinstance(amount, NumericBins)
    assert isinstance(purpose, CategoryBins)
    assert len(amount.shares) == 4
    assert purpose.levels == ("car", OTHER)
    assert purpose.merged == ("education", "other")


def test_profile_bins_one_dimensional_scores() -> None:
    scores = np.random.default_rng(RNG_SEED).random(200)
    profile = build_reference_profile(SIGNATURE, encoded_sample(), scores)
    assert profile.score == numeric_bins(scores)


def test_profile_bins_the_top_score_of_each_row_for_two_dimensional_scores() -> None:
    scores = np.random.default_rng(RNG_SEED).dirichlet([1.0, 1.0, 1.0], size=200)
    profile = build_reference_profile(SIGNATURE, encoded_sample(), scores)
    assert profile.score == numeric_bins(scores.max(axis=1))


def test_profile_of_a_float_matrix() -> None:
    signature = ModelSignature(task="regression", inputs=(Feature(name="x", dtype="float"),))
    encoded = np.arange(20.0).reshape(20, 1)
    profile = build_reference_profile(signature, encoded, encoded[:, 0] * 2)
    assert profile == ReferenceProfile(
        rows=20,
        features={"x": numeric_bins(encoded[:, 0])},
        score=numeric_bins(encoded[:, 0] * 2),
    )


def german_credit_profile() -> ReferenceProfile:
    from finmaas.datasets.german_credit import german_credit_signature, load_german_credit

    signature = german_credit_signature()
    encoded = encode_frame(signature, load_german_credit())
    scores = np.random.default_rng(RNG_SEED).random(len(encoded))
    return build_reference_profile(signature, encoded, scores)


def test_german_credit_profile_is_consistent() -> None:
    from finmaas.datasets.german_credit import german_credit_signature

    profile = german_credit_profile()
    assert profile.rows == 1000
    signature = german_credit_signature()
    assert tuple(profile.features) == signature.feature_names
    for feature in signature.inputs:
        bins = profile.features[feature.name]
        assert total(bins) == pytest.approx(1.0)
        if feature.dtype == "category":
            assert isinstance(bins, CategoryBins)
            kept = [level for level in bins.levels if level != OTHER]
            assert sorted(kept + list(bins.merged)) == sorted(feature.categories or ())
            assert all(share >= 0.01 for share in bins.shares[: len(kept)])
        else:
            assert isinstance(bins, NumericBins)
            assert 1 <= len(bins.shares) <= 10


# JSON form -------------------------------------------------------------------------------


def test_json_round_trip_through_model_dump() -> None:
    profile = german_credit_profile()
    assert ReferenceProfile.model_validate(profile.model_dump()) == profile
    document = orjson.loads(orjson.dumps(profile.model_dump(mode="json")))
    assert ReferenceProfile.model_validate(document) == profile
    assert ReferenceProfile.model_validate_json(profile.model_dump_json()) == profile


def test_the_kind_field_selects_the_bin_type() -> None:
    document = {
        "rows": 3,
        "features": {
            "x": {"kind": "numeric", "edges": [1.0], "shares": [0.5, 0.5]},
            "c": {"kind": "category", "levels": ["a"], "shares": [1.0]},
        },
    }
    profile = ReferenceProfile.model_validate(document)
    assert profile.features == {
        "x": NumericBins(edges=(1.0,), shares=(0.5, 0.5)),
        "c": CategoryBins(levels=("a",), shares=(1.0,)),
    }


@pytest.mark.parametrize(
    ("features", "error"),
    [
        ({"x": {"kind": "histogram", "edges": [], "shares": []}}, "does not match any of"),
        ({"x": {"edges": [], "shares": [1.0]}}, "Unable to extract tag using discriminator"),
        ({"x": {"kind": "numeric", "edges": [], "shares": [1.0], "p": 1}}, "Extra inputs"),
    ],
)
def test_bad_profile_documents_are_refused(features: dict[str, object], error: str) -> None:
    with pytest.raises(ValidationError, match=error):
        ReferenceProfile.model_validate({"rows": 1, "features": features})
