"""Pruning: a smaller model of the same kind.

Networks trained by finmaas (read back with :func:`~finmaas.training.neural.from_onnx`):

* ``units`` (the default): drop the share ``sparsity`` of each hidden layer's
  units, those whose incoming and outgoing weights have the smallest norms
  (product of the two). The matrices shrink, so the child is smaller *and*
  faster.
* ``weights``: set the share ``sparsity`` of each weight matrix's smallest
  weights to zero (magnitude pruning). Dense kernels do the same work on
  zeros, so this makes a sparser model, not a faster or smaller file.

Either way the pruned network can be fine-tuned (``fine_tune_epochs``) on the
tuning rows towards the parent's own scores, pruned weights held at zero, so it
relearns what the parent did rather than the few labels it is given.

Tree ensembles (LightGBM, XGBoost): drop trailing trees. The kept count is the
one with the lowest log loss on the tuning rows (or ``keep_trees`` when given).
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import onnx
from numpy.typing import NDArray

from finmaas.errors import Invalid
from finmaas.runtimes import ModelFormat
from finmaas.training.metrics import log_loss
from finmaas.training.neural import (
    Network,
    NetworkSettings,
    Params,
    from_onnx,
    to_onnx,
    train_network,
)

PruneStructure = Literal["units", "weights"]
STRUCTURES: tuple[PruneStructure, ...] = ("units", "weights")
TREE_FORMATS = (ModelFormat.LIGHTGBM, ModelFormat.XGBOOST_JSON, ModelFormat.XGBOOST_UBJ)
MAX_CANDIDATE_COUNTS = 100
"""Tree counts whose validation loss is measured, spread over 1..all."""


def prune_network(
    data: bytes,
    x: NDArray[np.float64],
    *,
    sparsity: float,
    structure: PruneStructure,
    fine_tune_epochs: int,
    seed: int,
) -> tuple[bytes, dict[str, Any]]:
    """Prune a finmaas network (ONNX bytes); ``x`` are the tuning rows (encoded)."""
    check_sparsity(sparsity)
    if structure not in STRUCTURES:
        raise Invalid(f"structure must be one of {', '.join(STRUCTURES)}, got {structure!r}")
    try:
        parent = from_onnx(onnx.load_from_string(data))
    except Invalid:
        raise Invalid(
            "pruning an ONNX model needs a network trained by finmaas (finmaas train credit); "
            "a quantised, distilled-to-trees or converted version is not one: prune the "
            "version it came from"
        ) from None
    teacher = parent.predict(x)
    if structure == "units":
        pruned, masks = _drop_units(parent, sparsity), None
    else:
        masks = _weight_masks(parent.params, sparsity)
        pruned = Network(
            parent.layout,
            parent.mean,
            parent.scale,
            [p * m for p, m in zip(parent.params, masks, strict=True)],
        )
    facts: dict[str, Any] = {
        "structure": structure,
        "sparsity": sparsity,
        "hidden_units_before": list(parent.hidden_units),
        "hidden_units_after": list(pruned.hidden_units),
        "fine_tune_epochs": fine_tune_epochs,
    }
    if fine_tune_epochs:
        pruned = train_network(
            x,
            teacher,
            parent.layout,
            NetworkSettings(max_epochs=fine_tune_epochs, patience=min(10, fine_tune_epochs)),
            seed,
            start=pruned,
            masks=masks,
        )
        facts["fine_tune"] = "towards the parent's scores on the tuning rows"
        facts["fine_tune_best_epoch"] = pruned.best_epoch
    zeros = sum(int(np.count_nonzero(p == 0.0)) for p in pruned.params[::2])
    facts["zero_weights"] = zeros
    facts["weights"] = sum(int(p.size) for p in pruned.params[::2])
    features = x.shape[1]
    return to_onnx(pruned, features).SerializeToString(), facts


def check_sparsity(sparsity: float) -> None:
    if not 0.0 < sparsity < 1.0:
        raise Invalid(f"sparsity must be between 0 and 1 (exclusive), got {sparsity!r}")


def _drop_units(network: Network, sparsity: float) -> Network:
    params = [p.copy() for p in network.params]
    for layer in range(len(params) // 2 - 1):
        incoming, outgoing = params[2 * layer], params[2 * layer + 2]
        strength = np.linalg.norm(incoming, axis=0) * (
            np.abs(outgoing) if outgoing.ndim == 1 else np.linalg.norm(outgoing, axis=1)
        )
        keep_count = max(1, round(incoming.shape[1] * (1.0 - sparsity)))
        keep = np.sort(np.argsort(-strength, kind="stable")[:keep_count])
        params[2 * layer] = incoming[:, keep]
        params[2 * layer + 1] = params[2 * layer + 1][keep]
        params[2 * layer + 2] = outgoing[keep]
    return Network(network.layout, network.mean, network.scale, params)


def _weight_masks(params: Params, sparsity: float) -> Params:
    """1 for each weight kept, 0 for the smallest ``sparsity`` of each weight matrix;
    biases are kept."""
    masks = []
    for index, p in enumerate(params):
        if index % 2 == 1:
            masks.append(np.ones_like(p))
            continue
        cut = np.quantile(np.abs(p), sparsity)
        masks.append((np.abs(p) > cut).astype(np.float64))
    return masks


def prune_trees(
    data: bytes,
    fmt: ModelFormat,
    x: NDArray[np.float64],
    y: NDArray[np.int_] | None,
    *,
    keep_trees: int | None,
) -> tuple[bytes, dict[str, Any]]:
    """Drop trailing trees of a binary LightGBM or XGBoost model: ``keep_trees``, or
    the count with the lowest log loss on rows ``x`` with labels ``y``."""
    ensemble = _Ensemble(data, fmt)
    total = ensemble.rounds
    if keep_trees is None and y is None:
        raise Invalid("choosing the tree count needs labelled rows; or pass keep_trees")
    if keep_trees is not None:
        if not 1 <= keep_trees < total:
            raise Invalid(f"keep_trees must be between 1 and {total - 1} (the model has {total})")
        kept, losses = keep_trees, {}
    else:
        assert y is not None
        counts = np.unique(np.linspace(1, total, min(total, MAX_CANDIDATE_COUNTS)).round())
        losses = {int(k): log_loss(y, ensemble.predict(x, int(k))) for k in counts}
        kept = min(losses, key=lambda k: (losses[k], k))
        if kept == total:
            raise Invalid(
                f"nothing to prune: the log loss on the tuning rows is lowest with all "
                f"{total} trees; pass keep_trees to drop some anyway"
            )
    facts: dict[str, Any] = {"trees_before": total, "trees_after": kept}
    if losses:
        facts["chosen_by"] = "lowest log loss on the tuning rows"
        facts["tuning_log_loss"] = {"all": losses[total], "kept": losses[kept]}
    return ensemble.truncated(kept), facts


class _Ensemble:
    """A boosted tree model by its rounds (trees per round: one, for binary)."""

    def __init__(self, data: bytes, fmt: ModelFormat) -> None:
        self.fmt = fmt
        if fmt is ModelFormat.LIGHTGBM:
            import lightgbm

            self.booster: Any = lightgbm.Booster(model_str=data.decode())
            self.rounds = int(self.booster.current_iteration())
        elif fmt in (ModelFormat.XGBOOST_JSON, ModelFormat.XGBOOST_UBJ):
            import xgboost

            self.booster = xgboost.Booster()
            self.booster.load_model(bytearray(data))
            self.rounds = int(self.booster.num_boosted_rounds())
        else:
            raise Invalid(f"tree pruning needs a LightGBM or XGBoost version, not {fmt}")
        if self.rounds < 2:
            raise Invalid(f"nothing to prune: the model has {self.rounds} tree")

    def predict(self, x: NDArray[np.float64], rounds: int) -> NDArray[np.float64]:
        if self.fmt is ModelFormat.LIGHTGBM:
            return np.asarray(self.booster.predict(x, num_iteration=rounds), dtype=np.float64)
        raw = self.booster.inplace_predict(x, iteration_range=(0, rounds), validate_features=False)
        return np.asarray(raw, dtype=np.float64)

    def truncated(self, rounds: int) -> bytes:
        if self.fmt is ModelFormat.LIGHTGBM:
            return str(self.booster.model_to_string(num_iteration=rounds)).encode()
        sliced = self.booster[0:rounds]
        kind = "json" if self.fmt is ModelFormat.XGBOOST_JSON else "ubj"
        return bytes(sliced.save_raw(kind))
