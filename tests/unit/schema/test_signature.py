"""Signature documents: the rules, their exact messages, defaults and the JSON round trip."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from pydantic import ValidationError

from finmaas.errors import Invalid, InvalidSignature
from finmaas.schema import (
    Feature,
    ModelSignature,
    Output,
    signature_from_dict,
    signature_from_json,
    signature_from_stored,
)

X = {"name": "x", "dtype": "float"}


def regression(*inputs: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"task": "regression", "inputs": list(inputs or [X]), **extra}


def one_input(**feature: Any) -> dict[str, Any]:
    return regression({"name": "x", **feature})


def classifier(task: str, classes: Any) -> dict[str, Any]:
    return {"task": task, "inputs": [X], "classes": classes}


NON_FINITE_BOUNDS = [  # Python callers only: JSON cannot carry these numbers
    pytest.param(
        one_input(dtype="int", min=float("inf")),
        "inputs[0]: 'min' and 'max' must be finite numbers",
        id="infinite-min",
    ),
    pytest.param(
        one_input(dtype="float", max=float("-inf")),
        "inputs[0]: 'min' and 'max' must be finite numbers",
        id="infinite-max",
    ),
    pytest.param(
        one_input(dtype="float", min=0, max=float("nan")),
        "inputs[0]: 'min' and 'max' must be finite numbers",
        id="nan-max",
    ),
]

BAD_DOCUMENTS = [
    pytest.param(
        one_input(dtype="category"),
        "inputs[0]: a category feature needs a non-empty 'categories' list",
        id="category-without-categories",
    ),
    pytest.param(
        one_input(dtype="category", categories=[]),
        "inputs[0]: a category feature needs a non-empty 'categories' list",
        id="category-with-empty-categories",
    ),
    pytest.param(
        one_input(dtype="category", categories=["a", "b", "a"]),
        "inputs[0]: 'categories' has duplicate values",
        id="duplicate-categories",
    ),
    pytest.param(
        one_input(dtype="float", categories=["a"]),
        "inputs[0]: 'categories' is only allowed on category features, not float",
        id="categories-on-float",
    ),
    pytest.param(
        one_input(dtype="string", categories=[]),
        "inputs[0]: 'categories' is only allowed on category features, not string",
        id="empty-categories-on-string",
    ),
    pytest.param(
        one_input(dtype="string", min=1),
        "inputs[0]: 'min'/'max' are only allowed on float and int features, not string",
        id="min-on-string",
    ),
    pytest.param(
        one_input(dtype="bool", max=1),
        "inputs[0]: 'min'/'max' are only allowed on float and int features, not bool",
        id="max-on-bool",
    ),
    pytest.param(
        one_input(dtype="category", categories=["a"], min=0),
        "inputs[0]: 'min'/'max' are only allowed on float and int features, not category",
        id="min-on-category",
    ),
    pytest.param(
        one_input(dtype="float", min=2, max=1.5),
        "inputs[0]: 'min' (2) is greater than 'max' (1.5)",
        id="min-above-max",
    ),
    pytest.param(
        one_input(dtype="float", max_length=10),
        "inputs[0]: 'max_length' is only allowed on string features",
        id="max-length-on-float",
    ),
    pytest.param(
        one_input(dtype="category", categories=["a"], max_length=10),
        "inputs[0]: 'max_length' is only allowed on string features",
        id="max-length-on-category",
    ),
    pytest.param(
        one_input(dtype="string", max_length=0),
        "inputs[0].max_length: Input should be greater than or equal to 1",
        id="max-length-zero",
    ),
    pytest.param(
        one_input(dtype="float", min="low"),
        "inputs[0].min: Input should be a valid number, unable to parse string as a number",
        id="min-not-a-number",
    ),
    pytest.param(
        regression(X, {"name": "y", "dtype": "int"}, {"name": "x", "dtype": "string"}),
        "input name 'x' appears twice",
        id="duplicate-input-names",
    ),
    pytest.param(
        regression(X, outputs=[{"name": "value"}, {"name": "value", "dtype": "int"}]),
        "output name 'value' appears twice",
        id="duplicate-output-names",
    ),
    pytest.param(
        classifier("binary", None),
        "a binary task needs exactly 2 'classes', got 0",
        id="binary-without-classes",
    ),
    pytest.param(
        classifier("binary", ["good"]),
        "a binary task needs exactly 2 'classes', got 1",
        id="binary-with-one-class",
    ),
    pytest.param(
        classifier("binary", ["a", "b", "c"]),
        "a binary task needs exactly 2 'classes', got 3",
        id="binary-with-three-classes",
    ),
    pytest.param(
        classifier("binary", ["bad", "bad"]),
        "'classes' has duplicate values",
        id="binary-duplicate-classes",
    ),
    pytest.param(
        classifier("multiclass", None),
        "a multiclass task needs at least 3 'classes', got 0",
        id="multiclass-without-classes",
    ),
    pytest.param(
        classifier("multiclass", ["a", "b"]),
        "a multiclass task needs at least 3 'classes', got 2",
        id="multiclass-with-two-classes",
    ),
    pytest.param(
        classifier("multiclass", ["a", "b", "a"]),
        "'classes' has duplicate values",
        id="multiclass-duplicate-classes",
    ),
    pytest.param(
        classifier("regression", ["a", "b"]),
        "'classes' is only allowed on binary and multiclass tasks",
        id="classes-on-regression",
    ),
    pytest.param(
        classifier("regression", []),
        "'classes' is only allowed on binary and multiclass tasks",
        id="empty-classes-on-regression",
    ),
    pytest.param(
        regression(X, owner="risk-team"),
        "owner: Extra inputs are not permitted",
        id="unknown-top-level-key",
    ),
    pytest.param(
        one_input(dtype="float", unit="EUR"),
        "inputs[0].unit: Extra inputs are not permitted",
        id="unknown-feature-key",
    ),
    pytest.param(
        regression(X, outputs=[{"name": "value", "scale": 2}]),
        "outputs[0].scale: Extra inputs are not permitted",
        id="unknown-output-key",
    ),
    pytest.param(
        one_input(dtype="complex"),
        "inputs[0].dtype: Input should be 'float', 'int', 'bool', 'category' or 'string'",
        id="bad-dtype",
    ),
    pytest.param(
        one_input(),
        "inputs[0].dtype: Field required",
        id="missing-dtype",
    ),
    pytest.param(
        regression(X, outputs=[{"name": "value", "dtype": "category"}]),
        "outputs[0].dtype: Input should be 'float', 'int', 'bool' or 'string'",
        id="bad-output-dtype",
    ),
    pytest.param(
        regression(X, outputs=[{"name": "1st"}]),
        "outputs[0].name: String should match pattern '^[A-Za-z_][A-Za-z0-9_]*$'",
        id="bad-output-name",
    ),
    pytest.param(
        {"task": "clustering", "inputs": [X]},
        "task: Input should be 'binary', 'multiclass', 'regression' or 'llm'",
        id="bad-task",
    ),
    pytest.param({"inputs": [X]}, "task: Field required", id="missing-task"),
    pytest.param({"task": "regression"}, "inputs: Field required", id="missing-inputs"),
    pytest.param(
        {"task": "regression", "inputs": []},
        "inputs: Tuple should have at least 1 item after validation, not 0",
        id="no-inputs",
    ),
    pytest.param(
        regression(X, format_version=2),
        "format_version: Input should be 1",
        id="future-format-version",
    ),
    pytest.param(
        regression({"name": "", "dtype": "float"}),
        "inputs[0].name: String should have at least 1 character",
        id="empty-name",
    ),
    pytest.param(
        regression({"name": "n" * 129, "dtype": "float"}),
        "inputs[0].name: String should have at most 128 characters",
        id="name-too-long",
    ),
    pytest.param(
        regression({"name": "in\ncome", "dtype": "float"}),
        "inputs[0].name: String should match pattern '^[^\\x00-\\x1f\\x7f]+$'",
        id="control-character-in-name",
    ),
    pytest.param(
        regression(X, {"name": "y", "dtype": "category"}),
        "inputs[1]: a category feature needs a non-empty 'categories' list",
        id="location-names-the-broken-input",
    ),
]


@pytest.mark.parametrize(("document", "message"), NON_FINITE_BOUNDS + BAD_DOCUMENTS)
def test_signature_from_dict_names_the_broken_rule(document: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        signature_from_dict(document)
    assert str(caught.value) == f"invalid signature: {message}"


@pytest.mark.parametrize(("document", "message"), BAD_DOCUMENTS)
def test_signature_from_json_names_the_broken_rule(document: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        signature_from_json(orjson.dumps(document))
    assert str(caught.value) == f"invalid signature: {message}"


def test_the_first_broken_rule_is_reported() -> None:
    document = regression(
        {"name": "x", "dtype": "category"}, {"name": "y", "dtype": "float", "min": 2, "max": 1}
    )
    with pytest.raises(InvalidSignature) as caught:
        signature_from_dict(document)
    assert str(caught.value) == (
        "invalid signature: inputs[0]: a category feature needs a non-empty 'categories' list"
    )


def test_error_is_an_invalid_without_the_pydantic_chain() -> None:
    with pytest.raises(InvalidSignature) as caught:
        signature_from_dict(classifier("binary", None))
    assert isinstance(caught.value, Invalid)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


@pytest.mark.parametrize(
    ("text", "message"),
    [
        pytest.param(
            "{not json",
            "not valid JSON (unexpected character, expected a string key: line 1 column 2 (char 1))",
            id="broken-object",
        ),
        pytest.param(
            b"",
            "not valid JSON (Input is a zero-length, empty document: line 1 column 1 (char 0))",
            id="empty-bytes",
        ),
        pytest.param(
            '{"task": "regression",}',
            "not valid JSON (trailing comma is not allowed: line 1 column 22 (char 21))",
            id="trailing-comma",
        ),
    ],
)
def test_invalid_json(text: str | bytes, message: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        signature_from_json(text)
    assert str(caught.value) == f"invalid signature: {message}"


def test_json_has_no_infinity() -> None:
    text = '{"task": "regression", "inputs": [{"name": "x", "dtype": "float", "max": 1e999}]}'
    with pytest.raises(InvalidSignature) as caught:
        signature_from_json(text)
    assert str(caught.value) == (
        "invalid signature: not valid JSON "
        "(number is infinity when parsed as double: line 1 column 74 (char 73))"
    )


@pytest.mark.parametrize(
    ("text", "kind"),
    [("[1, 2]", "list"), ("null", "NoneType"), ('"signature"', "str"), ("3", "int")],
)
def test_json_that_is_not_an_object(text: str, kind: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        signature_from_json(text)
    assert str(caught.value) == f"invalid signature: expected a JSON object, got {kind}"


@pytest.mark.parametrize(
    ("data", "kind"), [([X], "list"), (None, "NoneType"), ((("task", "regression"),), "tuple")]
)
def test_dict_that_is_not_a_dict(data: object, kind: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        signature_from_dict(data)
    assert str(caught.value) == f"invalid signature: expected a JSON object, got {kind}"


def test_feature_defaults() -> None:
    signature = signature_from_dict(regression())
    assert signature.format_version == 1
    assert signature.classes is None
    assert signature.inputs == (
        Feature(
            name="x",
            dtype="float",
            categories=None,
            min=None,
            max=None,
            nullable=False,
            pii=False,
            max_length=None,
            description="",
        ),
    )


@pytest.mark.parametrize(
    ("task", "classes", "outputs"),
    [
        ("regression", None, (Output(name="value", dtype="float"),)),
        (
            "binary",
            ["good", "bad"],
            (Output(name="probability", dtype="float"), Output(name="label", dtype="string")),
        ),
        (
            "multiclass",
            ["low", "mid", "high"],
            (Output(name="probability", dtype="float"), Output(name="label", dtype="string")),
        ),
    ],
)
@pytest.mark.parametrize("given", ["absent", "empty", "null"])
def test_default_outputs_per_task(
    task: str, classes: list[str] | None, outputs: tuple[Output, ...], given: str
) -> None:
    document: dict[str, Any] = {"task": task, "inputs": [X], "classes": classes}
    if task == "binary":
        document["positive_class"] = "bad"
    if given != "absent":
        document["outputs"] = [] if given == "empty" else None
    assert signature_from_dict(document).outputs == outputs


def test_default_outputs_also_apply_to_the_constructor() -> None:
    signature = ModelSignature(task="regression", inputs=(Feature(name="x", dtype="int"),))
    assert signature.outputs == (Output(name="value", dtype="float"),)


def test_declared_outputs_are_kept() -> None:
    document = regression(X, outputs=[{"name": "pd"}, {"name": "grade", "dtype": "string"}])
    assert signature_from_dict(document).outputs == (
        Output(name="pd", dtype="float"),
        Output(name="grade", dtype="string"),
    )


MISSING_POSITIVE_CLASS = (
    "invalid signature: a binary signature needs its positive class, the outcome whose "
    "probability the model returns (for credit: the adverse one, e.g. bad): set "
    "'positive_class'; without it the labels and adverse-action reasons can be attached to "
    "the wrong applicants"
)


@pytest.mark.parametrize(
    ("classes", "positive"),
    [(["good", "bad"], "bad"), (["bad", "good"], "good"), (["0", "1"], "1")],
)
def test_a_binary_signature_names_its_positive_class_the_second(
    classes: list[str], positive: str
) -> None:
    document = {"task": "binary", "inputs": [X], "classes": classes, "positive_class": positive}
    signature = signature_from_dict(document)
    assert signature.positive_class == positive
    assert signature.to_dict()["positive_class"] == positive


@pytest.mark.parametrize(
    ("document", "message"),
    [
        pytest.param(classifier("binary", ["good", "bad"]), MISSING_POSITIVE_CLASS, id="missing"),
        pytest.param(
            {**classifier("binary", ["good", "bad"]), "positive_class": "ugly"},
            "invalid signature: 'positive_class' 'ugly' is not one of 'classes' ['good', 'bad']",
            id="not-a-class",
        ),
        pytest.param(
            {**classifier("binary", ["bad", "good"]), "positive_class": "bad"},
            "invalid signature: 'positive_class' 'bad' must be the second of 'classes' "
            "['bad', 'good']: the model returns the probability of its second class (if it "
            "returns P('bad'), list the classes as ['good', 'bad'])",
            id="first-class",
        ),
        pytest.param(
            {**classifier("multiclass", ["a", "b", "c"]), "positive_class": "c"},
            "invalid signature: 'positive_class' is only allowed on binary tasks",
            id="multiclass",
        ),
        pytest.param(
            regression(positive_class="bad"),
            "invalid signature: 'positive_class' is only allowed on binary tasks",
            id="regression",
        ),
    ],
)
def test_positive_class_rules(document: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidSignature) as caught:
        signature_from_json(orjson.dumps(document))
    assert str(caught.value) == message


def test_a_binary_signature_built_in_python_needs_its_positive_class() -> None:
    with pytest.raises(ValidationError, match="a binary signature needs its positive class"):
        ModelSignature(
            task="binary", inputs=(Feature(name="x", dtype="float"),), classes=("a", "b")
        )


@pytest.mark.parametrize(
    ("classes", "positive"), [(["good", "bad"], "bad"), (["bad", "good"], "good")]
)
def test_a_stored_signature_without_positive_class_reads_the_second_class_as_positive(
    classes: list[str], positive: str
) -> None:
    """Versions published before 'positive_class' was required load and serve as before."""
    signature = signature_from_stored(classifier("binary", classes))
    assert (signature.classes, signature.positive_class) == (tuple(classes), positive)


def test_a_stored_signature_keeps_its_positive_class_and_its_rules() -> None:
    declared = {**classifier("binary", ["good", "bad"]), "positive_class": "bad"}
    assert signature_from_stored(declared) == signature_from_dict(declared)
    assert signature_from_stored(regression()).positive_class is None
    with pytest.raises(InvalidSignature, match="must be the second of 'classes'"):
        signature_from_stored({**classifier("binary", ["good", "bad"]), "positive_class": "good"})


def test_feature_names_keep_the_declared_order() -> None:
    signature = signature_from_dict(
        regression({"name": "b", "dtype": "int"}, {"name": "a", "dtype": "bool"}, X)
    )
    assert signature.feature_names == ("b", "a", "x")


@pytest.mark.parametrize(("max_length", "limit"), [(None, 4096), (1, 1), (20, 20)])
def test_string_limit(max_length: int | None, limit: int) -> None:
    assert Feature(name="note", dtype="string", max_length=max_length).string_limit == limit


@pytest.mark.parametrize(
    "feature",
    [
        {"name": "x", "dtype": "float", "min": 1.5, "max": 1.5},
        {"name": "x", "dtype": "int", "min": -10},
        {"name": "x", "dtype": "float", "max": -0.5},
        {"name": "größe €", "dtype": "float"},
        {"name": "n" * 128, "dtype": "float"},
        {"name": "x", "dtype": "category", "categories": ["only"]},
        {"name": "x", "dtype": "string", "max_length": 1_048_576},
    ],
)
def test_edge_features_that_are_valid(feature: dict[str, Any]) -> None:
    signature = signature_from_dict(regression(feature))
    assert signature.inputs[0].name == feature["name"]


def test_rules_hold_when_a_feature_is_built_directly() -> None:
    with pytest.raises(ValidationError, match="'categories' has duplicate values"):
        Feature(name="x", dtype="category", categories=("a", "a"))


def test_signature_is_immutable() -> None:
    signature = signature_from_dict(regression())
    with pytest.raises(ValidationError, match="Instance is frozen"):
        signature.task = "binary"  # type: ignore[misc]


def rich_signature() -> ModelSignature:
    return signature_from_dict(
        {
            "task": "binary",
            "classes": ["good", "bad"],
            "positive_class": "bad",
            "inputs": [
                {"name": "income", "dtype": "float", "min": 0, "description": "net, EUR/month"},
                {"name": "age", "dtype": "int", "min": 18, "max": 100, "pii": True},
                {"name": "married", "dtype": "bool", "nullable": True},
                {"name": "purpose", "dtype": "category", "categories": ["car", "radio/tv"]},
                {"name": "note", "dtype": "string", "max_length": 200, "nullable": True},
            ],
        }
    )


def test_to_json_round_trip() -> None:
    signature = rich_signature()
    text = signature.to_json()
    assert isinstance(text, bytes)
    assert signature_from_json(text) == signature
    assert signature_from_json(text.decode()) == signature
    assert signature_from_dict(signature.to_dict()) == signature


def test_to_dict_leaves_out_unset_optional_rules() -> None:
    document = rich_signature().to_dict()
    assert document["inputs"][0] == {  # type: ignore[index]
        "name": "income",
        "dtype": "float",
        "min": 0.0,
        "nullable": False,
        "pii": False,
        "unknown_category": "reject",
        "description": "net, EUR/month",
        "actionable": False,
    }
    assert document["outputs"] == [
        {"name": "probability", "dtype": "float"},
        {"name": "label", "dtype": "string"},
    ]
    assert (document["format_version"], document["classes"]) == (1, ["good", "bad"])
    assert document["positive_class"] == "bad"
