"""Tiny models, one per runtime, built into a temporary folder (no binaries in git).

Each :class:`Case` carries the artifact bytes, the signature, a sample batch
and the scores the model's own library gives for that batch, so every
runtime can be checked against the same contract.
"""

from __future__ import annotations

import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from finmaas.runtimes import ModelFormat, Predictor, load_predictor
from finmaas.schema.signature import Feature, ModelSignature, Task

N_FEATURES = 4
CLASSES = {"binary": ("good", "bad"), "multiclass": ("low", "mid", "high")}


@dataclass(frozen=True)
class Case:
    name: str
    fmt: ModelFormat
    data: bytes
    signature: ModelSignature
    x: np.ndarray
    """A float64 sample batch, shape ``(rows, N_FEATURES)``."""
    expected: np.ndarray
    """The model library's own scores for ``x``."""
    allow_pickle: bool = False

    def load(self) -> Predictor:
        return load_predictor(self.data, self.fmt, self.signature, allow_pickle=self.allow_pickle)


def make_signature(task: Task, n_features: int = N_FEATURES) -> ModelSignature:
    return ModelSignature(
        task=task,
        inputs=tuple(Feature(name=f"x{i}", dtype="float") for i in range(n_features)),
        classes=CLASSES.get(task),
        positive_class="bad" if task == "binary" else None,
    )


def training_data(task: Task, rows: int = 160, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(rows, N_FEATURES))
    signal = x[:, 0] + 0.5 * x[:, 1] - 0.25 * x[:, 2] + rng.normal(scale=0.3, size=rows)
    if task == "binary":
        return x, (signal > 0).astype(np.int64)
    if task == "multiclass":
        return x, np.digitize(signal, [-0.5, 0.5]).astype(np.int64)
    return x, 3.0 * signal + 10.0


def sample_batch(rows: int = 40, seed: int = 11) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(rows, N_FEATURES))


def frame(x: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(x, columns=[f"x{i}" for i in range(x.shape[1])])


def _written(path: Path, data: bytes) -> bytes:
    """Round-trip through a file, as a pushed artifact would."""
    path.write_bytes(data)
    return path.read_bytes()


def lightgbm_case(folder: Path, task: Task) -> Case:
    import lightgbm as lgb

    x, y = training_data(task)
    params: dict[str, object] = {
        "objective": task,
        "verbose": -1,
        "num_threads": 1,
        "num_leaves": 7,
        "min_data_in_leaf": 5,
        "deterministic": True,
    }
    if task == "multiclass":
        params["num_class"] = 3
    booster = lgb.train(params, lgb.Dataset(x, y), num_boost_round=10)
    path = folder / f"lightgbm-{task}.txt"
    booster.save_model(str(path))
    sample = sample_batch()
    return Case(
        f"lightgbm-{task}",
        ModelFormat.LIGHTGBM,
        path.read_bytes(),
        make_signature(task),
        sample,
        np.asarray(booster.predict(sample), dtype=np.float64),
    )


def xgboost_booster(
    task: Task = "binary", *, objective: str | None = None, names: bool = False
) -> Any:
    import xgboost as xgb

    x, y = training_data(task)
    objective = (
        objective
        or {
            "binary": "binary:logistic",
            "multiclass": "multi:softprob",
            "regression": "reg:squarederror",
        }[task]
    )
    params: dict[str, object] = {"objective": objective, "max_depth": 3, "nthread": 1, "seed": 0}
    if task == "multiclass":
        params["num_class"] = 3
    data = xgb.DMatrix(frame(x) if names else x, label=y)
    return xgb.train(params, data, num_boost_round=10)


def xgboost_case(folder: Path, fmt: ModelFormat) -> Case:
    import xgboost as xgb

    booster = xgboost_booster("binary")
    suffix = "json" if fmt is ModelFormat.XGBOOST_JSON else "ubj"
    path = folder / f"xgboost-binary.{suffix}"
    booster.save_model(str(path))
    sample = sample_batch()
    return Case(
        f"{fmt}-binary",
        fmt,
        path.read_bytes(),
        make_signature("binary"),
        sample,
        np.asarray(booster.predict(xgb.DMatrix(sample)), dtype=np.float64),
    )


def logistic_pipeline(*, on_frame: bool = False) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = training_data("binary")
    model = make_pipeline(StandardScaler(), LogisticRegression())
    return model.fit(frame(x) if on_frame else x, y)


def skops_logistic_case(folder: Path) -> Case:
    """Fitted on a DataFrame, so the runtime must name the columns of its batches."""
    import skops.io as sio

    model = logistic_pipeline(on_frame=True)
    sample = sample_batch()
    return Case(
        "skops-logreg-pipeline",
        ModelFormat.SKOPS,
        _written(folder / "logreg.skops", sio.dumps(model)),
        make_signature("binary"),
        sample,
        model.predict_proba(frame(sample))[:, 1],
    )


def skops_ridge_case(folder: Path) -> Case:
    import skops.io as sio
    from sklearn.linear_model import Ridge

    x, y = training_data("regression")
    model = Ridge().fit(x, y)
    sample = sample_batch()
    return Case(
        "skops-ridge",
        ModelFormat.SKOPS,
        _written(folder / "ridge.skops", sio.dumps(model)),
        make_signature("regression"),
        sample,
        model.predict(sample),
    )


def onnx_run(data: bytes, x: np.ndarray) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    return list(session.run(None, {session.get_inputs()[0].name: x}))


def onnx_logistic_bytes(*, zipmap: bool = False) -> bytes:
    from skl2onnx import to_onnx

    x, _ = training_data("binary")
    model = logistic_pipeline()
    options = {"zipmap": zipmap}
    return bytes(to_onnx(model, x[:1].astype(np.float32), options=options).SerializeToString())


def onnx_logistic_case(folder: Path) -> Case:
    data = _written(folder / "logreg.onnx", onnx_logistic_bytes())
    sample = sample_batch()
    _label, probabilities = onnx_run(data, sample.astype(np.float32))
    return Case(
        "onnx-logreg",
        ModelFormat.ONNX,
        data,
        make_signature("binary"),
        sample,
        probabilities[:, 1].astype(np.float64),
    )


def onnx_regression_bytes(dtype: type[np.floating[Any]] = np.float32) -> bytes:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LinearRegression

    x, y = training_data("regression")
    model = LinearRegression().fit(x, y)
    return bytes(to_onnx(model, x[:1].astype(dtype)).SerializeToString())


def onnx_regression_case(folder: Path) -> Case:
    data = _written(folder / "regression.onnx", onnx_regression_bytes())
    sample = sample_batch()
    (variable,) = onnx_run(data, sample.astype(np.float32))
    return Case(
        "onnx-regression",
        ModelFormat.ONNX,
        data,
        make_signature("regression"),
        sample,
        variable.ravel().astype(np.float64),
    )


def pickle_logistic_case(folder: Path) -> Case:
    model = logistic_pipeline()
    sample = sample_batch()
    return Case(
        "pickle-logreg",
        ModelFormat.PICKLE,
        _written(folder / "logreg.pkl", pickle.dumps(model, protocol=5)),
        make_signature("binary"),
        sample,
        model.predict_proba(sample)[:, 1],
        allow_pickle=True,
    )
