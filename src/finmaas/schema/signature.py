"""Model signatures: the ordered inputs a version accepts and the outputs it gives.

A signature is part of a version and never changes. It is stored as JSON; load
untrusted JSON with :func:`signature_from_json`, which names the first broken
rule in its error, and a document the registry stored with
:func:`signature_from_stored`.

A binary signature names its positive class: ``classes`` lists the labels in the
model's order (the model's label 0 first), the model returns the probability of
the second, and ``positive_class`` must say which one that is. A signature stored
before ``positive_class`` was required is read with the rule it was published
under: the second class is positive.
"""

from __future__ import annotations

import math
from typing import Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from finmaas.errors import InvalidSignature

FeatureType = Literal["float", "int", "bool", "category", "string"]
OutputType = Literal["float", "int", "bool", "string"]
Task = Literal["binary", "multiclass", "regression", "llm"]
"""``llm``: a generative model (chat messages in, text out), served by the OpenAI
routes; its signature is :data:`LLM_SIGNATURE`, the tabular data plane refuses it."""

MAX_FEATURES = 10_000
MAX_CATEGORIES = 10_000
MAX_NAME_LENGTH = 128
DEFAULT_MAX_STRING_LENGTH = 4_096

_NAME = r"^[^\x00-\x1f\x7f]+$"
_TASKS = ("binary", "multiclass", "regression", "llm")


class Feature(BaseModel):
    """One input column, in the order the model reads it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=_NAME)
    dtype: FeatureType
    categories: tuple[str, ...] | None = Field(default=None, max_length=MAX_CATEGORIES)
    """Allowed raw values of a ``category`` feature; a value is encoded as its index here."""
    min: float | None = None
    max: float | None = None
    nullable: bool = False
    """Whether a missing value (null) is allowed; it is encoded as NaN."""
    pii: bool = False
    """Personal data: masked in every log and never used as a metric label."""
    unknown_category: Literal["reject", "missing"] = "reject"
    """What a category outside ``categories`` does: fail the request (``reject``) or
    be encoded as a missing value (``missing``, NaN), the model's own unknown bucket."""
    max_length: int | None = Field(default=None, ge=1, le=1_048_576)
    """Longest accepted value of a ``string`` feature (default 4096 characters)."""
    description: str = Field(default="", max_length=2_000)
    actionable: bool = False
    """Whether an applicant can change it (a loan's amount or term; never age): the
    inputs a counterfactual explanation may suggest changing."""

    @model_validator(mode="after")
    def _check_rules(self) -> Feature:
        if self.dtype == "category":
            if not self.categories:
                raise ValueError("a category feature needs a non-empty 'categories' list")
            if len(set(self.categories)) != len(self.categories):
                raise ValueError("'categories' has duplicate values")
        elif self.categories is not None:
            raise ValueError(f"'categories' is only allowed on category features, not {self.dtype}")
        if self.dtype not in ("float", "int") and (self.min is not None or self.max is not None):
            raise ValueError(
                f"'min'/'max' are only allowed on float and int features, not {self.dtype}"
            )
        for bound in (self.min, self.max):
            if bound is not None and not math.isfinite(bound):
                raise ValueError("'min' and 'max' must be finite numbers")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"'min' ({self.min:g}) is greater than 'max' ({self.max:g})")
        if self.max_length is not None and self.dtype != "string":
            raise ValueError("'max_length' is only allowed on string features")
        if self.unknown_category != "reject" and self.dtype != "category":
            raise ValueError("'unknown_category' is only allowed on category features")
        return self

    @property
    def string_limit(self) -> int:
        return self.max_length or DEFAULT_MAX_STRING_LENGTH


class Output(BaseModel):
    """One value the model returns per row."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=MAX_NAME_LENGTH, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    dtype: OutputType = "float"


def default_outputs(task: Task) -> tuple[Output, ...]:
    if task == "regression":
        return (Output(name="value", dtype="float"),)
    if task == "llm":
        return (Output(name="text", dtype="string"),)
    return (Output(name="probability", dtype="float"), Output(name="label", dtype="string"))


def missing_positive_class(how: str) -> str:
    """Why a binary signature needs its positive class, and ``how`` to give it."""
    return (
        "a binary signature needs its positive class, the outcome whose probability the "
        f"model returns (for credit: the adverse one, e.g. bad): {how}; without it the labels "
        "and adverse-action reasons can be attached to the wrong applicants"
    )


class ModelSignature(BaseModel):
    """Inputs, outputs and task of a version.

    For classifiers ``classes`` lists the labels in the model's own order; for
    ``binary`` the model returns the probability of the second one, which
    ``positive_class`` must name (for credit models: the adverse outcome, e.g.
    ``bad``, so ``classes`` is ``["good", "bad"]``).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = 1
    task: Task
    inputs: tuple[Feature, ...] = Field(min_length=1, max_length=MAX_FEATURES)
    outputs: tuple[Output, ...] = Field(default=(), max_length=64)
    classes: tuple[str, ...] | None = Field(default=None, max_length=MAX_CATEGORIES)
    positive_class: str | None = None
    """Binary only, and required there: the class whose probability the model
    returns, which is the second of ``classes``."""

    @model_validator(mode="after")
    def _check_rules(self) -> ModelSignature:
        seen: set[str] = set()
        for feature in self.inputs:
            if feature.name in seen:
                raise ValueError(f"input name {feature.name!r} appears twice")
            seen.add(feature.name)
        seen.clear()
        for output in self.outputs:
            if output.name in seen:
                raise ValueError(f"output name {output.name!r} appears twice")
            seen.add(output.name)
        if self.task in ("regression", "llm"):
            if self.classes is not None:
                raise ValueError("'classes' is only allowed on binary and multiclass tasks")
        else:
            expected = "exactly 2" if self.task == "binary" else "at least 3"
            count = len(self.classes or ())
            if (self.task == "binary" and count != 2) or (self.task == "multiclass" and count < 3):
                raise ValueError(f"a {self.task} task needs {expected} 'classes', got {count}")
            if len(set(self.classes or ())) != count:
                raise ValueError("'classes' has duplicate values")
        if self.task == "binary":
            self._check_positive_class()
        elif self.positive_class is not None:
            raise ValueError("'positive_class' is only allowed on binary tasks")
        return self

    def _check_positive_class(self) -> None:
        assert self.classes is not None
        positive = self.positive_class
        if positive is None:
            raise ValueError(missing_positive_class("set 'positive_class'"))
        second = self.classes[1]
        if positive not in self.classes:
            raise ValueError(
                f"'positive_class' {positive!r} is not one of 'classes' {list(self.classes)!r}"
            )
        if positive != second:
            raise ValueError(
                f"'positive_class' {positive!r} must be the second of 'classes' "
                f"{list(self.classes)!r}: the model returns the probability of its second class "
                f"(if it returns P({positive!r}), list the classes as {[second, positive]!r})"
            )

    @model_validator(mode="before")
    @classmethod
    def _default_outputs(cls, data: object) -> object:
        if isinstance(data, dict) and not data.get("outputs") and data.get("task") in _TASKS:
            return {**data, "outputs": default_outputs(data["task"])}
        return data

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(feature.name for feature in self.inputs)

    def to_dict(self) -> dict[str, object]:
        return self.model_dump(mode="json", exclude_none=True, exclude_defaults=False)

    def to_json(self) -> bytes:
        return orjson.dumps(self.to_dict(), option=orjson.OPT_INDENT_2)


LLM_SIGNATURE = ModelSignature(
    task="llm",
    inputs=(Feature(name="messages", dtype="string"),),
    outputs=(Output(name="text", dtype="string"),),
)
"""The signature of every ``llm`` version: chat messages in, text out. Fixed, so
aliases, diff and the change of meaning checks treat LLM versions like any other;
what an LLM version really takes is the OpenAI request its routes decode."""


def signature_from_dict(data: object) -> ModelSignature:
    """Validate a decoded signature document; raise :class:`InvalidSignature` naming the rule."""
    if not isinstance(data, dict):
        raise InvalidSignature(
            f"invalid signature: expected a JSON object, got {type(data).__name__}"
        )
    try:
        return ModelSignature.model_validate(data)
    except ValidationError as exc:
        raise InvalidSignature(f"invalid signature: {_first_error(exc)}") from None


def signature_from_stored(data: object) -> ModelSignature:
    """A signature document as the registry stored it.

    A binary one stored before ``positive_class`` was required is read with the
    rule it was published and served under: its second class is positive.
    """
    if isinstance(data, dict) and data.get("task") == "binary" and "positive_class" not in data:
        classes = data.get("classes")
        if isinstance(classes, list | tuple) and len(classes) == 2:
            data = {**data, "positive_class": classes[1]}
    return signature_from_dict(data)


def signature_from_json(text: str | bytes) -> ModelSignature:
    try:
        data = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise InvalidSignature(f"invalid signature: not valid JSON ({exc})") from None
    return signature_from_dict(data)


def _first_error(exc: ValidationError) -> str:
    error = exc.errors(include_url=False)[0]
    location = "".join(
        f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]
    ).lstrip(".")
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{location}: {message}" if location else message
