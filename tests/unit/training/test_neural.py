"""The credit network: its gradients, its training loop, early stopping, and its ONNX
graph scoring exactly as the numpy network does."""

from __future__ import annotations

import numpy as np
import onnxruntime
import pytest

from finmaas.datasets import GERMAN_CREDIT_TARGET, german_credit_signature, load_german_credit
from finmaas.errors import Invalid
from finmaas.schema import encode_frame
from finmaas.training.metrics import roc_auc
from finmaas.training.neural import (
    Layout,
    NetworkSettings,
    _design,
    _forward,
    _gradients,
    _log_loss,
    from_onnx,
    to_onnx,
    train_network,
)


def _german() -> tuple[np.ndarray, np.ndarray, Layout]:
    signature = german_credit_signature()
    frame = load_german_credit()
    x = np.asarray(encode_frame(signature, frame), dtype=np.float64)
    y = (frame[GERMAN_CREDIT_TARGET] == "bad").to_numpy().astype(int)
    inputs = signature.inputs
    layout = Layout(
        categorical=tuple(i for i, f in enumerate(inputs) if f.dtype == "category"),
        levels=tuple(len(f.categories or ()) for f in inputs if f.dtype == "category"),
        numeric=tuple(i for i, f in enumerate(inputs) if f.dtype != "category"),
    )
    return x, y, layout


def _onnx_scores(model: object, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(
        model.SerializeToString(),  # type: ignore[attr-defined]
        providers=["CPUExecutionProvider"],
    )
    (probabilities,) = session.run(None, {"input": x.astype(np.float32)})
    return np.asarray(probabilities, dtype=np.float64)


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("soft", [False, True])
def test_gradients_match_finite_differences(depth: int, soft: bool) -> None:
    rng = np.random.default_rng(3)
    design = rng.normal(size=(12, 5))
    y = rng.uniform(0, 1, 12) if soft else rng.integers(0, 2, 12)
    weights = rng.uniform(0.5, 2.0, 12)
    # scaled so no score is clipped away from 0 and 1 by the loss
    params = [rng.normal(0, 0.5, (5, 4)), rng.normal(0, 0.5, 4)]
    for _ in range(depth - 1):
        params += [rng.normal(0, 0.5, (4, 4)), rng.normal(0, 0.5, 4)]
    params += [rng.normal(0, 0.5, 4), rng.normal(0, 0.5, 1)]
    l2 = 0.1

    def objective() -> float:
        p = _forward(design, params)[1]
        penalty = 0.5 * l2 * sum(np.sum(w**2) for w in params[::2])
        return _log_loss(y, p, weights) + penalty

    grads = _gradients(params, design, y, weights, l2)
    for param, grad in zip(params, grads, strict=True):
        flat = param.reshape(-1)
        numeric = np.empty_like(flat)
        for i in range(flat.size):
            keep = flat[i]
            flat[i] = keep + 1e-6
            up = objective()
            flat[i] = keep - 1e-6
            down = objective()
            flat[i] = keep
            numeric[i] = (up - down) / 2e-6
        # a finite difference across a ReLU's kink is off by about 1e-6
        np.testing.assert_allclose(grad.reshape(-1), numeric, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("optimizer", ["adam", "sgd"])
def test_the_network_learns_german_credit_and_stops_early(optimizer: str) -> None:
    x, y, layout = _german()
    rng = np.random.default_rng(0)
    test = rng.permutation(len(y))[:250]
    train = np.setdiff1d(np.arange(len(y)), test)
    settings = NetworkSettings(optimizer=optimizer, patience=10)  # type: ignore[arg-type]
    network = train_network(x[train], y[train], layout, settings, seed=1)
    assert roc_auc(y[test], network.predict(x[test])) > 0.72
    assert network.epochs < settings.max_epochs  # early stopping ended it
    assert network.epochs == network.best_epoch + settings.patience
    assert network.validation_loss == min(network.history)
    assert network.history.index(min(network.history)) + 1 == network.best_epoch


def test_training_is_reproducible_for_a_seed() -> None:
    x, y, layout = _german()
    settings = NetworkSettings(max_epochs=5)
    first = train_network(x, y, layout, settings, seed=7)
    again = train_network(x, y, layout, settings, seed=7)
    other = train_network(x, y, layout, settings, seed=8)
    np.testing.assert_array_equal(first.w1, again.w1)
    assert not np.array_equal(first.w1, other.w1)


@pytest.mark.parametrize("depth", [1, 2])
def test_onnx_graph_scores_as_the_network_with_missing_values(depth: int) -> None:
    x, y, layout = _german()
    network = train_network(x, y, layout, NetworkSettings(max_epochs=5, depth=depth), seed=1)
    rows = x[:64].copy()
    rows[0, layout.categorical[0]] = np.nan  # a missing category: its own column
    rows[1, layout.numeric[0]] = np.nan  # a missing number: the training mean
    scores = _onnx_scores(to_onnx(network, x.shape[1]), rows)
    expected = network.predict(rows)
    np.testing.assert_allclose(scores[:, 1], expected, atol=1e-5)
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=1e-6)
    design = network.design(rows[:2])
    assert design[0, layout.levels[0]] == 1.0  # the missing column of the first category
    assert design[1, -len(layout.numeric)] == 0.0  # standardised mean
    back = from_onnx(to_onnx(network, x.shape[1]))
    assert back.layout == layout
    assert back.hidden_units == (32,) * depth
    np.testing.assert_allclose(back.predict(rows), expected, atol=1e-5)


def test_from_onnx_refuses_a_graph_finmaas_did_not_train() -> None:
    x, y, layout = _german()
    model = to_onnx(train_network(x, y, layout, NetworkSettings(max_epochs=2), seed=1), x.shape[1])
    model.producer_name = "skl2onnx"
    with pytest.raises(Invalid, match=r"^the ONNX graph is not a network trained by finmaas$"):
        from_onnx(model)


def test_soft_labels_train_towards_a_teacher_and_masks_keep_weights_at_zero() -> None:
    x, y, layout = _german()
    teacher = train_network(x, y, layout, NetworkSettings(max_epochs=20), seed=1)
    soft = teacher.predict(x)
    masks = [np.ones_like(p) for p in teacher.params]
    masks[0] = (np.abs(teacher.params[0]) >= np.median(np.abs(teacher.params[0]))).astype(float)
    student = train_network(
        x, soft, layout, NetworkSettings(max_epochs=50), seed=2, start=teacher, masks=masks
    )
    assert not student.params[0][masks[0] == 0.0].any()
    assert np.corrcoef(student.predict(x), soft)[0, 1] > 0.9
    np.testing.assert_array_equal(student.mean, teacher.mean)


def test_labels_outside_zero_one_are_refused() -> None:
    x, y, layout = _german()
    with pytest.raises(Invalid, match=r"labels must be 0, 1 or probabilities in \[0, 1\]$"):
        train_network(x, y * 2.0, layout, NetworkSettings(max_epochs=1), seed=1)


@pytest.mark.parametrize("kind", ["category", "number"])
def test_onnx_graph_of_only_categories_or_only_numbers(kind: str) -> None:
    rng = np.random.default_rng(5)
    if kind == "category":
        x = rng.integers(0, 3, (300, 2)).astype(np.float64)
        layout = Layout(categorical=(0, 1), levels=(3, 3), numeric=())
        y = (x[:, 0] + rng.normal(0, 1, 300) > 1).astype(int)
    else:
        x = rng.normal(size=(300, 3))
        layout = Layout(categorical=(), levels=(), numeric=(0, 1, 2))
        y = (x[:, 0] + rng.normal(0, 1, 300) > 0).astype(int)
    network = train_network(x, y, layout, NetworkSettings(max_epochs=20), seed=2)
    np.testing.assert_allclose(
        _onnx_scores(to_onnx(network, x.shape[1]), x)[:, 1], network.predict(x), atol=1e-5
    )
    assert _design(layout, network.mean, network.scale, x).shape[1] == (
        8 if kind == "category" else 3
    )


def test_one_class_is_refused() -> None:
    x, _, layout = _german()
    with pytest.raises(Invalid, match=r"^the network needs both classes among its training rows$"):
        train_network(x, np.zeros(len(x), dtype=int), layout, NetworkSettings(), seed=1)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"hidden": 0}, "hidden must be an integer from 1 to 4096, got 0"),
        ({"optimizer": "rmsprop"}, "optimizer must be 'adam' or 'sgd', got 'rmsprop'"),
        ({"learning_rate": 0.0}, "learning_rate must be in (0, 10], got 0.0"),
        ({"momentum": 1.0}, "momentum must be in [0, 1), got 1.0"),
        ({"validation_share": 0.9}, "validation_share must be in [0.05, 0.5], got 0.9"),
        ({"patience": True}, "patience must be an integer from 1 to 100000, got True"),
    ],
)
def test_bad_settings_are_refused(changes: dict[str, object], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        NetworkSettings(**changes)  # type: ignore[arg-type]
    assert str(caught.value) == message
