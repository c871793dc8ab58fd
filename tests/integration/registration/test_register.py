"""``finmaas.register``: in-memory models become safe, profiled, verified versions."""

from __future__ import annotations

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeRegressor

import finmaas
from finmaas.actor import Actor
from finmaas.errors import Invalid
from finmaas.publish.loading import load_version
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.schema import RecordEncoder

ACTOR = Actor("tester")


def _frame(seed: int = 0, rows: int = 300) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        {
            "income": rng.gamma(2.0, 1500.0, rows),
            "age": rng.integers(18, 80, rows),
            "purpose": pd.Categorical(
                rng.choice(["car", "house", "tv"], rows), categories=["tv", "car", "house"]
            ),
        }
    )
    signal = frame["income"] / 3000 - (frame["purpose"] == "tv") * 0.8 + rng.normal(0, 0.4, rows)
    return frame, (signal < 0.5).astype(int).to_numpy()


def _kwargs(registry: Registry, store: LocalArtifactStore) -> dict[str, object]:
    return {"registry": registry, "store": store, "actor": ACTOR}


def test_lightgbm_on_pandas_categoricals(registry: Registry, store: LocalArtifactStore) -> None:
    frame, y = _frame()
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=4, verbose=-1).fit(frame, y)

    version = finmaas.register(
        "pd-model",
        model,
        frame,
        positive_class="1",
        metrics={"auc": 0.8},
        pii=["age"],
        **_kwargs(registry, store),
    )

    assert (version.ref, version.artifact_format) == ("pd-model@1", "lightgbm")
    signature = version.signature
    assert signature.task == "binary"
    assert signature.classes == ("0", "1")
    assert [f.dtype for f in signature.inputs] == ["float", "int", "category"]
    assert signature.inputs[2].categories == ("tv", "car", "house")  # pandas order kept
    assert [f.pii for f in signature.inputs] == [False, True, False]
    assert version.metrics == {"auc": 0.8}
    assert version.lineage == {"produced_by": "finmaas.register"}
    profile = version.reference_profile
    assert profile is not None
    assert profile["rows"] == 300
    assert profile["features"]["purpose"]["levels"] == ["tv", "car", "house"]
    assert abs(sum(profile["score"]["shares"]) + profile["score"]["missing_share"] - 1) < 1e-9

    loaded, predictor = load_version(registry, store, "pd-model", 1)
    records = frame.head(10).to_dict(orient="records")
    for record in records:
        record["purpose"] = str(record["purpose"])
    served = predictor.predict(RecordEncoder(loaded.signature).encode(records))
    np.testing.assert_allclose(served, model.predict_proba(frame.head(10))[:, 1], atol=1e-9)


def test_sklearn_classifier_uses_skops_and_its_classes(
    registry: Registry, store: LocalArtifactStore
) -> None:
    frame, y = _frame()
    numeric = frame[["income", "age"]]
    labels = np.where(y == 1, "bad", "good")
    model = LogisticRegression(max_iter=500).fit(numeric.to_numpy(), labels)
    version = finmaas.register(
        "scorecard",
        model,
        numeric,
        positive_class="good",  # LogisticRegression's classes_ are sorted: it returns P(good)
        trained_on_encoded=True,
        **_kwargs(registry, store),
    )
    assert version.artifact_format == "skops"
    assert version.signature.classes == ("bad", "good")
    assert version.signature.positive_class == "good"


def test_sklearn_regressor(registry: Registry, store: LocalArtifactStore) -> None:
    frame, _ = _frame()
    numeric = frame[["income", "age"]]
    model = DecisionTreeRegressor(max_depth=3).fit(numeric, numeric["income"] * 0.1)
    version = finmaas.register("lgd", model, numeric, **_kwargs(registry, store))
    assert version.signature.task == "regression"
    assert version.signature.classes is None


def test_xgboost_is_stored_as_ubj(registry: Registry, store: LocalArtifactStore) -> None:
    frame, y = _frame()
    numeric = frame[["income", "age"]]
    model = xgb.XGBClassifier(n_estimators=10, max_depth=2).fit(numeric, y)
    version = finmaas.register(
        "xgb", model, numeric, positive_class="1", **_kwargs(registry, store)
    )
    assert version.artifact_format == "xgboost-ubj"
    assert version.signature.task == "binary"


def test_encoding_mismatch_is_caught(registry: Registry, store: LocalArtifactStore) -> None:
    frame, y = _frame()
    model = lgb.LGBMClassifier(n_estimators=20, num_leaves=4, verbose=-1).fit(frame, y)
    reordered = frame.assign(
        purpose=frame["purpose"].cat.reorder_categories(["car", "house", "tv"])
    )
    with pytest.raises(Invalid) as err:
        finmaas.register(
            "pd-model", model, reordered, positive_class="1", **_kwargs(registry, store)
        )
    assert str(err.value).startswith(
        "the model scores X_sample differently once it is encoded for serving"
    )
    assert str(err.value).endswith(
        "train it on finmaas.schema.encode_frame(signature, data) and pass trained_on_encoded=True"
    )
    assert registry.list_models(include_archived=True) == []


def test_unsupported_model_type(registry: Registry, store: LocalArtifactStore) -> None:
    frame, _ = _frame()
    with pytest.raises(Invalid) as err:
        finmaas.register("x", object(), frame, **_kwargs(registry, store))
    assert str(err.value) == (
        "cannot register a builtins.object: supported are LightGBM, XGBoost, scikit-learn "
        "estimators and ONNX ModelProto"
    )


def test_sample_must_be_a_dataframe(registry: Registry, store: LocalArtifactStore) -> None:
    with pytest.raises(Invalid) as err:
        finmaas.register("x", object(), np.zeros((3, 2)), **_kwargs(registry, store))  # type: ignore[arg-type]
    assert str(err.value) == "X_sample must be a non-empty pandas DataFrame of model inputs"


def test_register_opens_the_home_from_settings(sqlite_settings: finmaas.Settings) -> None:
    frame, y = _frame()
    model = lgb.LGBMClassifier(n_estimators=5, num_leaves=4, verbose=-1).fit(frame, y)
    version = finmaas.register(
        "pd-model", model, frame, positive_class="1", settings=sqlite_settings
    )
    assert version.created_by.startswith("local:")
    assert (sqlite_settings.home / "registry.db").exists()


def test_public_names() -> None:
    assert sorted(finmaas.__all__) == finmaas.__all__
    for name in finmaas.__all__:
        assert hasattr(finmaas, name)
