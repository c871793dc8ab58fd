"""A small neural network for credit risk: ReLU hidden layers, our own training loop.

The network reads the matrix the serving path builds (``encode_frame``):
category codes become one-hot columns, numbers are standardised with the
training rows' mean and deviation, and a missing value is its own category
(codes) or the mean (numbers). Then ``depth`` layers of ``hidden`` ReLU units
and a sigmoid output give P(bad).

Training is mini-batch gradient descent on the log loss with L2 weight decay,
by Adam or by SGD with momentum (``optimizer``), from a seeded He
initialisation. A stratified share of the training rows is held out for early
stopping: after each epoch the held-out log loss is measured, the best weights
are kept, and training stops once ``patience`` epochs brought no improvement.
The same procedure is what cross-validation measures and what the final refit
runs, so the CV metrics describe the registered model's procedure.

No class weights by default: the service returns P(bad), which re-weighting
would inflate; imbalance is handled where it matters, at the cost-optimal
threshold (``class_weight="balanced"`` is available).

:func:`to_onnx` writes the trained network as an ONNX graph over the served
matrix: the one-hot layer is an embedding lookup (``Gather`` of the first
layer's rows), so the model file is data, quantisable, and scored by ONNX
Runtime like any other version. :func:`from_onnx` reads such a graph back into a
:class:`Network`, which is how ``finmaas optimize`` prunes and fine-tunes it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
import onnx
from numpy.typing import NDArray
from onnx import TensorProto, helper, numpy_helper

from finmaas.errors import Invalid
from finmaas.schema import ModelSignature
from finmaas.training.metrics import check_int

Optimizer = Literal["adam", "sgd"]
OPSET = 17
_EPS = 1e-7


@dataclass(frozen=True)
class NetworkSettings:
    """How the network is shaped and trained; JSON-ready with :func:`dataclasses.asdict`."""

    hidden: int = 32
    """Units of each hidden layer."""
    depth: int = 1
    """Hidden layers; more than one makes dense layers that int8 quantisation speeds up."""
    optimizer: Optimizer = "adam"
    learning_rate: float | None = None
    """Step size; None means 0.001 for Adam and 0.01 for SGD."""
    momentum: float = 0.9
    """SGD only."""
    batch_size: int = 64
    max_epochs: int = 300
    patience: int = 20
    l2: float = 1e-3
    validation_share: float = 0.2
    class_weight: Literal["balanced"] | None = None

    def __post_init__(self) -> None:
        check_int("hidden", self.hidden, 1, 4096)
        check_int("depth", self.depth, 1, 8)
        check_int("batch_size", self.batch_size, 1, 1_000_000)
        check_int("max_epochs", self.max_epochs, 1, 100_000)
        check_int("patience", self.patience, 1, 100_000)
        if self.optimizer not in ("adam", "sgd"):
            raise Invalid(f"optimizer must be 'adam' or 'sgd', got {self.optimizer!r}")
        if self.learning_rate is not None and not 0.0 < self.learning_rate <= 10.0:
            raise Invalid(f"learning_rate must be in (0, 10], got {self.learning_rate!r}")
        if not 0.0 <= self.momentum < 1.0:
            raise Invalid(f"momentum must be in [0, 1), got {self.momentum!r}")
        if not 0.0 <= self.l2 <= 10.0:
            raise Invalid(f"l2 must be in [0, 10], got {self.l2!r}")
        if not 0.05 <= self.validation_share <= 0.5:
            raise Invalid(f"validation_share must be in [0.05, 0.5], got {self.validation_share!r}")
        if self.class_weight not in (None, "balanced"):
            raise Invalid(f"class_weight must be None or 'balanced', got {self.class_weight!r}")

    @property
    def step(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 0.001 if self.optimizer == "adam" else 0.01


@dataclass(frozen=True)
class Layout:
    """Which columns of the served matrix are category codes (and how many levels)."""

    categorical: tuple[int, ...]
    levels: tuple[int, ...]
    numeric: tuple[int, ...]

    @classmethod
    def of(cls, signature: ModelSignature) -> Layout:
        """The layout of a signature's served matrix (no text inputs)."""
        inputs = signature.inputs
        text = [f.name for f in inputs if f.dtype == "string"]
        if text:
            raise Invalid(f"a network cannot read text input {text[0]!r}")
        return cls(
            categorical=tuple(i for i, f in enumerate(inputs) if f.dtype == "category"),
            levels=tuple(len(f.categories or ()) for f in inputs if f.dtype == "category"),
            numeric=tuple(i for i, f in enumerate(inputs) if f.dtype != "category"),
        )


Params = list[NDArray[np.float64]]
"""A weight matrix and a bias per hidden layer, then the output weights ``(units,)``
and bias ``(1,)``."""


@dataclass
class Network:
    """A trained network: preprocessing from the training rows, weights, and its history."""

    layout: Layout
    mean: NDArray[np.float64]
    scale: NDArray[np.float64]
    params: Params
    epochs: int = 0
    """Epochs run before early stopping (the best weights are from ``best_epoch``)."""
    best_epoch: int = 0
    validation_loss: float = float("nan")
    history: list[float] = field(default_factory=list, repr=False)

    @property
    def w1(self) -> NDArray[np.float64]:
        """The first hidden layer's weights, one row per design column."""
        return self.params[0]

    @property
    def hidden_units(self) -> tuple[int, ...]:
        return tuple(w.shape[1] for w in self.params[:-2:2])

    def design(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        return _design(self.layout, self.mean, self.scale, x)

    def predict(self, x: NDArray[np.float64]) -> NDArray[np.float64]:
        """P(bad) of each row of the served matrix."""
        return _forward(self.design(x), self.params)[1]


def train_network(
    x: NDArray[np.float64],
    y: NDArray[Any],
    layout: Layout,
    settings: NetworkSettings,
    seed: int,
    *,
    start: Network | None = None,
    masks: Params | None = None,
) -> Network:
    """Train on rows ``x`` (the served matrix) with labels ``y`` (1 = bad, or a soft
    label in [0, 1] such as a teacher's score); see the module.

    ``start`` continues from a trained network (its standardisation and weights)
    instead of a fresh initialisation; ``masks`` (one 0/1 array per parameter)
    keep pruned weights at zero throughout.
    """
    y = np.asarray(y, dtype=np.float64)
    if np.any((y < 0.0) | (y > 1.0)) or np.isnan(y).any():
        raise Invalid("the network's labels must be 0, 1 or probabilities in [0, 1]")
    soft = not np.isin(y, (0.0, 1.0)).all()
    # soft labels are stratified (and class-weighted) by being above their median
    hard = (y > np.median(y) if soft else y == 1.0).astype(np.int_)
    if len(np.unique(hard)) < 2:
        raise Invalid(
            "the network's soft labels are all the same"
            if soft
            else "the network needs both classes among its training rows"
        )
    rng = np.random.default_rng(seed)
    fit, held = _stratified_holdout(hard, settings.validation_share, rng)
    if start is None:
        mean, scale = _standardisation(x[fit][:, list(layout.numeric)])
    else:
        mean, scale = start.mean, start.scale
    design = _design(layout, mean, scale, x)
    d_fit, y_fit, d_held, y_held = design[fit], y[fit], design[held], y[held]
    weights = _row_weights(hard[fit], settings.class_weight)
    held_weights = _row_weights(hard[held], settings.class_weight)

    params = (
        [p.copy() for p in start.params]
        if start is not None
        else _initial_params(design.shape[1], settings, rng)
    )
    if masks is not None:
        for p, mask in zip(params, masks, strict=True):
            p *= mask
    optimizer = (
        _Adam(params, settings.step)
        if settings.optimizer == "adam"
        else _Sgd(params, settings.step, settings.momentum)
    )
    best = [p.copy() for p in params]
    best_loss, best_epoch, waited = np.inf, 0, 0
    history: list[float] = []
    epoch = 0
    for epoch in range(1, settings.max_epochs + 1):
        order = rng.permutation(len(y_fit))
        for first in range(0, len(order), settings.batch_size):
            batch = order[first : first + settings.batch_size]
            grads = _gradients(params, d_fit[batch], y_fit[batch], weights[batch], settings.l2)
            optimizer.step(grads)
            if masks is not None:
                for p, mask in zip(params, masks, strict=True):
                    p *= mask
        loss = _log_loss(y_held, _forward(d_held, params)[1], held_weights)
        history.append(loss)
        if loss < best_loss - 1e-5:
            best_loss, best_epoch, waited = loss, epoch, 0
            best = [p.copy() for p in params]
        else:
            waited += 1
            if waited >= settings.patience:
                break
    return Network(layout, mean, scale, best, epoch, best_epoch, float(best_loss), history)


def _initial_params(width: int, settings: NetworkSettings, rng: np.random.Generator) -> Params:
    """He initialisation of each hidden layer; the output layer scaled by its fan-in."""
    params: Params = []
    for _ in range(settings.depth):
        params += [
            rng.normal(0.0, np.sqrt(2.0 / width), (width, settings.hidden)),
            np.zeros(settings.hidden),
        ]
        width = settings.hidden
    params += [rng.normal(0.0, np.sqrt(1.0 / width), width), np.zeros(1)]
    return params


def network_params(network: Network, settings: NetworkSettings) -> dict[str, Any]:
    """JSON-ready settings and training facts, for the registry."""
    return {
        "model": "one-hidden-layer ReLU network, sigmoid output",
        **asdict(settings),
        "learning_rate": settings.step,
        "epochs_run": network.epochs,
        "best_epoch": network.best_epoch,
        "early_stopping": f"held-out log loss, patience {settings.patience}",
    }


def to_onnx(
    network: Network, features: int, name: str = "finmaas-credit-network"
) -> onnx.ModelProto:
    """The network as an ONNX graph: float32 ``input`` ``(rows, features)`` (the served
    matrix) to ``probabilities`` ``(rows, 2)``, P(good) and P(bad)."""
    layout = network.layout
    params = network.params
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []

    def const(label: str, value: Any, dtype: Any = np.float32) -> str:
        inits.append(numpy_helper.from_array(np.asarray(value, dtype=dtype), label))
        return label

    parts: list[str] = []
    row = 0
    if layout.categorical:
        # The rows of w1 for each feature's one-hot columns, its "missing" column last;
        # codes are offset into one table of all of them.
        table, offsets = [], []
        for levels in layout.levels:
            offsets.append(row)
            table.append(params[0][row : row + levels + 1])
            row += levels + 1
        nodes += [
            helper.make_node(
                "Gather",
                ["input", const("cat_columns", layout.categorical, np.int64)],
                ["codes"],
                axis=1,
            ),
            helper.make_node("IsNaN", ["codes"], ["codes_missing"]),
            helper.make_node(
                "Where",
                ["codes_missing", const("missing_codes", [list(layout.levels)]), "codes"],
                ["codes_known"],
            ),
            helper.make_node("Cast", ["codes_known"], ["codes_int"], to=TensorProto.INT64),
            helper.make_node(
                "Add", ["codes_int", const("offsets", [offsets], np.int64)], ["table_rows"]
            ),
            helper.make_node(
                "Gather", [const("embedding", np.vstack(table)), "table_rows"], ["embedded"], axis=0
            ),
            helper.make_node(
                "ReduceSum",
                ["embedded", const("axis_1", [1], np.int64)],
                ["categorical_part"],
                keepdims=0,
            ),
        ]
        parts.append("categorical_part")
    if layout.numeric:
        nodes += [
            helper.make_node(
                "Gather",
                ["input", const("num_columns", layout.numeric, np.int64)],
                ["numbers"],
                axis=1,
            ),
            helper.make_node("Sub", ["numbers", const("mean", network.mean)], ["centred"]),
            helper.make_node("Div", ["centred", const("scale", network.scale)], ["scaled"]),
            helper.make_node("IsNaN", ["scaled"], ["numbers_missing"]),
            helper.make_node(
                "Where", ["numbers_missing", const("zero", 0.0), "scaled"], ["standardised"]
            ),
            helper.make_node(
                "MatMul", ["standardised", const("w_numbers", params[0][row:])], ["numeric_part"]
            ),
        ]
        parts.append("numeric_part")
    first = parts[0]
    if len(parts) == 2:
        nodes.append(helper.make_node("Add", parts, ["layer_sum"]))
        first = "layer_sum"
    nodes += [
        helper.make_node("Add", [first, const("b1", params[1])], ["pre_activation"]),
        helper.make_node("Relu", ["pre_activation"], ["hidden"]),
    ]
    below = "hidden"
    for layer in range(1, len(params) // 2 - 1):
        weights, bias = params[2 * layer], params[2 * layer + 1]
        nodes += [
            helper.make_node(
                "MatMul", [below, const(f"w_hidden_{layer}", weights)], [f"wx_{layer}"]
            ),
            helper.make_node(
                "Add", [f"wx_{layer}", const(f"b_hidden_{layer}", bias)], [f"pre_{layer}"]
            ),
            helper.make_node("Relu", [f"pre_{layer}"], [f"hidden_{layer}"]),
        ]
        below = f"hidden_{layer}"
    units = params[-2].shape[0]
    nodes += [
        helper.make_node("MatMul", [below, const("w2", params[-2].reshape(units, 1))], ["w2x"]),
        helper.make_node("Add", ["w2x", const("b2", params[-1])], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p_bad"]),
        helper.make_node("Sub", [const("one", 1.0), "p_bad"], ["p_good"]),
        helper.make_node("Concat", ["p_good", "p_bad"], ["probabilities"], axis=1),
    ]
    for node in nodes:
        node.name = node.output[0]  # tools that rewrite the graph name nodes after nodes
    graph = helper.make_graph(
        nodes,
        name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, [None, features])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, [None, 2])],
        initializer=inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="finmaas"
    )
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model


def from_onnx(model: onnx.ModelProto) -> Network:
    """The network a :func:`to_onnx` graph holds; ``Invalid`` for any other graph."""
    tensors = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    if model.producer_name != "finmaas" or "b1" not in tensors or "w2" not in tensors:
        raise Invalid("the ONNX graph is not a network trained by finmaas")
    categorical = tuple(int(c) for c in tensors.get("cat_columns", np.zeros(0)))
    numeric = tuple(int(c) for c in tensors.get("num_columns", np.zeros(0)))
    levels = tuple(int(v) for v in np.ravel(tensors.get("missing_codes", np.zeros(0))))
    blocks = [tensors[n] for n in ("embedding", "w_numbers") if n in tensors]
    params: Params = [np.vstack(blocks).astype(np.float64), tensors["b1"].astype(np.float64)]
    layer = 1
    while f"w_hidden_{layer}" in tensors:
        params += [
            tensors[f"w_hidden_{layer}"].astype(np.float64),
            tensors[f"b_hidden_{layer}"].astype(np.float64),
        ]
        layer += 1
    params += [tensors["w2"].reshape(-1).astype(np.float64), tensors["b2"].astype(np.float64)]
    return Network(
        Layout(categorical, levels, numeric),
        tensors.get("mean", np.zeros(0)).astype(np.float64),
        tensors.get("scale", np.ones(0)).astype(np.float64),
        params,
    )


def _design(
    layout: Layout, mean: NDArray[np.float64], scale: NDArray[np.float64], x: NDArray[np.float64]
) -> NDArray[np.float64]:
    """One-hot columns (a last one per feature for missing), then standardised numbers."""
    blocks = []
    for column, levels in zip(layout.categorical, layout.levels, strict=True):
        codes = x[:, column]
        codes = np.where(np.isnan(codes), levels, codes).astype(np.intp)
        blocks.append(np.eye(levels + 1)[codes])
    if layout.numeric:
        numbers = (x[:, list(layout.numeric)] - mean) / scale
        blocks.append(np.where(np.isnan(numbers), 0.0, numbers))
    return np.hstack(blocks) if blocks else np.empty((len(x), 0))


def _standardisation(
    numbers: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    if numbers.shape[1] == 0:
        return np.zeros(0), np.ones(0)
    mean = (
        np.nan_to_num(np.nanmean(numbers, axis=0)) if len(numbers) else np.zeros(numbers.shape[1])
    )
    scale = np.nan_to_num(np.nanstd(numbers, axis=0), nan=1.0)
    return mean, np.where(scale > 0, scale, 1.0)


def _forward(
    design: NDArray[np.float64], params: Params
) -> tuple[list[NDArray[np.float64]], NDArray[np.float64]]:
    """Each hidden layer's activations, and P(bad)."""
    activations = []
    below = design
    for weights, bias in zip(params[:-2:2], params[1:-2:2], strict=True):
        below = np.maximum(below @ weights + bias, 0.0)
        activations.append(below)
    logit = below @ params[-2] + params[-1][0]
    return activations, 1.0 / (1.0 + np.exp(-logit))


def _gradients(
    params: Params,
    design: NDArray[np.float64],
    y: NDArray[Any],
    weights: NDArray[np.float64],
    l2: float,
) -> Params:
    """Gradients of the weighted mean log loss plus ``l2/2 ·`` the squared weights
    (not the biases), by backpropagation."""
    activations, p = _forward(design, params)
    d_logit = weights * (p - y) / weights.sum()
    grads: Params = [np.empty(0)] * len(params)
    grads[-2] = activations[-1].T @ d_logit + l2 * params[-2]
    grads[-1] = np.array([d_logit.sum()])
    delta = np.outer(d_logit, params[-2]) * (activations[-1] > 0)
    for layer in reversed(range(len(activations))):
        below = activations[layer - 1] if layer else design
        grads[2 * layer] = below.T @ delta + l2 * params[2 * layer]
        grads[2 * layer + 1] = delta.sum(axis=0)
        if layer:
            delta = (delta @ params[2 * layer].T) * (activations[layer - 1] > 0)
    return grads


def _log_loss(y: NDArray[Any], p: NDArray[np.float64], weights: NDArray[np.float64]) -> float:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    losses = -(y * np.log(p) + (1 - y) * np.log(1.0 - p))
    return float(np.sum(weights * losses) / np.sum(weights))


def _row_weights(y: NDArray[np.int_], class_weight: str | None) -> NDArray[np.float64]:
    if class_weight is None:
        return np.ones(len(y))
    counts = np.bincount(y, minlength=2).astype(np.float64)
    return (len(y) / (2.0 * np.maximum(counts, 1.0)))[y]


def _stratified_holdout(
    y: NDArray[np.int_], share: float, rng: np.random.Generator
) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Row indices to fit on and to stop early on, with both classes in each part."""
    fit, held = [], []
    for label in (0, 1):
        rows = rng.permutation(np.flatnonzero(y == label))
        count = round(len(rows) * share)
        if count < 1 or count >= len(rows):
            raise Invalid(
                f"too few rows of class {label} ({len(rows)}) to hold some out for early stopping"
            )
        held.append(rows[:count])
        fit.append(rows[count:])
    return np.sort(np.concatenate(fit)), np.sort(np.concatenate(held))


class _Adam:
    def __init__(self, params: list[NDArray[np.float64]], step: float) -> None:
        self.params, self.step_size, self.t = params, step, 0
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]

    def step(self, grads: list[NDArray[np.float64]]) -> None:
        self.t += 1
        correction1, correction2 = 1.0 - 0.9**self.t, 1.0 - 0.999**self.t
        for p, g, m, v in zip(self.params, grads, self.m, self.v, strict=True):
            m *= 0.9
            m += 0.1 * g
            v *= 0.999
            v += 0.001 * g * g
            p -= self.step_size * (m / correction1) / (np.sqrt(v / correction2) + 1e-8)


class _Sgd:
    def __init__(self, params: list[NDArray[np.float64]], step: float, momentum: float) -> None:
        self.params, self.step_size, self.momentum = params, step, momentum
        self.velocity = [np.zeros_like(p) for p in params]

    def step(self, grads: list[NDArray[np.float64]]) -> None:
        for p, g, velocity in zip(self.params, grads, self.velocity, strict=True):
            velocity *= self.momentum
            velocity -= self.step_size * g
            p += velocity
