"""Record and frame encoding: values, exact error messages, PII masking, frame == records."""

from __future__ import annotations

import math
import random
from typing import Any

import numpy as np
import pandas as pd
import pytest

from finmaas.errors import Invalid, InvalidSignature, SchemaMismatch
from finmaas.schema import (
    Feature,
    ModelSignature,
    RecordEncoder,
    encode_frame,
    encode_records,
)

PII_HIDDEN = "a value not shown (the field is PII)"

SIGNATURE = ModelSignature(
    task="binary",
    classes=("good", "bad"),
    positive_class="bad",
    inputs=(
        Feature(name="income", dtype="float", min=0),
        Feature(name="months", dtype="int", min=1, max=72),
        Feature(name="married", dtype="bool"),
        Feature(name="purpose", dtype="category", categories=("radio/tv", "car", "education")),
        Feature(name="savings", dtype="float", nullable=True),
        Feature(name="note", dtype="string", max_length=5, nullable=True),
    ),
)
"""Every dtype, with categories deliberately not in sorted order."""

NUMERIC = ModelSignature(
    task="regression",
    inputs=(
        Feature(name="income", dtype="float"),
        Feature(name="months", dtype="int", nullable=True),
        Feature(name="married", dtype="bool", nullable=True),
        Feature(name="purpose", dtype="category", categories=("b", "a"), nullable=True),
    ),
)
"""No string feature, so the encoded array is float64."""

PII = ModelSignature(
    task="regression",
    inputs=(
        Feature(name="age", dtype="int", min=18, max=100, pii=True),
        Feature(name="salary", dtype="float", pii=True),
        Feature(name="smoker", dtype="bool", pii=True),
        Feature(name="postcode", dtype="category", categories=("10115", "80331"), pii=True),
        Feature(name="email", dtype="string", max_length=20, pii=True),
    ),
)


def good_row(**changes: Any) -> dict[str, Any]:
    row = {
        "income": 2500.5,
        "months": 24,
        "married": True,
        "purpose": "car",
        "savings": 100,
        "note": "ok",
    }
    row.update(changes)
    return row


def without(name: str) -> dict[str, Any]:
    row = good_row()
    del row[name]
    return row


def pii_row(**changes: Any) -> dict[str, Any]:
    row = {
        "age": 40,
        "salary": 52_000.0,
        "smoker": False,
        "postcode": "80331",
        "email": "jane@example.com",
    }
    row.update(changes)
    return row


def test_encode_one_row_of_every_dtype() -> None:
    encoded = RecordEncoder(SIGNATURE).encode([good_row()])
    assert encoded.dtype == np.object_
    assert encoded.shape == (1, 6)
    assert encoded.tolist() == [[2500.5, 24.0, 1.0, 1.0, 100.0, "ok"]]


def test_values_follow_the_signature_order_not_the_record_order() -> None:
    record = dict(reversed(list(good_row().items())))
    assert RecordEncoder(SIGNATURE).encode([record]).tolist() == [
        [2500.5, 24.0, 1.0, 1.0, 100.0, "ok"]
    ]


@pytest.mark.parametrize(("purpose", "code"), [("radio/tv", 0.0), ("car", 1.0), ("education", 2.0)])
def test_a_category_is_its_index_in_the_declared_categories(purpose: str, code: float) -> None:
    assert RecordEncoder(SIGNATURE).encode([good_row(purpose=purpose)])[0, 3] == code


@pytest.mark.parametrize(("married", "code"), [(True, 1.0), (False, 0.0)])
def test_bool_is_one_or_zero(married: bool, code: float) -> None:
    assert RecordEncoder(SIGNATURE).encode([good_row(married=married)])[0, 2] == code


@pytest.mark.parametrize(
    ("field", "value", "encoded"),
    [
        ("months", 24.0, 24.0),  # an integral float is a valid int
        ("months", 1, 1.0),  # bounds are inclusive
        ("months", 72, 72.0),
        ("income", 0, 0.0),
        ("income", 10**30, 1e30),
        ("savings", -3.25, -3.25),
        ("income", np.float64(12.5), 12.5),  # numpy floats are floats
        ("note", "", ""),
        ("note", "fünf!", "fünf!"),  # the limit counts characters, not bytes
    ],
)
def test_accepted_values(field: str, value: object, encoded: object) -> None:
    out = RecordEncoder(SIGNATURE).encode([good_row(**{field: value})])
    assert out[0, SIGNATURE.feature_names.index(field)] == encoded


def test_nullable_fields_may_be_missing_or_null() -> None:
    encoder = RecordEncoder(SIGNATURE)
    for record in (good_row(savings=None, note=None), without("savings") | {"note": None}):
        out = encoder.encode([record])
        assert math.isnan(out[0, 4])
        assert out[0, 5] is None


def test_nullable_numeric_features_encode_null_as_nan() -> None:
    out = RecordEncoder(NUMERIC).encode(
        [{"income": 1.5, "months": None, "married": None, "purpose": None}]
    )
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [[1.5, np.nan, np.nan, np.nan]])


def test_no_records_give_an_empty_matrix() -> None:
    assert RecordEncoder(SIGNATURE).encode([]).shape == (0, 6)
    assert RecordEncoder(NUMERIC).encode([]).dtype == np.float64


@pytest.mark.parametrize(("signature", "dtype"), [(SIGNATURE, np.object_), (NUMERIC, np.float64)])
def test_dtype_is_object_only_when_a_string_feature_exists(
    signature: ModelSignature, dtype: type[np.generic]
) -> None:
    encoder = RecordEncoder(signature)
    assert encoder.dtype is dtype
    assert encoder.names == signature.feature_names


def test_encode_records_is_the_one_off_form() -> None:
    rows = [good_row(), good_row(purpose="education", married=False, note=None)]
    expected = RecordEncoder(SIGNATURE).encode(rows)
    assert_same_encoding(encode_records(SIGNATURE, rows), expected)


def test_an_encoder_can_be_reused() -> None:
    encoder = RecordEncoder(SIGNATURE)
    first = encoder.encode([good_row()])
    with pytest.raises(SchemaMismatch):
        encoder.encode([good_row(purpose="boat")])
    assert_same_encoding(encoder.encode([good_row()]), first)


LONG = "x" * 100
CLIPPED = "x" * 63 + "…"

BAD_RECORDS = [
    pytest.param(without("income"), "row 0: missing field 'income'", id="missing-field"),
    pytest.param(good_row(months=None), "row 0: null is not allowed for field 'months'", id="null"),
    pytest.param(good_row(salary=1), "row 0: unknown field 'salary'", id="unknown-field"),
    pytest.param(
        {**without("income"), "Income": 1},
        "row 0: unknown field 'Income'",
        id="unknown-field-is-reported-before-missing",
    ),
    pytest.param(good_row(**{LONG: 1}), f"row 0: unknown field '{CLIPPED}'", id="long-unknown"),
    pytest.param(
        good_row(income="2500"),
        "row 0: field 'income' must be a number, got string '2500'",
        id="string-for-float",
    ),
    pytest.param(
        good_row(months=True),
        "row 0: field 'months' must be a number, got true",
        id="bool-for-int",
    ),
    pytest.param(
        good_row(income=False),
        "row 0: field 'income' must be a number, got false",
        id="bool-for-float",
    ),
    pytest.param(
        good_row(income=[1]), "row 0: field 'income' must be a number, got a list", id="list"
    ),
    pytest.param(
        good_row(income={"value": 1}),
        "row 0: field 'income' must be a number, got an object",
        id="object",
    ),
    pytest.param(
        good_row(income=b"1"), "row 0: field 'income' must be a number, got bytes", id="bytes"
    ),
    pytest.param(
        good_row(married=1.0),
        "row 0: field 'married' must be true or false, got number 1.0",
        id="float-for-bool",
    ),
    pytest.param(
        good_row(note=2.5),
        "row 0: field 'note' must be a string, got number 2.5",
        id="float-for-string",
    ),
    pytest.param(
        good_row(months=12.5),
        "row 0: field 'months' must be an integer, got number 12.5",
        id="fraction-for-int",
    ),
    pytest.param(
        good_row(income=2**1100),
        "row 0: field 'income' must be a finite number, got number " + repr(2**1100)[:63] + "…",
        id="huge-int",
    ),
    pytest.param(
        good_row(purpose=1),
        "row 0: field 'purpose' must be one of its categories (a string), got number 1",
        id="number-for-category",
    ),
    pytest.param(
        good_row(purpose=True),
        "row 0: field 'purpose' must be one of its categories (a string), got true",
        id="bool-for-category",
    ),
    pytest.param(
        good_row(purpose="boat"),
        "row 0: field 'purpose' must be one of its 3 categories, got 'boat'",
        id="unknown-category",
    ),
    pytest.param(
        good_row(purpose="Car"),
        "row 0: field 'purpose' must be one of its 3 categories, got 'Car'",
        id="categories-are-case-sensitive",
    ),
    pytest.param(
        good_row(purpose=LONG),
        f"row 0: field 'purpose' must be one of its 3 categories, got '{CLIPPED}'",
        id="long-unknown-category",
    ),
    pytest.param(
        good_row(married=1),
        "row 0: field 'married' must be true or false, got number 1",
        id="one-for-bool",
    ),
    pytest.param(
        good_row(married="true"),
        "row 0: field 'married' must be true or false, got string 'true'",
        id="string-for-bool",
    ),
    pytest.param(
        good_row(married=None),
        "row 0: null is not allowed for field 'married'",
        id="null-for-bool",
    ),
    pytest.param(
        good_row(months=24.5),
        "row 0: field 'months' must be an integer, got number 24.5",
        id="fraction-for-int",
    ),
    pytest.param(
        good_row(months=0), "row 0: field 'months' must be ≥ 1, got 0", id="below-int-min"
    ),
    pytest.param(
        good_row(months=73), "row 0: field 'months' must be ≤ 72, got 73", id="above-int-max"
    ),
    pytest.param(
        good_row(income=-0.5),
        "row 0: field 'income' must be ≥ 0, got -0.5",
        id="below-float-min",
    ),
    pytest.param(
        good_row(income=float("inf")),
        "row 0: field 'income' must be a finite number, got number inf",
        id="infinity",
    ),
    pytest.param(
        good_row(savings=float("-inf")),
        "row 0: field 'savings' must be a finite number, got number -inf",
        id="minus-infinity",
    ),
    pytest.param(
        good_row(savings=float("nan")),
        "row 0: field 'savings' must be a finite number, got number nan",
        id="nan-is-not-null",
    ),
    pytest.param(
        good_row(income=10**400),
        f"row 0: field 'income' must be a finite number, got number 1{'0' * 62}…",
        id="int-beyond-float-range",
    ),
    pytest.param(
        good_row(months=10**5000),
        "row 0: field 'months' must be an integer from -9223372036854775808 to "
        "9223372036854775807, got a number too long to show",
        id="int-beyond-str-digits",
    ),
    pytest.param(
        good_row(note="sixsix"),
        "row 0: field 'note' must be at most 5 characters, got 6",
        id="string-too-long",
    ),
    pytest.param(
        good_row(note=5), "row 0: field 'note' must be a string, got number 5", id="number-for-str"
    ),
    pytest.param(
        good_row(note=["a"]), "row 0: field 'note' must be a string, got a list", id="list-for-str"
    ),
]


@pytest.mark.parametrize(("record", "message"), BAD_RECORDS)
def test_bad_records(record: dict[str, Any], message: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        RecordEncoder(SIGNATURE).encode([record])
    assert str(caught.value) == message
    assert isinstance(caught.value, Invalid)


def test_the_message_names_the_failing_row() -> None:
    records = [good_row(), good_row(), good_row(purpose="boat"), good_row(months=0)]
    with pytest.raises(SchemaMismatch) as caught:
        RecordEncoder(SIGNATURE).encode(records)
    assert str(caught.value) == "row 2: field 'purpose' must be one of its 3 categories, got 'boat'"


def test_a_string_feature_has_a_default_limit_of_4096_characters() -> None:
    signature = ModelSignature(task="regression", inputs=(Feature(name="text", dtype="string"),))
    encoder = RecordEncoder(signature)
    assert encoder.encode([{"text": "a" * 4096}]).shape == (1, 1)
    with pytest.raises(SchemaMismatch) as caught:
        encoder.encode([{"text": "a" * 4097}])
    assert str(caught.value) == "row 0: field 'text' must be at most 4096 characters, got 4097"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        (["income", 1], "row 0: expected an object keyed by feature name, got a list"),
        ("income", "row 0: expected an object keyed by feature name, got string 'income'"),
        (None, "row 0: expected an object keyed by feature name, got null"),
        (3, "row 0: expected an object keyed by feature name, got number 3"),
        (True, "row 0: expected an object keyed by feature name, got true"),
        ({1, 2}, "row 0: expected an object keyed by feature name, got set"),
    ],
)
def test_a_row_must_be_a_mapping(row: object, message: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        RecordEncoder(SIGNATURE).encode([row])  # type: ignore[list-item]
    assert str(caught.value) == message


PII_BAD_RECORDS = [
    pytest.param(pii_row(age=17), "field 'age' must be ≥ 18", id="below-min"),
    pytest.param(pii_row(age=101), "field 'age' must be ≤ 100", id="above-max"),
    pytest.param(pii_row(age=40.5), "field 'age' must be an integer", id="fraction"),
    pytest.param(pii_row(age="40"), "field 'age' must be a number", id="string-for-int"),
    pytest.param(pii_row(age=True), "field 'age' must be a number", id="bool-for-int"),
    pytest.param(pii_row(salary=float("inf")), "field 'salary' must be a finite number", id="inf"),
    pytest.param(pii_row(salary=10**400), "field 'salary' must be a finite number", id="huge-int"),
    pytest.param(
        pii_row(smoker="no"), "field 'smoker' must be true or false", id="string-for-bool"
    ),
    pytest.param(
        pii_row(postcode="12345"),
        "field 'postcode' must be one of its 2 categories",
        id="unknown-category",
    ),
    pytest.param(
        pii_row(postcode=10115),
        "field 'postcode' must be one of its categories (a string)",
        id="number-for-category",
    ),
    pytest.param(pii_row(email=12345), "field 'email' must be a string", id="number-for-string"),
]


@pytest.mark.parametrize(("record", "rule"), PII_BAD_RECORDS)
def test_pii_values_are_never_echoed(record: dict[str, Any], rule: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        RecordEncoder(PII).encode([record])
    assert str(caught.value) == f"row 0: {rule}, got {PII_HIDDEN}"


def test_a_too_long_pii_string_reports_its_length_only() -> None:
    secret = "jane.doe.1970@example.com"
    with pytest.raises(SchemaMismatch) as caught:
        RecordEncoder(PII).encode([pii_row(email=secret)])
    assert str(caught.value) == "row 0: field 'email' must be at most 20 characters, got 25"


def test_valid_pii_record_encodes_like_any_other() -> None:
    encoded = RecordEncoder(PII).encode([pii_row()])
    assert encoded.tolist() == [[40.0, 52_000.0, 0.0, 1.0, "jane@example.com"]]


# encode_frame ---------------------------------------------------------------------------


def frame_of(records: list[dict[str, Any]], **kwargs: Any) -> pd.DataFrame:
    return pd.DataFrame.from_records(records, **kwargs)


def assert_same_encoding(left: np.ndarray, right: np.ndarray) -> None:
    """Equal shape, dtype and cells, NaN equal to NaN and None only to None."""
    assert (left.shape, left.dtype) == (right.shape, right.dtype)
    for a, b in zip(left.ravel().tolist(), right.ravel().tolist(), strict=True):
        if isinstance(a, float) and math.isnan(a):
            assert isinstance(b, float)
            assert math.isnan(b)
        else:
            assert (type(a), a) == (type(b), b)


def random_records(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    records = []
    for _ in range(n):
        records.append(
            {
                "income": round(rng.uniform(0, 10_000), 2),
                "months": rng.randint(1, 72),
                "married": rng.random() < 0.5,
                "purpose": rng.choice(("radio/tv", "car", "education")),
                "savings": None if rng.random() < 0.3 else rng.uniform(-100, 100),
                "note": None if rng.random() < 0.3 else rng.choice(("", "a", "bb", "ccccc")),
            }
        )
    return records


def numeric_records(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "income": rng.gauss(0, 1_000),
            "months": None if rng.random() < 0.2 else rng.randint(-5, 5),
            "married": None if rng.random() < 0.2 else rng.random() < 0.5,
            "purpose": None if rng.random() < 0.2 else rng.choice(("a", "b")),
        }
        for _ in range(n)
    ]


@pytest.mark.parametrize("seed", range(5))
def test_frame_and_records_encode_identically_with_strings(seed: int) -> None:
    records = random_records(seed, 50)
    from_records = RecordEncoder(SIGNATURE).encode(records)
    from_frame = encode_frame(SIGNATURE, frame_of(records))
    assert from_frame.dtype == np.object_
    assert_same_encoding(from_frame, from_records)


@pytest.mark.parametrize("seed", range(5))
def test_frame_and_records_encode_identically_without_strings(seed: int) -> None:
    records = numeric_records(seed, 50)
    from_records = RecordEncoder(NUMERIC).encode(records)
    from_frame = encode_frame(NUMERIC, frame_of(records))
    assert from_frame.dtype == np.float64
    np.testing.assert_array_equal(from_frame, from_records)


def test_frame_with_pandas_nullable_dtypes_encodes_like_records() -> None:
    frame = pd.DataFrame(
        {
            "income": pd.array([1.5, 2.0, 3.0], dtype="Float64"),
            "months": pd.array([1, None, 3], dtype="Int64"),
            "married": pd.array([True, False, None], dtype="boolean"),
            "purpose": pd.Categorical(["a", None, "b"]),
        }
    )
    records: list[dict[str, Any]] = [
        {"income": 1.5, "months": 1, "married": True, "purpose": "a"},
        {"income": 2.0, "months": None, "married": False, "purpose": None},
        {"income": 3.0, "months": 3, "married": None, "purpose": "b"},
    ]
    np.testing.assert_array_equal(
        encode_frame(NUMERIC, frame), RecordEncoder(NUMERIC).encode(records)
    )


def test_frame_category_codes_follow_the_signature_not_the_pandas_order() -> None:
    signature = ModelSignature(
        task="regression",
        inputs=(Feature(name="grade", dtype="category", categories=("low", "mid", "high")),),
    )
    frame = pd.DataFrame(
        {"grade": pd.Categorical(["high", "low", "mid"], categories=["mid", "high", "low"])}
    )
    np.testing.assert_array_equal(encode_frame(signature, frame), [[2.0], [0.0], [1.0]])


def test_frame_category_values_are_compared_as_text() -> None:
    signature = ModelSignature(
        task="regression",
        inputs=(Feature(name="rating", dtype="category", categories=("1", "2", "3")),),
    )
    frame = pd.DataFrame({"rating": pd.Categorical([3, 1, 2])})
    np.testing.assert_array_equal(encode_frame(signature, frame), [[2.0], [0.0], [1.0]])


def test_frame_bool_feature_accepts_zero_and_one() -> None:
    frame = pd.DataFrame(
        {"income": [1.0, 2.0], "months": [1, 2], "married": [1, 0], "purpose": ["a", "b"]}
    )
    np.testing.assert_array_equal(
        encode_frame(NUMERIC, frame), [[1.0, 1.0, 1.0, 1.0], [2.0, 2.0, 0.0, 0.0]]
    )


def test_frame_ignores_extra_columns_and_their_order() -> None:
    records = numeric_records(7, 10)
    frame = frame_of(records)[["purpose", "married", "months", "income"]].assign(extra="x")
    np.testing.assert_array_equal(
        encode_frame(NUMERIC, frame), RecordEncoder(NUMERIC).encode(records)
    )


def test_empty_frame() -> None:
    frame = pd.DataFrame({name: [] for name in SIGNATURE.feature_names})
    encoded = encode_frame(SIGNATURE, frame)
    assert encoded.shape == (0, 6)
    assert encoded.dtype == np.dtype(object)


def frame_row(**changes: Any) -> pd.DataFrame:
    """Three good rows with a custom index, then ``changes`` applied to the third row."""
    frame = frame_of([good_row(), good_row(), good_row()], index=[10, 20, 30])
    for name, value in changes.items():
        frame[name] = frame[name].astype(object)
        frame.loc[30, name] = value
    return frame


BAD_FRAMES = [
    pytest.param(frame_of([without("income")]), "data has no column 'income'", id="no-column"),
    pytest.param(
        frame_row(income=None), "row 2: null is not allowed for field 'income'", id="null"
    ),
    pytest.param(
        frame_row(married=np.nan), "row 2: null is not allowed for field 'married'", id="nan-bool"
    ),
    pytest.param(
        frame_row(purpose=None),
        "row 2: null is not allowed for field 'purpose'",
        id="null-category",
    ),
    pytest.param(
        frame_row(purpose="boat"),
        "row 2: field 'purpose' must be one of its 3 categories, got 'boat'",
        id="unknown-category",
    ),
    pytest.param(
        frame_row(purpose=1),
        "row 2: field 'purpose' must be one of its 3 categories, got '1'",
        id="number-for-category",
    ),
    pytest.param(frame_row(income="abc"), "field 'income' must be numeric", id="text-for-float"),
    pytest.param(frame_row(months=[1]), "field 'months' must be numeric", id="list-for-int"),
    pytest.param(frame_row(months=0), "field 'months' must be ≥ 1, got 0", id="below-min"),
    pytest.param(frame_row(months=80), "field 'months' must be ≤ 72, got 80", id="above-max"),
    pytest.param(
        frame_row(income=-2.5), "field 'income' must be ≥ 0, got -2.5", id="below-float-min"
    ),
    pytest.param(
        frame_row(income=np.inf),
        "row 2: field 'income' must be a finite number, got number inf",
        id="infinity",
    ),
    pytest.param(
        frame_row(savings=-np.inf),
        "row 2: field 'savings' must be a finite number, got number -inf",
        id="minus-infinity-in-nullable",
    ),
    pytest.param(
        frame_row(months=2.5),
        "row 2: field 'months' must be an integer, got number 2.5",
        id="fraction-for-int",
    ),
    pytest.param(
        frame_row(married=7),
        "row 2: field 'married' must be true or false, got number 7",
        id="seven-for-bool",
    ),
]


@pytest.mark.parametrize(("frame", "message"), BAD_FRAMES)
def test_bad_frames(frame: pd.DataFrame, message: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        encode_frame(SIGNATURE, frame)
    assert str(caught.value) == message


def test_frame_nulls_are_nan_or_none_when_nullable() -> None:
    encoded = encode_frame(SIGNATURE, frame_row(savings=None, note=None))
    assert math.isnan(encoded[2, 4])
    assert encoded[2, 5] is None


PII_BAD_FRAMES = [
    pytest.param({"age": 17}, "field 'age' must be ≥ 18, got", id="below-min"),
    pytest.param({"age": 101}, "field 'age' must be ≤ 100, got", id="above-max"),
    pytest.param({"age": 40.5}, "row 1: field 'age' must be an integer, got", id="fraction"),
    pytest.param(
        {"salary": np.inf}, "row 1: field 'salary' must be a finite number, got", id="inf"
    ),
    pytest.param({"smoker": 2}, "row 1: field 'smoker' must be true or false, got", id="bool"),
    pytest.param(
        {"postcode": "12345"},
        "row 1: field 'postcode' must be one of its 2 categories, got",
        id="unknown-category",
    ),
]


@pytest.mark.parametrize(("change", "message"), PII_BAD_FRAMES)
def test_frame_errors_never_echo_pii(change: dict[str, Any], message: str) -> None:
    frame = frame_of([pii_row(), pii_row(**change)])
    with pytest.raises(SchemaMismatch) as caught:
        encode_frame(PII, frame)
    assert str(caught.value) == f"{message} {PII_HIDDEN}"


def test_german_credit_frame_and_records_agree() -> None:
    from finmaas.datasets.german_credit import (
        GERMAN_CREDIT_TARGET,
        german_credit_signature,
        load_german_credit,
    )

    signature = german_credit_signature()
    frame = load_german_credit().drop(columns=[GERMAN_CREDIT_TARGET]).sample(50, random_state=3)
    records = [{str(key): value for key, value in row.items()} for row in frame.to_dict("records")]
    np.testing.assert_array_equal(
        encode_frame(signature, frame), RecordEncoder(signature).encode(records)
    )


def test_unknown_category_policy_missing_encodes_nan() -> None:
    signature = ModelSignature(
        task="binary",
        classes=("good", "bad"),
        positive_class="bad",
        inputs=(
            Feature(
                name="purpose",
                dtype="category",
                categories=("car", "tv"),
                unknown_category="missing",
            ),
            Feature(name="income", dtype="float"),
        ),
    )
    encoded = RecordEncoder(signature).encode(
        [{"purpose": "boat", "income": 1.0}, {"purpose": "tv", "income": 2.0}]
    )
    assert np.isnan(encoded[0, 0])
    assert encoded[1, 0] == 1.0
    frame = encode_frame(
        signature, pd.DataFrame({"purpose": ["boat", "car"], "income": [1.0, 2.0]})
    )
    assert np.isnan(frame[0, 0])
    assert frame[1, 0] == 0.0
    with pytest.raises(SchemaMismatch) as err:
        RecordEncoder(signature).encode([{"purpose": 3, "income": 1.0}])
    assert (
        str(err.value)
        == "row 0: field 'purpose' must be one of its categories (a string), got number 3"
    )


def test_unknown_category_policy_only_on_categories() -> None:
    from finmaas.schema import signature_from_dict

    with pytest.raises(InvalidSignature) as err:
        signature_from_dict(
            {
                "task": "regression",
                "inputs": [{"name": "x", "dtype": "float", "unknown_category": "missing"}],
            }
        )
    assert (
        str(err.value)
        == "invalid signature: inputs[0]: 'unknown_category' is only allowed on category features"
    )


WHOLE = ModelSignature(task="regression", inputs=(Feature(name="amount", dtype="int"),))
"""An int feature without bounds: only the int64 range limits it."""
INT64_RULE = "must be an integer from -9223372036854775808 to 9223372036854775807"


@pytest.mark.parametrize(
    ("value", "encoded"),
    [
        (3, 3.0),
        (3.0, 3.0),  # a whole float is a whole number (pandas writes ints as 3.0 next to NaN)
        (1e3, 1000.0),
        (-(2**63), -(2.0**63)),
        (-(2.0**63), -(2.0**63)),
        (2**63 - 1, 2.0**63 - 1024),  # the nearest double inside the int64 range
        (2**53 + 1, 2.0**53),
        (2.0**63 - 1024, 2.0**63 - 1024),
    ],
)
def test_an_int_feature_takes_whole_numbers_of_the_int64_range(
    value: object, encoded: float
) -> None:
    assert RecordEncoder(WHOLE).encode([{"amount": value}])[0, 0] == encoded


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (2**63, f"row 0: field 'amount' {INT64_RULE}, got number 9223372036854775808"),
        (2.0**63, f"row 0: field 'amount' {INT64_RULE}, got number 9.223372036854776e+18"),
        (2**64, f"row 0: field 'amount' {INT64_RULE}, got number 18446744073709551616"),
        (-(2**63) - 1, f"row 0: field 'amount' {INT64_RULE}, got number -9223372036854775809"),
        (1e40, f"row 0: field 'amount' {INT64_RULE}, got number 1e+40"),
        (10**40, f"row 0: field 'amount' {INT64_RULE}, got number 1{'0' * 40}"),
        (3.5, "row 0: field 'amount' must be an integer, got number 3.5"),
        (math.inf, "row 0: field 'amount' must be a finite number, got number inf"),
        (math.nan, "row 0: field 'amount' must be a finite number, got number nan"),
    ],
)
def test_an_int_feature_refuses_what_int64_cannot_hold(value: object, message: str) -> None:
    with pytest.raises(SchemaMismatch) as caught:
        RecordEncoder(WHOLE).encode([{"amount": value}])
    assert str(caught.value) == message


def test_a_frame_follows_the_int64_rule_too() -> None:
    with pytest.raises(SchemaMismatch) as caught:
        encode_frame(WHOLE, pd.DataFrame({"amount": [1.0, 2.0**64]}))
    assert (
        str(caught.value)
        == f"row 1: field 'amount' {INT64_RULE}, got number 1.8446744073709552e+19"
    )
    top = encode_frame(WHOLE, pd.DataFrame({"amount": [2**63 - 1]}))
    assert top[0, 0] == 2.0**63 - 1024


COLUMNAR = ModelSignature(
    task="binary",
    classes=("good", "bad"),
    positive_class="bad",
    inputs=(
        Feature(name="income", dtype="float", min=0),
        Feature(name="months", dtype="int", min=1, max=72),
        Feature(name="purpose", dtype="category", categories=("radio/tv", "car", "education")),
        Feature(name="balance", dtype="float"),
        Feature(name="count", dtype="int"),
    ),
)
"""Only features a batch can be encoded by columns for (no bool, no string)."""


def columnar_records(seed: int, n: int) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [
        {
            "income": rng.choice((round(rng.uniform(0, 10_000), 2), rng.randint(0, 10_000))),
            "months": rng.choice((rng.randint(1, 72), float(rng.randint(1, 72)))),
            "purpose": rng.choice(("radio/tv", "car", "education")),
            "balance": rng.choice((rng.gauss(0, 1e6), 2.0**60, -(2**40))),
            "count": rng.choice((rng.randint(-(2**40), 2**40), 3.0)),
        }
        for _ in range(n)
    ]


def one_by_one(encoder: RecordEncoder, records: list[dict[str, Any]]) -> np.ndarray:
    """The row path: each record alone (batches below COLUMNS_FROM never take columns)."""
    return np.vstack([encoder.encode([record]) for record in records])


@pytest.mark.parametrize("seed", range(5))
def test_a_batch_encoded_by_columns_equals_the_records_encoded_one_by_one(seed: int) -> None:
    encoder = RecordEncoder(COLUMNAR)
    records = columnar_records(seed, 200)
    batch = encoder.encode(records)
    assert batch.flags.c_contiguous
    assert batch.dtype == np.float64
    np.testing.assert_array_equal(batch, one_by_one(encoder, records))


BAD_IN_A_BATCH = [
    ("income", -1.0),
    ("months", 73),
    ("months", 2.5),
    ("months", True),
    ("purpose", "boat"),
    ("purpose", 1),
    ("balance", None),
    ("balance", "12"),
    ("count", 2**70),
    ("income", 10**400),
    ("count", -(10**400)),
    ("extra", 1),
]


@pytest.mark.parametrize(("field", "value"), BAD_IN_A_BATCH)
def test_a_bad_value_in_a_batch_is_named_as_in_a_single_record(field: str, value: object) -> None:
    records = columnar_records(1, 100)
    records[57] = {**records[57], field: value}
    with pytest.raises(SchemaMismatch) as alone:
        RecordEncoder(COLUMNAR).encode([records[57]])
    with pytest.raises(SchemaMismatch) as in_batch:
        RecordEncoder(COLUMNAR).encode(records)
    assert str(alone.value).startswith("row 0: ")
    assert str(in_batch.value) == "row 57: " + str(alone.value).removeprefix("row 0: ")


def test_a_missing_field_in_a_batch_is_named_as_in_a_single_record() -> None:
    records = columnar_records(2, 100)
    del records[57]["count"]
    with pytest.raises(SchemaMismatch) as caught:
        RecordEncoder(COLUMNAR).encode(records)
    assert str(caught.value) == "row 57: missing field 'count'"


def test_an_int_beyond_2_to_the_53_in_a_batch_is_encoded_exactly_as_alone() -> None:
    encoder = RecordEncoder(COLUMNAR)
    records = columnar_records(3, 20)
    records[5]["count"] = 2**53 + 1  # not exact as a double: the checked path rounds it
    np.testing.assert_array_equal(encoder.encode(records), one_by_one(encoder, records))
