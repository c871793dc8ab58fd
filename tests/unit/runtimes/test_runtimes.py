"""What the conformance checks cannot say in general: loading rules, options, per-library quirks."""

from __future__ import annotations

import pickle
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
import skops.io as sio

import finmaas.runtimes
from finmaas.errors import Invalid, PredictorFailed, SchemaMismatch
from finmaas.runtimes import (
    RUNTIMES,
    SAFE_FORMATS,
    ModelFormat,
    create_predictor,
    load_predictor,
)
from finmaas.runtimes.lightgbm import LightGBMPredictor
from finmaas.runtimes.onnx import OnnxPredictor
from finmaas.runtimes.pickle import PicklePredictor
from finmaas.runtimes.skops import SkopsPredictor
from finmaas.runtimes.xgboost import XGBoostPredictor
from finmaas.schema.signature import Task
from tests.unit.runtimes.cases import (
    N_FEATURES,
    Case,
    lightgbm_case,
    make_signature,
    onnx_logistic_bytes,
    onnx_regression_bytes,
    sample_batch,
    training_data,
    xgboost_booster,
)
from tests.unit.runtimes.conftest import CASE_NAMES

BINARY = make_signature("binary")
MULTICLASS = make_signature("multiclass")
REGRESSION = make_signature("regression")


def test_public_names_are_importable() -> None:
    # ruff (RUF022) keeps __all__ sorted
    assert len(set(finmaas.runtimes.__all__)) == len(finmaas.runtimes.__all__)
    for name in finmaas.runtimes.__all__:
        assert hasattr(finmaas.runtimes, name), name


def test_importing_runtimes_does_not_import_model_libraries() -> None:
    libraries = ("lightgbm", "xgboost", "onnx", "onnxruntime", "skops", "sklearn")
    code = (
        "import sys, finmaas.runtimes; "
        f"print(','.join(m for m in {libraries!r} if m in sys.modules))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""


def test_every_safe_format_has_a_runtime() -> None:
    assert tuple(RUNTIMES) == SAFE_FORMATS
    expected = {
        ModelFormat.ONNX: OnnxPredictor,
        ModelFormat.LIGHTGBM: LightGBMPredictor,
        ModelFormat.XGBOOST_JSON: XGBoostPredictor,
        ModelFormat.XGBOOST_UBJ: XGBoostPredictor,
        ModelFormat.SKOPS: SkopsPredictor,
        ModelFormat.PICKLE: PicklePredictor,
    }
    for fmt, cls in expected.items():
        assert type(create_predictor(fmt, BINARY)) is cls


# --- loading checks the model against the signature -------------------------------------


@pytest.mark.parametrize("runtime_case", CASE_NAMES, indirect=True)
def test_load_rejects_a_signature_with_other_inputs(runtime_case: Case) -> None:
    signature = make_signature(runtime_case.signature.task, N_FEATURES + 1)
    with pytest.raises(SchemaMismatch) as excinfo:
        load_predictor(
            runtime_case.data, runtime_case.fmt, signature, allow_pickle=runtime_case.allow_pickle
        )
    assert str(excinfo.value) == (
        f"the signature has {N_FEATURES + 1} inputs but the {runtime_case.fmt} model reads "
        f"{N_FEATURES} features"
    )


@pytest.mark.parametrize(
    ("case_name", "task", "message"),
    [
        (
            "lightgbm-multiclass",
            "binary",
            "the signature has 2 classes but the lightgbm model has 3",
        ),
        (
            "lightgbm-multiclass",
            "regression",
            "the signature is for regression but the lightgbm model has 3 classes",
        ),
        (
            "skops-logreg-pipeline",
            "multiclass",
            "the signature has 3 classes but the skops model has 2",
        ),
        ("onnx-logreg", "multiclass", "the signature has 3 classes but the onnx model has 2"),
        (
            "pickle-logreg",
            "regression",
            "the signature is for regression but the pickle model has 2 classes",
        ),
    ],
)
def test_load_rejects_a_signature_with_other_classes(
    request: pytest.FixtureRequest, case_name: str, task: str, message: str
) -> None:
    case: Case = request.getfixturevalue(case_name.replace("-", "_"))
    signature = make_signature(task)  # type: ignore[arg-type]
    with pytest.raises(SchemaMismatch) as excinfo:
        load_predictor(case.data, case.fmt, signature, allow_pickle=case.allow_pickle)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    ("fmt", "prefix"),
    [
        (ModelFormat.LIGHTGBM, "could not load the lightgbm model: "),
        (ModelFormat.XGBOOST_JSON, "could not load the xgboost-json model: "),
        (ModelFormat.XGBOOST_UBJ, "could not load the xgboost-ubj model: "),
        (ModelFormat.ONNX, "could not load the onnx model: "),
        (ModelFormat.SKOPS, "could not read the skops model: "),
    ],
)
def test_corrupt_artifact_fails_to_load(fmt: ModelFormat, prefix: str) -> None:
    with pytest.raises(PredictorFailed) as excinfo:
        load_predictor(b"\x00\x01 not a model", fmt, BINARY)
    assert str(excinfo.value).startswith(prefix)


# --- options ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fmt", "options", "message"),
    [
        (
            ModelFormat.ONNX,
            {"thread": 2},
            "unknown option 'thread' for the onnx runtime (known: output, threads)",
        ),
        (
            ModelFormat.LIGHTGBM,
            {"output": "x"},
            "unknown option 'output' for the lightgbm runtime (known: threads)",
        ),
        (
            ModelFormat.SKOPS,
            {"threads": 2},
            "unknown option 'threads' for the skops runtime (known: none)",
        ),
        (
            ModelFormat.PICKLE,
            {"threads": 2},
            "unknown option 'threads' for the pickle runtime (known: none)",
        ),
        (ModelFormat.XGBOOST_UBJ, {"threads": 0}, "option 'threads' must be an integer ≥ 1, got 0"),
        (ModelFormat.ONNX, {"threads": True}, "option 'threads' must be an integer ≥ 1, got True"),
        (ModelFormat.ONNX, {"output": ""}, "option 'output' must be a non-empty string, got ''"),
    ],
)
def test_bad_options(fmt: ModelFormat, options: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid) as excinfo:
        create_predictor(fmt, BINARY, options=options)
    assert str(excinfo.value) == message


@pytest.mark.parametrize(
    "case_name", ["lightgbm-multiclass", "xgboost-ubj-binary", "onnx-logreg", "onnx-regression"]
)
def test_more_threads_same_scores(request: pytest.FixtureRequest, case_name: str) -> None:
    case: Case = request.getfixturevalue(case_name.replace("-", "_"))
    predictor = load_predictor(case.data, case.fmt, case.signature, options={"threads": 3})
    np.testing.assert_allclose(predictor.predict(case.x), case.expected, rtol=1e-6, atol=1e-6)


# --- ONNX -------------------------------------------------------------------------------


def test_onnx_zipmap_output_is_refused_with_a_fix() -> None:
    with pytest.raises(PredictorFailed) as excinfo:
        load_predictor(onnx_logistic_bytes(zipmap=True), ModelFormat.ONNX, BINARY)
    assert str(excinfo.value) == (
        "the onnx model returns probabilities as a ZipMap (a list of dicts); export it with the "
        "ZipMap disabled, e.g. skl2onnx options={'zipmap': False}"
    )


def test_onnx_output_option_names_the_output(onnx_logreg: Case) -> None:
    chosen = load_predictor(
        onnx_logreg.data, ModelFormat.ONNX, BINARY, options={"output": "probabilities"}
    )
    np.testing.assert_array_equal(chosen.predict(onnx_logreg.x), onnx_logreg.expected)
    with pytest.raises(PredictorFailed) as excinfo:
        load_predictor(onnx_logreg.data, ModelFormat.ONNX, BINARY, options={"output": "nope"})
    assert str(excinfo.value) == (
        "the onnx model has no output 'nope'; its outputs: 'label' (tensor(int64)), "
        "'probabilities' (tensor(float))"
    )
    with pytest.raises(PredictorFailed) as excinfo:
        load_predictor(onnx_logreg.data, ModelFormat.ONNX, BINARY, options={"output": "label"})
    assert str(excinfo.value) == "the onnx output 'label' is tensor(int64), not a float tensor"


def test_onnx_double_input_regression() -> None:
    predictor = load_predictor(onnx_regression_bytes(np.float64), ModelFormat.ONNX, REGRESSION)
    x = sample_batch()
    scores = predictor.predict(x.astype(np.float32))
    assert scores.shape == (len(x),)
    np.testing.assert_allclose(scores, predictor.predict(x), rtol=1e-6)


def test_onnx_with_two_inputs_is_refused() -> None:
    from onnx import TensorProto, helper

    a = helper.make_tensor_value_info("a", TensorProto.FLOAT, [None, 4])
    b = helper.make_tensor_value_info("b", TensorProto.FLOAT, [None, 4])
    out = helper.make_tensor_value_info("sum", TensorProto.FLOAT, [None, 4])
    graph = helper.make_graph([helper.make_node("Add", ["a", "b"], ["sum"])], "g", [a, b], [out])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    with pytest.raises(PredictorFailed) as excinfo:
        load_predictor(model.SerializeToString(), ModelFormat.ONNX, REGRESSION)
    assert str(excinfo.value) == (
        "the onnx model has 2 inputs ('a', 'b'); finmaas feeds one tensor of shape (rows, features)"
    )


# --- XGBoost ----------------------------------------------------------------------------


def test_xgboost_feature_names_need_not_match_the_signature() -> None:
    booster = xgboost_booster("binary", names=True)
    assert booster.feature_names == ["x0", "x1", "x2", "x3"]
    data = bytes(booster.save_raw("ubj"))
    x = sample_batch()
    scores = load_predictor(data, ModelFormat.XGBOOST_UBJ, BINARY).predict(x)
    np.testing.assert_array_equal(scores, booster.inplace_predict(x, validate_features=False))


def test_xgboost_multiclass_softprob() -> None:
    booster = xgboost_booster("multiclass")
    predictor = load_predictor(
        bytes(booster.save_raw("json")), ModelFormat.XGBOOST_JSON, MULTICLASS
    )
    scores = predictor.predict(sample_batch())
    assert scores.shape == (40, 3)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)


def test_xgboost_softmax_labels_are_not_probabilities() -> None:
    booster = xgboost_booster("multiclass", objective="multi:softmax")
    predictor = load_predictor(bytes(booster.save_raw("ubj")), ModelFormat.XGBOOST_UBJ, MULTICLASS)
    with pytest.raises(PredictorFailed) as excinfo:
        predictor.predict(sample_batch(5))
    assert str(excinfo.value) == (
        "the xgboost-ubj model returned scores of shape (5,), but a multiclass signature "
        "needs (5, 3)"
    )


# --- scikit-learn (skops, pickle) -------------------------------------------------------


def test_skops_classifier_without_predict_proba_is_refused() -> None:
    from sklearn.svm import LinearSVC

    x, y = training_data("binary")
    data = bytes(sio.dumps(LinearSVC().fit(x, y)))
    with pytest.raises(PredictorFailed) as excinfo:
        load_predictor(data, ModelFormat.SKOPS, BINARY)
    assert str(excinfo.value) == (
        "the skops model (LinearSVC) has no predict_proba(), which a binary signature needs"
    )


def test_unfitted_estimator_is_refused() -> None:
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(PredictorFailed) as excinfo:
        load_predictor(
            pickle.dumps(LogisticRegression()), ModelFormat.PICKLE, BINARY, allow_pickle=True
        )
    assert (
        str(excinfo.value)
        == "the pickle model (LogisticRegression) has no n_features_in_; is it fitted?"
    )


def test_library_errors_become_predictor_failed(skops_logreg_pipeline: Case) -> None:
    predictor = skops_logreg_pipeline.load()
    x = sample_batch(3)
    x[1, 2] = np.nan
    with pytest.raises(PredictorFailed) as excinfo:
        predictor.predict(x)
    assert str(excinfo.value).startswith("the skops model failed to predict: Input X contains NaN")
    assert isinstance(excinfo.value.__cause__, ValueError)


def test_skops_multiclass() -> None:
    from sklearn.tree import DecisionTreeClassifier

    x, y = training_data("multiclass")
    model = DecisionTreeClassifier(max_depth=3, random_state=0).fit(x, y)
    predictor = load_predictor(bytes(sio.dumps(model)), ModelFormat.SKOPS, MULTICLASS)
    sample = sample_batch()
    np.testing.assert_array_equal(predictor.predict(sample), model.predict_proba(sample))


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
def test_lightgbm_c_prediction_equals_booster_predict_row_by_row_and_in_threads(
    tmp_path: Path, task: Task
) -> None:
    """The runtime calls LightGBM's C library directly (single-row fast path for one
    row, the matrix call for several); it must give exactly ``Booster.predict``'s
    numbers, contributions and missing values included, from any thread."""
    import lightgbm as lgb

    case = lightgbm_case(tmp_path, task)
    booster = lgb.Booster(model_str=case.data.decode())
    x = case.x.copy()
    x[::7, 2] = np.nan
    expected = np.asarray(booster.predict(x), dtype=np.float64)
    predictor = load_predictor(case.data, case.fmt, case.signature)
    assert np.array_equal(predictor.predict(x), expected)
    for row in range(x.shape[0]):
        assert np.array_equal(predictor.predict(x[row : row + 1]), expected[row : row + 1])
    assert np.array_equal(predictor.predict(np.asfortranarray(x[:5])), expected[:5])
    assert isinstance(predictor, LightGBMPredictor)
    contributions = np.asarray(booster.predict(x, pred_contrib=True), dtype=np.float64)
    assert np.array_equal(predictor.contributions(x), contributions)

    def score_rows(offset: int) -> bool:
        return all(
            np.array_equal(predictor.predict(x[row : row + 1]), expected[row : row + 1])
            for row in range(offset, x.shape[0], 4)
        )

    with ThreadPoolExecutor(4) as pool:
        assert all(pool.map(score_rows, range(4)))


def test_a_lightgbm_model_is_served_without_importing_lightgbm_or_scikit_learn(
    tmp_path: Path,
) -> None:
    """The lightgbm package imports scikit-learn, SciPy and pandas (2 s of a worker's
    cold start); the runtime uses LightGBM's C library alone."""
    case = lightgbm_case(tmp_path, "binary")
    np.save(tmp_path / "x.npy", case.x)
    code = f"""
import sys
import numpy as np
from finmaas.runtimes import ModelFormat, load_predictor
from finmaas.schema.signature import signature_from_json
signature = signature_from_json(open({str(tmp_path / "signature.json")!r}, "rb").read())
predictor = load_predictor(open({str(tmp_path / "model.txt")!r}, "rb").read(),
                           ModelFormat.LIGHTGBM, signature)
x = np.load({str(tmp_path / "x.npy")!r})
np.save({str(tmp_path / "scores.npy")!r}, predictor.predict(x))
predictor.contributions(x)
print(",".join(m for m in ("lightgbm", "sklearn", "scipy", "pandas") if m in sys.modules))
"""
    (tmp_path / "model.txt").write_bytes(case.data)
    (tmp_path / "signature.json").write_bytes(case.signature.to_json())
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == ""
    assert np.array_equal(np.load(tmp_path / "scores.npy"), case.expected)
