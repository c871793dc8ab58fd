"""The methods on their own: quantisation, pruning, distillation, conversion, and the
synthetic neighbours a student learns from."""

from __future__ import annotations

import warnings

import lightgbm as lgb
import numpy as np
import onnx
import pandas as pd
import pytest
import xgboost as xgb
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from finmaas.errors import Invalid
from finmaas.optimize.convert import convert
from finmaas.optimize.distill import distill, neighbours_of
from finmaas.optimize.prune import prune_network, prune_trees
from finmaas.optimize.quantize import quantize
from finmaas.publish.registration import serialise_model
from finmaas.runtimes import ModelFormat, load_predictor
from finmaas.training.metrics import roc_auc
from finmaas.training.neural import from_onnx
from tests.optimize_models import german, lightgbm_model, network_model


def _scores(data: bytes, fmt: ModelFormat, x: np.ndarray) -> np.ndarray:
    return np.asarray(load_predictor(data, fmt, german().signature).predict(x))


def _network_bytes() -> bytes:
    return network_model().SerializeToString()


@pytest.mark.parametrize("mode", ["dynamic", "static", "float16"])
def test_quantised_networks_are_smaller_and_score_alike(mode: str) -> None:
    data = german()
    parent = _network_bytes()
    child, facts = quantize(parent, data.x_train, mode)  # type: ignore[arg-type]
    assert facts["mode"] == mode
    assert facts["dense_layers"] == 3  # two hidden layers after the first, and the output
    assert len(child) < len(parent)
    graph = onnx.load_from_string(child).graph
    stored = {t.name: t.data_type for t in graph.initializer}
    ops = {node.op_type for node in graph.node}
    if mode == "float16":
        assert onnx.TensorProto.FLOAT not in stored.values()
        assert stored["embedding"] == onnx.TensorProto.FLOAT16
    else:  # the dense layers' weights are int8; the embedding lookup stays float
        assert onnx.TensorProto.INT8 in stored.values()
        assert stored["embedding"] == onnx.TensorProto.FLOAT
    if mode == "dynamic":
        assert "MatMulInteger" in ops or "DynamicQuantizeMatMul" in ops
    elif mode == "static":
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops
        assert facts["calibration_rows"] == len(data.x_train)
    before = _scores(parent, ModelFormat.ONNX, data.x_held)
    after = _scores(child, ModelFormat.ONNX, data.x_held)
    assert np.max(np.abs(after - before)) < 0.05
    assert abs(roc_auc(data.y_held, after) - roc_auc(data.y_held, before)) < 0.01


def test_a_graph_without_dense_layers_has_nothing_to_quantise() -> None:
    data = german()
    booster = lightgbm_model()
    graph, _ = convert(
        booster.model_to_string().encode(), ModelFormat.LIGHTGBM, data.signature, data.x_held
    )
    with pytest.raises(Invalid) as caught:
        quantize(graph, data.x_train, "dynamic")
    assert str(caught.value) == (
        "nothing to quantise: the ONNX graph has no MatMul or Gemm layer (a tree ensemble "
        "has none); use --method prune or --method distill instead"
    )
    with pytest.raises(Invalid, match=r"^quantisation mode must be one of dynamic, static"):
        quantize(_network_bytes(), data.x_train, "int4")  # type: ignore[arg-type]


def test_pruning_units_shrinks_the_network_and_fine_tuning_keeps_its_scores() -> None:
    data = german()
    parent = _network_bytes()
    child, facts = prune_network(
        parent, data.x_train, sparsity=0.5, structure="units", fine_tune_epochs=30, seed=1
    )
    assert facts["hidden_units_before"] == [32, 32]
    assert facts["hidden_units_after"] == [16, 16]
    assert from_onnx(onnx.load_from_string(child)).hidden_units == (16, 16)
    assert len(child) < 0.7 * len(parent)
    before = _scores(parent, ModelFormat.ONNX, data.x_held)
    after = _scores(child, ModelFormat.ONNX, data.x_held)
    assert np.corrcoef(before, after)[0, 1] > 0.95


def test_pruning_weights_zeroes_the_smallest_of_each_matrix() -> None:
    data = german()
    child, facts = prune_network(
        _network_bytes(),
        data.x_train,
        sparsity=0.7,
        structure="weights",
        fine_tune_epochs=5,
        seed=1,
    )
    network = from_onnx(onnx.load_from_string(child))
    for weights in network.params[::2]:  # held at zero through fine-tuning
        assert np.count_nonzero(weights == 0.0) >= np.floor(0.7 * weights.size)
    assert facts["zero_weights"] >= 0.69 * facts["weights"]


def test_pruning_refuses_bad_settings_and_foreign_graphs() -> None:
    data = german()
    with pytest.raises(Invalid, match=r"^sparsity must be between 0 and 1 \(exclusive\), got 1.0$"):
        prune_network(
            _network_bytes(),
            data.x_train,
            sparsity=1.0,
            structure="units",
            fine_tune_epochs=0,
            seed=1,
        )
    foreign = network_model()
    foreign = onnx.load_from_string(foreign.SerializeToString())
    foreign.producer_name = "skl2onnx"
    with pytest.raises(Invalid, match=r"^pruning an ONNX model needs a network trained by finmaas"):
        prune_network(
            foreign.SerializeToString(),
            data.x_train,
            sparsity=0.5,
            structure="units",
            fine_tune_epochs=0,
            seed=1,
        )


def test_tree_pruning_keeps_the_count_with_the_lowest_tuning_loss() -> None:
    data = german()
    booster = lightgbm_model()
    text = booster.model_to_string().encode()
    child, facts = prune_trees(
        text, ModelFormat.LIGHTGBM, data.x_held, data.y_held, keep_trees=None
    )
    kept = facts["trees_after"]
    assert facts["trees_before"] == 150
    assert 1 <= kept < 150
    assert facts["tuning_log_loss"]["kept"] <= facts["tuning_log_loss"]["all"]
    np.testing.assert_allclose(
        _scores(child, ModelFormat.LIGHTGBM, data.x_held),
        booster.predict(data.x_held, num_iteration=kept),
        atol=1e-12,
    )
    forced, facts = prune_trees(text, ModelFormat.LIGHTGBM, data.x_held, data.y_held, keep_trees=7)
    assert lgb.Booster(model_str=forced.decode()).current_iteration() == 7
    with pytest.raises(
        Invalid, match=r"^keep_trees must be between 1 and 149 \(the model has 150\)$"
    ):
        prune_trees(text, ModelFormat.LIGHTGBM, data.x_held, data.y_held, keep_trees=150)


def test_xgboost_trees_are_pruned_too() -> None:
    data = german()
    model = xgb.XGBClassifier(n_estimators=40, max_depth=2, learning_rate=0.3).fit(
        data.x_train, data.y_train
    )
    raw = serialise_model(model).data
    child, facts = prune_trees(
        raw, ModelFormat.XGBOOST_UBJ, data.x_held, data.y_held, keep_trees=10
    )
    assert facts == {"trees_before": 40, "trees_after": 10}
    expected = model.get_booster().inplace_predict(data.x_held, iteration_range=(0, 10))
    np.testing.assert_allclose(_scores(child, ModelFormat.XGBOOST_UBJ, data.x_held), expected)


def test_neighbours_stay_near_their_rows_and_keep_missing_values() -> None:
    data = german()
    rows = data.x_train[:50].copy()
    numeric = next(i for i, f in enumerate(data.signature.inputs) if f.dtype != "category")
    category = next(i for i, f in enumerate(data.signature.inputs) if f.dtype == "category")
    rows[0, numeric] = np.nan
    out = neighbours_of(rows, data.signature, 4, 0.1, np.random.default_rng(0))
    assert out.shape == (250, rows.shape[1])
    np.testing.assert_array_equal(out[:50], rows)
    assert np.isnan(out[50:54, numeric]).all()  # the first row's four neighbours
    assert set(out[:, category]) <= set(rows[:, category])
    moved = out[54::4, numeric] - rows[1:, numeric]
    assert 0 < np.std(moved) < 0.2 * np.nanstd(rows[:, numeric])
    with pytest.raises(Invalid, match=r"^jitter must be between 0 and 1, got 2.0$"):
        neighbours_of(rows, data.signature, 4, 2.0, np.random.default_rng(0))


@pytest.mark.parametrize("student", ["lightgbm", "network"])
def test_students_follow_their_teacher(student: str) -> None:
    data = german()
    teacher = lightgbm_model()
    rows = neighbours_of(data.x_train, data.signature, 5, 0.1, np.random.default_rng(1))
    soft = teacher.predict(rows)
    child, fmt, facts = distill(
        rows,
        soft,
        data.signature,
        student=student,
        trees=30,
        leaves=8,
        hidden=16,
        seed=1,  # type: ignore[arg-type]
    )
    assert fmt is (ModelFormat.LIGHTGBM if student == "lightgbm" else ModelFormat.ONNX)
    assert facts["training_rows"] == len(rows)
    scores = _scores(child, fmt, data.x_held)
    assert np.corrcoef(scores, teacher.predict(data.x_held))[0, 1] > 0.85
    assert roc_auc(data.y_held, scores) > 0.7


def test_lightgbm_xgboost_and_scikit_learn_convert_within_tolerance() -> None:
    data = german()
    x = data.x_held.copy()
    x[::5, 1] = np.nan  # missing values take the trees' default branch in ONNX too
    cases = [
        (lightgbm_model().model_to_string().encode(), ModelFormat.LIGHTGBM, "onnxmltools"),
        (
            serialise_model(
                xgb.XGBClassifier(n_estimators=30, max_depth=3).fit(data.x_train, data.y_train)
            ).data,
            ModelFormat.XGBOOST_UBJ,
            "onnxmltools",
        ),
    ]
    numeric = [i for i, f in enumerate(data.signature.inputs) if f.dtype != "category"]
    pipeline = Pipeline(
        [
            ("scale", ColumnTransformer([("n", StandardScaler(), numeric)])),
            ("model", LogisticRegression(max_iter=500)),
        ]
    ).fit(data.x_train, data.y_train)
    cases.append((serialise_model(pipeline).data, ModelFormat.SKOPS, "skl2onnx"))
    for raw, fmt, tool in cases:
        sample = x if fmt is not ModelFormat.SKOPS else data.x_held
        graph, facts = convert(raw, fmt, data.signature, sample)
        assert facts["converter"] == tool
        assert facts["largest_difference"] <= 1e-5
        np.testing.assert_allclose(
            _scores(graph, ModelFormat.ONNX, sample), _scores(raw, fmt, sample), atol=1e-5
        )


def test_conversion_refuses_onnx_and_a_graph_that_scores_differently(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    data = german()
    with pytest.raises(Invalid, match=r"^the version is ONNX already; nothing to convert$"):
        convert(_network_bytes(), ModelFormat.ONNX, data.signature, data.x_held)
    text = lightgbm_model().model_to_string().encode()
    import finmaas.optimize.convert as module

    monkeypatch.setattr(module, "TOLERANCE", 0.0)  # float32 thresholds differ by ~1e-7
    with pytest.raises(Invalid) as caught:
        convert(text, ModelFormat.LIGHTGBM, data.signature, data.x_held)
    assert str(caught.value).startswith("the ONNX graph scores reference row ")
    assert str(caught.value).endswith(" over the 0 allowed; not registered")


def _german_frame(part: pd.DataFrame) -> pd.DataFrame:
    """The raw rows, named, with pandas categoricals in the signature's category order."""
    signature = german().signature
    frame = part[list(signature.feature_names)].copy()
    for feature in signature.inputs:
        if feature.dtype == "category":
            frame[feature.name] = pd.Categorical(
                frame[feature.name], categories=list(feature.categories or ())
            )
    return frame


@pytest.mark.parametrize("max_cat_to_onehot", [1, 64])  # partition splits, one-hot splits
def test_xgboost_trained_on_a_named_frame_with_categoricals_converts(
    max_cat_to_onehot: int,
) -> None:
    data = german()
    model = xgb.XGBClassifier(
        n_estimators=30,
        max_depth=3,
        enable_categorical=True,
        max_cat_to_onehot=max_cat_to_onehot,
    ).fit(_german_frame(data.train), data.y_train)
    raw = serialise_model(model).data
    graph, facts = convert(raw, ModelFormat.XGBOOST_UBJ, data.signature, data.x_held)
    assert facts["largest_difference"] <= 1e-5
    np.testing.assert_allclose(
        _scores(graph, ModelFormat.ONNX, data.x_held),
        model.predict_proba(_german_frame(data.held))[:, 1],
        atol=1e-5,
    )


def test_a_scikit_learn_pipeline_on_the_raw_frame_is_not_converted() -> None:
    data = german()
    frame = data.train[list(data.signature.feature_names)]
    text = [f.name for f in data.signature.inputs if f.dtype == "category"]
    pipeline = Pipeline(
        [
            (
                "columns",
                ColumnTransformer(
                    [("text", OneHotEncoder(handle_unknown="ignore"), text)],
                    remainder="passthrough",
                ),
            ),
            ("model", LogisticRegression(max_iter=50)),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pipeline.fit(frame, data.y_train)
    with pytest.raises(Invalid) as caught:
        convert(serialise_model(pipeline).data, ModelFormat.SKOPS, data.signature, data.x_held)
    assert str(caught.value) == (
        "cannot convert a scikit-learn model fitted on the raw DataFrame (text categories): "
        "the ONNX graphs finmaas serves take one tensor of numbers. Serve it as it is, or "
        "fit it on finmaas.schema.encode_frame(signature, data), register that with "
        "trained_on_encoded=True and convert it"
    )
