"""Inferring a signature from a sample DataFrame."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import pytest

from finmaas.errors import InvalidSignature
from finmaas.schema import Feature, encode_frame, infer_signature
from finmaas.schema.infer import MAX_INFERRED_CATEGORIES


def only_feature(series: pd.Series, **kwargs: Any) -> Feature:
    signature = infer_signature(pd.DataFrame({"x": series}), task="regression", **kwargs)
    assert len(signature.inputs) == 1
    return signature.inputs[0]


@pytest.mark.parametrize(
    ("series", "dtype", "nullable"),
    [
        pytest.param(pd.Series([True, False]), "bool", False, id="bool"),
        pytest.param(pd.Series([True, None], dtype="boolean"), "bool", True, id="boolean-na"),
        pytest.param(pd.Series([1, 2], dtype="int64"), "int", False, id="int64"),
        pytest.param(pd.Series([1, 2], dtype="uint8"), "int", False, id="uint8"),
        pytest.param(pd.Series([1, None], dtype="Int64"), "int", True, id="Int64-na"),
        pytest.param(pd.Series([1.5, 2.0]), "float", False, id="float64"),
        pytest.param(pd.Series([1.5, 2.0], dtype="float32"), "float", False, id="float32"),
        pytest.param(pd.Series([1.5, np.nan]), "float", True, id="float-nan"),
        pytest.param(pd.Series([1, None]), "float", True, id="int-with-none-is-float"),
    ],
)
def test_numeric_and_bool_dtypes(series: pd.Series, dtype: str, nullable: bool) -> None:
    assert only_feature(series) == Feature(name="x", dtype=dtype, nullable=nullable)


def test_no_min_or_max_is_inferred_from_the_sample() -> None:
    feature = only_feature(pd.Series([18, 65, 40]))
    assert (feature.min, feature.max) == (None, None)


def test_category_dtype_keeps_its_category_order_including_unused_levels() -> None:
    series = pd.Series(pd.Categorical(["high", "low"], categories=["low", "mid", "high"]))
    assert only_feature(series) == Feature(
        name="x", dtype="category", categories=("low", "mid", "high")
    )


def test_category_dtype_with_non_text_levels_becomes_text() -> None:
    series = pd.Series(pd.Categorical([3, 1, None], categories=[3, 1, 2]))
    assert only_feature(series) == Feature(
        name="x", dtype="category", categories=("3", "1", "2"), nullable=True
    )


@pytest.mark.parametrize("dtype", [object, "string", None], ids=["object", "string", "default"])
def test_text_columns_become_categories_in_sorted_order(dtype: object) -> None:
    series = pd.Series(["radio/tv", "car", None, "Car", "car"], dtype=dtype)  # type: ignore[call-overload]
    assert only_feature(series) == Feature(
        name="x", dtype="category", categories=("Car", "car", "radio/tv"), nullable=True
    )


@pytest.mark.parametrize(
    ("distinct", "dtype"),
    [(MAX_INFERRED_CATEGORIES, "category"), (MAX_INFERRED_CATEGORIES + 1, "string")],
)
def test_text_with_more_than_256_distinct_values_is_a_string(distinct: int, dtype: str) -> None:
    assert MAX_INFERRED_CATEGORIES == 256
    series = pd.Series([f"v{i:04d}" for i in range(distinct)] * 2, dtype=object)
    feature = only_feature(series)
    assert feature.dtype == dtype
    if dtype == "category":
        assert feature.categories == tuple(f"v{i:04d}" for i in range(distinct))
    else:
        assert (feature.categories, feature.max_length) == (None, None)


def test_declared_categories_override_the_column_type() -> None:
    frame = pd.DataFrame({"grade": [2, 1, 3], "other": ["b", "a", "b"]})
    signature = infer_signature(
        frame, task="regression", categories={"grade": ["3", "2", "1"], "missing": ["x"]}
    )
    assert signature.inputs == (
        Feature(name="grade", dtype="category", categories=("3", "2", "1")),
        Feature(name="other", dtype="category", categories=("a", "b")),
    )


def test_columns_keep_their_order_and_pii_flags() -> None:
    frame = pd.DataFrame({"zip": ["1", "2"], "age": [30, 40], "amount": [1.0, 2.0]})
    signature = infer_signature(frame, task="regression", pii=("age", "zip"))
    assert signature.feature_names == ("zip", "age", "amount")
    assert [feature.pii for feature in signature.inputs] == [True, True, False]


def test_task_and_classes_are_passed_on_as_text() -> None:
    frame = pd.DataFrame({"x": [1.0]})
    signature = infer_signature(frame, task="multiclass", classes=[0, 1, 2])  # type: ignore[list-item]
    assert (signature.task, signature.classes) == ("multiclass", ("0", "1", "2"))
    binary = infer_signature(frame, task="binary", classes=("good", "bad"), positive_class="bad")
    assert binary.positive_class == "bad"


def test_non_text_column_names_become_text() -> None:
    signature = infer_signature(pd.DataFrame({0: [1.0], 1: ["a"]}), task="regression")
    assert signature.feature_names == ("0", "1")


BAD_FRAMES = [
    pytest.param(
        pd.DataFrame({"age": [30]}),
        {"pii": ["ssn"]},
        "pii column 'ssn' is not in the data",
        id="unknown-pii",
    ),
    pytest.param(
        pd.DataFrame({"age": [30]}),
        {"pii": ["zip", "age", "email"]},
        "pii column 'email' is not in the data",
        id="first-unknown-pii-in-sorted-order",
    ),
    pytest.param(
        pd.DataFrame({"x": pd.Series(["a", 1, None], dtype=object)}),
        {},
        "column 'x' mixes text with other types; clean it first",
        id="text-and-number",
    ),
    pytest.param(
        pd.DataFrame({"x": pd.Series(["a", b"b"], dtype=object)}),
        {},
        "column 'x' mixes text with other types; clean it first",
        id="text-and-bytes",
    ),
    pytest.param(
        pd.DataFrame({"t": pd.Series(["2024-01-31"], dtype="datetime64[ns]")}),
        {},
        "column 't' has unsupported dtype datetime64[ns]",
        id="datetime",
    ),
    pytest.param(
        pd.DataFrame({"z": pd.Series([1 + 2j])}),
        {},
        "column 'z' has unsupported dtype complex128",
        id="complex",
    ),
    pytest.param(
        pd.DataFrame({"x": [1.0]}),
        {"task": "binary", "positive_class": "bad"},
        "invalid signature: a binary task needs exactly 2 'classes', got 0",
        id="binary-without-classes",
    ),
    pytest.param(
        pd.DataFrame({"x": [1.0]}),
        {"task": "binary", "classes": ["good", "bad"]},
        "a binary signature needs its positive class, the outcome whose probability the model "
        "returns (for credit: the adverse one, e.g. bad): pass positive_class=; without it the "
        "labels and adverse-action reasons can be attached to the wrong applicants",
        id="binary-without-positive-class",
    ),
    pytest.param(
        pd.DataFrame({"x": [1.0]}),
        {"task": "binary", "classes": ["bad", "good"], "positive_class": "bad"},
        "invalid signature: 'positive_class' 'bad' must be the second of 'classes' "
        "['bad', 'good']: the model returns the probability of its second class (if it "
        "returns P('bad'), list the classes as ['good', 'bad'])",
        id="binary-positive-class-first",
    ),
    pytest.param(
        pd.DataFrame({"x": [1.0]}),
        {"task": "multiclass", "classes": ["a", "b"]},
        "invalid signature: a multiclass task needs at least 3 'classes', got 2",
        id="multiclass-with-two-classes",
    ),
    pytest.param(
        pd.DataFrame([[1, 2]], columns=["a", "a"]),
        {},
        "invalid signature: input name 'a' appears twice",
        id="repeated-column",
    ),
    pytest.param(
        pd.DataFrame([[1, 2]], columns=[0, "0"]),
        {},
        "invalid signature: input name '0' appears twice",
        id="columns-equal-as-text",
    ),
    pytest.param(
        pd.DataFrame({"ok": [1], "n" * 129: [1]}),
        {},
        "invalid signature: inputs[1].name: String should have at most 128 characters",
        id="long-column-name",
    ),
    pytest.param(
        pd.DataFrame({"a\tb": [1]}),
        {},
        "invalid signature: inputs[0].name: String should match pattern '^[^\\x00-\\x1f\\x7f]+$'",
        id="control-character",
    ),
    pytest.param(
        pd.DataFrame(),
        {},
        "invalid signature: inputs: Tuple should have at least 1 item after validation, not 0",
        id="no-columns",
    ),
]


@pytest.mark.parametrize(("frame", "kwargs", "message"), BAD_FRAMES)
def test_bad_frames(frame: pd.DataFrame, kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        infer_signature(frame, **{"task": "regression", **kwargs})
    assert str(caught.value) == message


def test_an_inferred_signature_encodes_its_own_sample() -> None:
    frame = pd.DataFrame(
        {
            "amount": [1200.0, np.nan, 560.5],
            "months": [12, 24, 6],
            "owner": [True, False, True],
            "purpose": ["car", "education", None],
            "rating": pd.Categorical([2, 1, 2], categories=[2, 1]),
        }
    )
    signature = infer_signature(frame, task="binary", classes=("good", "bad"), positive_class="bad")
    np.testing.assert_array_equal(
        encode_frame(signature, frame),
        [
            [1200.0, 12.0, 1.0, 0.0, 0.0],
            [np.nan, 24.0, 0.0, 1.0, 1.0],
            [560.5, 6.0, 1.0, np.nan, 0.0],
        ],
    )


def test_german_credit_is_inferred_as_documented() -> None:
    from finmaas.datasets.german_credit import (
        GERMAN_CREDIT_PII,
        GERMAN_CREDIT_TARGET,
        load_german_credit,
    )

    frame = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET])
    signature = infer_signature(
        frame, task="binary", classes=("good", "bad"), positive_class="bad", pii=GERMAN_CREDIT_PII
    )
    assert signature.feature_names == tuple(frame.columns)
    for feature in signature.inputs:
        column = frame[feature.name]
        assert not feature.nullable
        assert feature.pii == (feature.name in GERMAN_CREDIT_PII)
        if feature.dtype == "category":
            assert feature.categories == tuple(sorted(column.unique()))
        else:
            assert feature.dtype == "int"
            assert column.dtype == np.int64
