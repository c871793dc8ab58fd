"""Which scikit-learn models get the raw frame back, and the frame they get."""

from __future__ import annotations

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from finmaas.runtimes._raw_frame import RawFrame, reads_raw_text
from finmaas.runtimes.skops import SkopsPredictor
from finmaas.schema import encode_frame, infer_signature


def _frame(rows: int = 120) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {
            "purpose": rng.choice(["car", "house", "tv"], rows),
            "income": rng.gamma(2.0, 1500.0, rows),
        }
    )
    y = ((frame["purpose"] == "tv") ^ (frame["income"] > 3000)).to_numpy().astype(int)
    return frame, y


def _one_hot() -> ColumnTransformer:
    return ColumnTransformer(
        [("text", OneHotEncoder(handle_unknown="ignore"), ["purpose"])], remainder="passthrough"
    )


def test_a_pipeline_fitted_on_text_categories_reads_the_raw_frame() -> None:
    frame, y = _frame()
    model = make_pipeline(_one_hot(), LogisticRegression()).fit(frame, y)
    assert reads_raw_text(model)


def test_a_model_fitted_on_the_encoding_does_not() -> None:
    frame, y = _frame()
    signature = infer_signature(frame, task="binary", classes=("0", "1"), positive_class="1")
    codes = encode_frame(signature, frame)
    assert not reads_raw_text(LogisticRegression().fit(codes, y))
    named = pd.DataFrame(codes, columns=list(signature.feature_names))
    assert not reads_raw_text(LogisticRegression().fit(named, y))
    # an encoder fitted on the codes learnt numbers, not text
    assert not reads_raw_text(make_pipeline(OneHotEncoder(), LogisticRegression()).fit(named, y))


def test_an_encoder_inside_a_model_counts() -> None:
    frame, y = _frame()
    categorical = frame.assign(purpose=frame["purpose"].astype("category"))
    model = HistGradientBoostingClassifier(max_iter=5, categorical_features="from_dtype")
    assert reads_raw_text(model.fit(categorical, y))
    ordinal = ColumnTransformer([("text", OrdinalEncoder(), ["purpose"])], remainder="passthrough")
    assert reads_raw_text(make_pipeline(ordinal, LogisticRegression()).fit(frame, y))


def test_the_frame_has_the_models_columns_by_name_and_the_category_texts() -> None:
    frame, _ = _frame(6)
    signature = infer_signature(frame, task="binary", classes=("0", "1"), positive_class="1")
    codes = encode_frame(signature, frame)
    codes[1, 0] = np.nan  # a missing category
    built = RawFrame(signature, ["income", "purpose"]).build(codes)
    assert list(built.columns) == ["income", "purpose"]
    assert built["income"].dtype == np.float64
    np.testing.assert_array_equal(built["income"], frame["income"])
    texts = frame["purpose"].tolist()
    assert built["purpose"].tolist()[:1] + built["purpose"].tolist()[2:] == texts[:1] + texts[2:]
    assert built["purpose"].isna().tolist() == [False, True, False, False, False, False]


def test_the_skops_runtime_scores_a_raw_pipeline_as_the_pipeline_does() -> None:
    frame, y = _frame()
    model = make_pipeline(_one_hot(), LogisticRegression()).fit(frame, y)
    signature = infer_signature(frame, task="binary", classes=("0", "1"), positive_class="1")
    predictor = SkopsPredictor(signature)
    predictor.load(bytes(sio.dumps(model)))
    served = predictor.predict(encode_frame(signature, frame))
    np.testing.assert_allclose(served, model.predict_proba(frame)[:, 1], rtol=0, atol=1e-12)
