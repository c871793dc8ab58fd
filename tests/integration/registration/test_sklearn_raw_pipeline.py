"""A scikit-learn pipeline fitted on the raw DataFrame (text categories), the newcomer way:
train, ``finmaas.register``, serve, and get the pipeline's own scores back."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

import finmaas
from finmaas.config import Settings
from finmaas.datasets import GERMAN_CREDIT_TARGET, load_german_credit
from finmaas.errors import Invalid, SchemaMismatch
from finmaas.publish.loading import load_version
from finmaas.registry import LocalArtifactStore, Registry
from finmaas.schema import encode_frame
from tests.integration.serving.in_process import serve_in_process

CLASSES = ("good", "bad")


def _data() -> tuple[pd.DataFrame, np.ndarray]:
    frame = load_german_credit()
    y = (frame.pop(GERMAN_CREDIT_TARGET) == "bad").to_numpy().astype(int)
    return frame, y


def _pipeline(final: Any, frame: pd.DataFrame) -> Pipeline:
    text = list(frame.select_dtypes(exclude="number").columns)
    numbers = list(frame.select_dtypes(include="number").columns)
    columns = ColumnTransformer(
        [
            ("text", OneHotEncoder(handle_unknown="ignore"), text),
            ("numbers", StandardScaler(), numbers),
        ]
    )
    return Pipeline([("columns", columns), ("model", final)])


FINALS: dict[str, Callable[[], Any]] = {
    "logistic": lambda: LogisticRegression(max_iter=1000),
    "hist-gradient-boosting": lambda: HistGradientBoostingClassifier(max_iter=30, random_state=0),
}


@pytest.mark.parametrize("final", sorted(FINALS))
def test_a_pipeline_fitted_on_the_raw_frame_registers_and_serves_its_own_scores(
    sqlite_settings: Settings, final: str
) -> None:
    frame, y = _data()
    pipeline = _pipeline(FINALS[final](), frame).fit(frame, y)

    version = finmaas.register(
        "credit-pipeline",
        pipeline,
        frame,
        classes=CLASSES,
        positive_class="bad",
        settings=sqlite_settings,
    )

    assert version.artifact_format == "skops"
    expected = pipeline.predict_proba(frame)[:, 1]
    registry = Registry.open(sqlite_settings)
    try:
        store = LocalArtifactStore(sqlite_settings.resolved_artifacts_dir)
        loaded, predictor = load_version(registry, store, "credit-pipeline", 1)
    finally:
        registry.close()
    served = predictor.predict(encode_frame(loaded.signature, frame))
    np.testing.assert_allclose(served, expected, rtol=0, atol=1e-9)

    records = frame.head(64).to_dict(orient="records")  # raw values: category texts
    assert isinstance(records[0]["purpose"], str)
    server = serve_in_process(sqlite_settings)
    try:
        with server.client() as http:
            response = http.post(
                "/v1/models/credit-pipeline:predict",
                params={"version": "1"},
                json={"instances": records},
            )
    finally:
        server.close()
    assert response.status_code == 200, response.text
    predictions = response.json()["predictions"]
    np.testing.assert_allclose(
        [p["probability"] for p in predictions], expected[:64], rtol=0, atol=1e-9
    )


def test_an_unknown_category_is_refused_by_the_signature_not_the_pipeline(
    sqlite_settings: Settings,
) -> None:
    frame, y = _data()
    pipeline = _pipeline(LogisticRegression(max_iter=1000), frame).fit(frame, y)
    finmaas.register(
        "credit-pipeline",
        pipeline,
        frame,
        classes=CLASSES,
        positive_class="bad",
        settings=sqlite_settings,
    )
    record = {**frame.head(1).to_dict(orient="records")[0], "purpose": "boat"}
    server = serve_in_process(sqlite_settings)
    try:
        with server.client() as http:
            response = http.post(
                "/v1/models/credit-pipeline:predict",
                params={"version": "1"},
                json={"instances": [record]},
            )
    finally:
        server.close()
    assert response.status_code == 400, response.text
    assert response.json() == {
        "error": "row 0: field 'purpose' must be one of its 10 categories, got 'boat'"
    }


def test_a_sample_without_a_column_the_pipeline_reads_is_refused(
    sqlite_settings: Settings,
) -> None:
    frame, y = _data()
    pipeline = _pipeline(LogisticRegression(max_iter=1000), frame).fit(frame, y)
    with pytest.raises(SchemaMismatch) as err:
        finmaas.register(
            "credit-pipeline",
            pipeline,
            frame.drop(columns=["telephone"]),
            classes=CLASSES,
            positive_class="bad",
            settings=sqlite_settings,
        )
    assert str(err.value) == (
        "the scikit-learn model was fitted on columns that are not in the signature "
        "('telephone'); register it with a sample (X_sample) holding exactly the columns "
        "it was fitted on"
    )


def test_a_sample_with_a_column_the_pipeline_never_saw_is_refused(
    sqlite_settings: Settings,
) -> None:
    frame, y = _data()
    pipeline = _pipeline(LogisticRegression(max_iter=1000), frame).fit(frame, y)
    with pytest.raises(SchemaMismatch) as err:
        finmaas.register(
            "credit-pipeline",
            pipeline,
            frame.assign(branch="north"),
            classes=CLASSES,
            positive_class="bad",
            settings=sqlite_settings,
        )
    assert str(err.value) == (
        "the signature has inputs the scikit-learn model was not fitted on ('branch'); "
        "register it with a sample (X_sample) holding exactly the columns it was fitted on"
    )


class _OwnStep(TransformerMixin, BaseEstimator):  # type: ignore[misc]
    def fit(self, x: Any, y: Any = None) -> _OwnStep:
        return self

    def transform(self, x: Any) -> Any:
        return x


WAY_OUT = (
    "build it from scikit-learn's own estimators and transformers only (no lambdas, "
    "functions or classes of your own), or train it on finmaas.schema.encode_frame(signature, "
    "data), convert it to ONNX with skl2onnx and register the ModelProto"
)


@pytest.mark.parametrize(
    ("step", "named"),
    [
        (FunctionTransformer(lambda x: x), f"{__name__}.<lambda>"),
        (_OwnStep(), f"{__name__}._OwnStep"),
    ],
)
def test_a_pipeline_skops_would_not_load_is_refused_saying_what_to_do(
    sqlite_settings: Settings, step: Any, named: str
) -> None:
    frame, y = _data()
    numbers = frame.select_dtypes(include="number")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline = make_pipeline(step, LogisticRegression(max_iter=1000)).fit(numbers, y)
    with pytest.raises(Invalid) as err:
        finmaas.register(
            "own",
            pipeline,
            numbers,
            classes=CLASSES,
            positive_class="bad",
            settings=sqlite_settings,
        )
    assert str(err.value) == (
        f"the scikit-learn model (Pipeline) holds types finmaas does not load from skops "
        f"files ({named}); {WAY_OUT}"
    )
