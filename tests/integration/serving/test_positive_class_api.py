"""The positive class through ``/api`` (issue 21, item 1): a publish states it and is
checked against labelled reference rows; an alias moves across a change of classes
only when the change is accepted. Each changed route is also called with a key of
another tenant and a key of each lower role, flag or labels included."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import lightgbm as lgb
import numpy as np
import orjson
import pytest
from sklearn.metrics import roc_auc_score

from finmaas.actor import Actor
from finmaas.config import Settings
from finmaas.registry import Registry
from finmaas.schema import encode_frame
from tests.integration.registry.helpers import SIGNATURE, new_version
from tests.integration.serving.test_tenant_authz import (
    ALIAS,
    NOT_FOUND,
    OTHER_TENANT,
    PUBLISH,
    InProcessApi,
    World,
    _audit,
    _error,
    _role,
    _seed,
)

INVERTED = SIGNATURE.model_copy(update={"classes": ("bad", "good"), "positive_class": "good"})
ACCEPT = {"version": 3, "accept_signature_change": True}
MISSING = (
    "invalid signature: a binary signature needs its positive class, the outcome whose "
    "probability the model returns (for credit: the adverse one, e.g. bad): set "
    "'positive_class'; without it the labels and adverse-action reasons can be attached to "
    "the wrong applicants"
)


@pytest.fixture
def world(settings: Settings) -> Iterator[World]:
    """test_tenant_authz's world: credit-risk@1 and @2 of tenant-a, production → 1."""
    tokens, ids, job_id = _seed(settings)
    api = InProcessApi(settings, tokens)
    try:
        yield World(api, ids, job_id)
    finally:
        api.close()


def _model() -> tuple[bytes, lgb.Booster]:
    """A tiny LightGBM model of SIGNATURE's inputs (income, purpose) returning P(label 1)."""
    rng = np.random.default_rng(3)
    x = np.column_stack([rng.gamma(2.0, 1000.0, 300), rng.integers(0, 2, 300)]).astype(float)
    y = (x[:, 0] / 4000 + 0.4 * x[:, 1] > 0.7).astype(int)
    params = {"objective": "binary", "verbose": -1, "num_leaves": 4, "seed": 0, "num_threads": 1}
    booster = lgb.train(params, lgb.Dataset(x, y, categorical_feature=[1]), num_boost_round=10)
    return booster.model_to_string().encode(), booster


def _reference(booster: lgb.Booster, *, inverted: bool) -> tuple[list[dict[str, Any]], float]:
    """100 records labelled by the rule the model learnt (or the other way round), and
    the AUC of the model's score for 'bad' on them."""
    import pandas as pd

    rng = np.random.default_rng(8)
    income = rng.gamma(2.0, 1000.0, 100).round(2)
    purpose = np.array(["car", "house"])[rng.integers(0, 2, 100)]
    frame = pd.DataFrame({"income": income, "purpose": purpose})
    scores = booster.predict(np.asarray(encode_frame(SIGNATURE, frame), dtype=float))
    one = income / 4000 + 0.4 * (purpose == "house") > 0.7
    bad = ~one if inverted else one
    records = [
        {"income": float(i), "purpose": str(p), "outcome": "bad" if b else "good"}
        for i, p, b in zip(income, purpose, bad, strict=True)
    ]
    return records, float(roc_auc_score(bad, scores))


def _publish_body(data: bytes, signature: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {
        "artifact": base64.b64encode(data).decode(),
        "filename": "model.txt",
        "signature": signature,
        **more,
    }


def test_a_publish_without_the_positive_class_is_refused(world: World) -> None:
    data, _ = _model()
    old = orjson.loads(SIGNATURE.to_json())
    del old["positive_class"]
    refused = world.api.call("a_developer", "POST", PUBLISH, _publish_body(data, old))
    assert _error(refused) == (400, MISSING)


def test_a_publish_with_labels_refuses_a_model_that_ranks_the_positive_class_below_chance(
    world: World, settings: Settings
) -> None:
    data, booster = _model()
    signature = orjson.loads(SIGNATURE.to_json())
    records, auc = _reference(booster, inverted=True)
    assert auc < 0.5
    body = _publish_body(data, signature, reference=records, reference_target="outcome")
    refused = world.api.call("a_developer", "POST", PUBLISH, body)
    assert _error(refused) == (
        400,
        f"refused: on the 100 labelled reference rows the model's probability of 'bad' ranks "
        f"'bad' below chance (AUC {auc:.3f}, under 0.5); is the positive class inverted? If "
        "the model returns the probability of 'good', declare classes ['bad', 'good'] with "
        "positive_class 'good'",
    )

    records, auc = _reference(booster, inverted=False)
    body = _publish_body(data, signature, reference=records, reference_target="outcome")
    published = world.api.call("a_developer", "POST", PUBLISH, body)
    assert published.status_code == 201, published.text
    assert published.json()["version"] == 3
    registry = Registry.open(settings)
    try:
        version = registry.get_version("credit-risk", 3)
    finally:
        registry.close()
    assert version.metrics["reference_auc"] == pytest.approx(auc, abs=1e-9)
    assert version.params["reference_labels"]["rows"] == 100


@pytest.mark.parametrize(
    ("more", "message"),
    [
        ({"reference_target": "outcome"}, "'reference_target' names a column of 'reference'; "
         "send 'reference'"),
        ({"reference": [{"income": 1.0, "purpose": "car"}], "reference_target": "outcome"},
         "the reference target column 'outcome' is not in 'reference'"),
        ({"reference": [{"income": 1.0, "purpose": "car"}], "reference_target": 7},
         "'reference_target' must be the name of a column of 'reference'"),
    ],
)  # fmt: skip
def test_a_reference_target_must_name_a_reference_column(
    world: World, more: dict[str, Any], message: str
) -> None:
    data, _ = _model()
    body = _publish_body(data, orjson.loads(SIGNATURE.to_json()), **more)
    assert _error(world.api.call("a_developer", "POST", PUBLISH, body)) == (400, message)


def _publish_inverted(settings: Settings, world: World) -> None:
    """credit-risk@3: the same inputs, the classes the other way round."""
    registry = Registry.open(settings)
    try:
        author = Actor(f"key:{world.ids['a_developer']}", role="developer", tenant="tenant-a")
        registry.publish_version("credit-risk", new_version("3", signature=INVERTED), actor=author)
    finally:
        registry.close()


def test_an_alias_moves_across_a_class_change_only_when_it_is_accepted(
    world: World, settings: Settings
) -> None:
    _publish_inverted(settings, world)
    api = world.api
    assert api.call("a_developer", "PUT", f"{ALIAS}/staging", {"version": 1}).status_code == 200
    refused = api.call("a_developer", "PUT", f"{ALIAS}/staging", {"version": 3})
    assert _error(refused) == (
        409,
        "version 3 of model 'credit-risk' changes what alias 'staging' returns (now version 1): "
        "classes order good, bad → bad, good; positive class bad → good. Clients of 'staging' "
        "would read probabilities and labels of another meaning; if that is intended, accept "
        'the change (--accept-signature-change, or "accept_signature_change": true in the API '
        "body)",
    )
    not_a_bool = api.call(
        "a_developer", "PUT", f"{ALIAS}/staging", {"version": 3, "accept_signature_change": "yes"}
    )
    assert _error(not_a_bool) == (400, "'accept_signature_change' must be true or false")
    moved = api.call("a_developer", "PUT", f"{ALIAS}/staging", ACCEPT)
    assert moved.json() == {"model": "credit-risk", "alias": "staging", "version": 3}
    [entry] = [
        e for e in _audit(world, "a_auditor", action="alias.set") if e["after"]["version"] == 3
    ]
    assert entry["after"]["signature_change"] == [
        "classes: order good, bad → bad, good",
        "positive class: bad → good",
    ]


# key, body, status, message: the flag opens no door a key did not have
ALIAS_REFUSALS = [
    ("b_developer", ACCEPT, 403, OTHER_TENANT),
    ("b_consumer", ACCEPT, 403, _role("developer", "consumer")),
    ("b_validator", ACCEPT, 403, _role("developer", "validator")),
    ("b_stranger_dev", ACCEPT, 404, NOT_FOUND),
    ("a_consumer", ACCEPT, 403, _role("developer", "consumer")),
    ("a_validator", ACCEPT, 403, _role("developer", "validator")),
    ("a_auditor", ACCEPT, 403, _role("developer", "auditor")),
]


@pytest.mark.parametrize(("key", "body", "status", "message"), ALIAS_REFUSALS)
def test_accepting_a_signature_change_needs_the_right_to_move_the_alias(
    world: World, settings: Settings, key: str, body: dict[str, Any], status: int, message: str
) -> None:
    _publish_inverted(settings, world)
    api = world.api
    assert _error(api.call(key, "PUT", f"{ALIAS}/staging", body)) == (status, message)
    protected = api.call("a_developer", "PUT", f"{ALIAS}/production", ACCEPT)
    assert _error(protected) == (
        403,
        "alias 'production' of model 'credit-risk' is protected; only an admin may move it",
    )
    registry = Registry.open(settings)
    try:
        assert [(a.name, a.version) for a in registry.list_aliases("credit-risk")] == [
            ("production", 1)
        ]
    finally:
        registry.close()


@pytest.mark.parametrize(
    ("key", "status", "message"),
    [
        ("b_developer", 403, OTHER_TENANT),
        ("b_stranger_dev", 409, "model name 'credit-risk' is not available; choose another"),
        ("b_consumer", 403, _role("developer", "consumer")),
        ("a_validator", 403, _role("developer", "validator")),
        ("a_consumer", 403, _role("developer", "consumer")),
        ("a_auditor", 403, _role("developer", "auditor")),
    ],
)
def test_a_labelled_publish_needs_the_right_to_publish(
    world: World, key: str, status: int, message: str
) -> None:
    data, booster = _model()
    records, _ = _reference(booster, inverted=False)
    body = _publish_body(
        data, orjson.loads(SIGNATURE.to_json()), reference=records, reference_target="outcome"
    )
    assert _error(world.api.call(key, "POST", PUBLISH, body)) == (status, message)
    latest = world.api.call("admin", "GET", "/api/models/credit-risk").json()["latest_version"]
    assert latest == 2
