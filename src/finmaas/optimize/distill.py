"""Distillation: a small student trained to reproduce the teacher's scores.

The student learns from the teacher's *soft* scores (its P(adverse)), not the
labels: a score says how sure the teacher is, which teaches more per row than a
0 or 1. Its rows are the tuning rows plus ``neighbours`` synthetic neighbours
of each, so the student also sees the teacher between the rows it was given:
each number moved by a normal step of ``jitter`` × its spread (a missing value
stays missing), each category swapped for another row's value with probability
``jitter``.

Students:

* ``lightgbm``: ``trees`` shallow trees of at most ``leaves`` leaves, fitted with
  LightGBM's cross-entropy objective (soft labels in [0, 1]);
* ``network``: a one-hidden-layer network of ``hidden`` units
  (:mod:`finmaas.training.neural`), exported as ONNX.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from finmaas.errors import Invalid
from finmaas.runtimes import ModelFormat
from finmaas.schema import ModelSignature
from finmaas.training.metrics import check_int
from finmaas.training.neural import Layout, NetworkSettings, to_onnx, train_network

Student = Literal["lightgbm", "network"]
STUDENTS: tuple[Student, ...] = ("lightgbm", "network")
MAX_SYNTHETIC_ROWS = 1_000_000


def neighbours_of(
    x: NDArray[np.float64],
    signature: ModelSignature,
    count: int,
    jitter: float,
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """``x`` followed by ``count`` synthetic neighbours of each of its rows."""
    check_int("neighbours", count, 0, 1_000)
    check_jitter(jitter)
    if len(x) * (count + 1) > MAX_SYNTHETIC_ROWS:
        raise Invalid(
            f"{len(x):,} rows × {count + 1} is over {MAX_SYNTHETIC_ROWS:,} rows to distil on; "
            "ask for fewer neighbours"
        )
    copies = np.repeat(x, count, axis=0)
    for column, feature in enumerate(signature.inputs):
        values = copies[:, column]
        if feature.dtype == "category":
            swap = rng.random(len(values)) < jitter
            values[swap] = x[rng.integers(0, len(x), int(swap.sum())), column]
        else:
            spread = float(np.nanstd(x[:, column])) if len(x) > 1 else 0.0
            values += rng.normal(0.0, jitter * spread, len(values))
            low = feature.min if feature.min is not None else -np.inf
            high = feature.max if feature.max is not None else np.inf
            np.clip(values, low, high, out=values)
    return np.vstack([x, copies])


def check_jitter(jitter: float) -> None:
    if not 0.0 <= jitter <= 1.0:
        raise Invalid(f"jitter must be between 0 and 1, got {jitter!r}")


def distill(
    rows: NDArray[np.float64],
    teacher_scores: NDArray[np.float64],
    signature: ModelSignature,
    *,
    student: Student,
    trees: int,
    leaves: int,
    hidden: int,
    seed: int,
) -> tuple[bytes, ModelFormat, dict[str, Any]]:
    """Fit the student on ``rows`` (encoded) to ``teacher_scores``; its bytes, format
    and parameters."""
    if student not in STUDENTS:
        raise Invalid(f"student must be one of {', '.join(STUDENTS)}, got {student!r}")
    facts: dict[str, Any] = {"student": student, "training_rows": len(rows)}
    if student == "lightgbm":
        check_int("trees", trees, 1, 10_000)
        check_int("leaves", leaves, 2, 1_024)
        import lightgbm

        params = {
            "objective": "cross_entropy",
            "num_leaves": leaves,
            "learning_rate": 0.1,
            "min_data_in_leaf": 20,
            "seed": seed,
            "deterministic": True,
            "num_threads": 1,
            "verbose": -1,
        }
        categorical = [i for i, f in enumerate(signature.inputs) if f.dtype == "category"]
        data = lightgbm.Dataset(rows, teacher_scores, categorical_feature=categorical)
        booster = lightgbm.train(params, data, num_boost_round=trees)
        facts.update(trees=trees, leaves=leaves, learning_rate=0.1)
        return str(booster.model_to_string()).encode(), ModelFormat.LIGHTGBM, facts
    check_int("hidden", hidden, 1, 4096)
    network = train_network(
        rows, teacher_scores, Layout.of(signature), NetworkSettings(hidden=hidden), seed
    )
    facts.update(hidden=hidden, best_epoch=network.best_epoch)
    model = to_onnx(network, rows.shape[1], name="finmaas-distilled-network")
    return model.SerializeToString(), ModelFormat.ONNX, facts
