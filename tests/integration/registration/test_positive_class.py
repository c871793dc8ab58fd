"""``finmaas.register`` of a binary model: the positive class is explicit, and labels
given with the sample refuse a model that ranks it below chance (issue 21, item 1)."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

import finmaas
from finmaas.actor import Actor
from finmaas.datasets import (
    GERMAN_CREDIT_TARGET,
    german_credit_signature,
    load_german_credit,
)
from finmaas.errors import Invalid
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.schema import encode_frame

ACTOR = Actor("tester")
ROWS = 200


def _german() -> tuple[pd.DataFrame, pd.Series, np.ndarray]:
    """The first 200 German Credit applicants: inputs, outcome, and the inputs encoded."""
    frame = load_german_credit().iloc[:ROWS]
    features = frame.drop(columns=[GERMAN_CREDIT_TARGET])
    encoded = np.asarray(encode_frame(german_credit_signature(), features), dtype=np.float64)
    return features, frame[GERMAN_CREDIT_TARGET], encoded


def _booster(encoded: np.ndarray, y: np.ndarray) -> lgb.Booster:
    params = {"objective": "binary", "num_leaves": 4, "verbose": -1, "seed": 0, "num_threads": 1}
    return lgb.train(params, lgb.Dataset(encoded, y), num_boost_round=10)


def _kwargs(registry: Registry, store: LocalArtifactStore) -> dict[str, object]:
    return {"registry": registry, "store": store, "actor": ACTOR, "trained_on_encoded": True}


def test_a_binary_model_without_its_positive_class_is_refused(
    registry: Registry, store: LocalArtifactStore
) -> None:
    features, outcome, encoded = _german()
    model = _booster(encoded, (outcome == "bad").to_numpy().astype(int))
    with pytest.raises(Invalid) as err:
        finmaas.register("credit", model, features, **_kwargs(registry, store))
    assert str(err.value) == (
        "a binary signature needs its positive class, the outcome whose probability the model "
        "returns (for credit: the adverse one, e.g. bad): pass positive_class=; without it the "
        "labels and adverse-action reasons can be attached to the wrong applicants"
    )
    assert registry.list_models(include_archived=True) == []


def test_the_labels_order_the_classes_with_the_positive_one_last(
    registry: Registry, store: LocalArtifactStore
) -> None:
    features, outcome, encoded = _german()
    model = _booster(encoded, (outcome == "bad").to_numpy().astype(int))
    version = finmaas.register(
        "credit",
        model,
        features,
        y=outcome.tolist(),
        positive_class="bad",
        **_kwargs(registry, store),
    )
    signature = version.signature
    assert (signature.classes, signature.positive_class) == (("good", "bad"), "bad")
    expected = roc_auc_score(outcome == "bad", model.predict(encoded))
    assert version.metrics["reference_auc"] == pytest.approx(expected, abs=1e-12)
    assert version.metrics["reference_auc"] > 0.5
    assert version.params["reference_labels"] == {
        "rows": ROWS,
        "positives": int((outcome == "bad").sum()),
        "positive_class": "bad",
    }


def test_a_model_that_ranks_the_positive_class_below_chance_is_refused(
    registry: Registry, store: LocalArtifactStore
) -> None:
    """A model trained to return P(good), registered as returning P(bad)."""
    features, outcome, encoded = _german()
    inverted = _booster(encoded, (outcome == "good").to_numpy().astype(int))
    auc = roc_auc_score(outcome == "bad", inverted.predict(encoded))
    assert auc < 0.5
    with pytest.raises(Invalid) as err:
        finmaas.register(
            "credit",
            inverted,
            features,
            signature=german_credit_signature(),
            y=outcome.tolist(),
            **_kwargs(registry, store),
        )
    assert str(err.value) == (
        f"refused: on the {ROWS} labelled reference rows the model's probability of 'bad' "
        f"ranks 'bad' below chance (AUC {auc:.3f}, under 0.5); is the positive class "
        "inverted? If the model returns the probability of 'good', declare classes "
        "['bad', 'good'] with positive_class 'good'"
    )
    assert registry.list_models(include_archived=True) == []


def test_a_model_whose_own_classes_put_the_positive_class_first_is_refused(
    registry: Registry, store: LocalArtifactStore
) -> None:
    features, outcome, _ = _german()
    numeric = features[["duration_in_month", "credit_amount", "age_in_years"]]
    model = LogisticRegression(max_iter=1000).fit(numeric.to_numpy(), outcome)  # P(good)
    with pytest.raises(Invalid) as err:
        finmaas.register("credit", model, numeric, positive_class="bad", **_kwargs(registry, store))
    assert str(err.value) == (
        "invalid signature: 'positive_class' 'bad' must be the second of 'classes' "
        "['bad', 'good']: the model returns the probability of its second class (if it "
        "returns P('bad'), list the classes as ['good', 'bad'])"
    )


@pytest.mark.parametrize(
    ("labels", "message"),
    [
        (
            ["bad"] * ROWS,
            "the reference target 'y' holds only 'bad': checking the positive "
            "class needs labelled rows of both classes",
        ),
        (
            ["good", "maybe"] * (ROWS // 2),
            "row 1 of the reference: target 'y' must be 'good' "
            "or 'bad', the signature's classes; got 'maybe'",
        ),
        (
            [None, "bad"] * (ROWS // 2),
            "row 0 of the reference: target 'y' must be 'good' or "
            "'bad', the signature's classes; it is missing",
        ),
        (["bad"] * 3, f"y has 3 labels for {ROWS} rows of X_sample"),
    ],
)
def test_labels_that_cannot_check_the_positive_class_are_refused(
    registry: Registry, store: LocalArtifactStore, labels: list[str | None], message: str
) -> None:
    features, outcome, encoded = _german()
    model = _booster(encoded, (outcome == "bad").to_numpy().astype(int))
    with pytest.raises(Invalid) as err:
        finmaas.register(
            "credit",
            model,
            features,
            signature=german_credit_signature(),
            y=labels,
            **_kwargs(registry, store),
        )
    assert str(err.value) == message
