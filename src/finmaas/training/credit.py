"""Credit-risk template: candidate models of P(bad), cross-validated the same way.

Both candidates read ``encode_frame(signature, frame)``, the float matrix the
serving path builds from raw records, so a registered model scores live
requests exactly as it was trained and validated: categories are their index
in the feature's ``categories``, numbers are numbers.

**LightGBM** (``kind="lightgbm"``): 200 depth-2 trees at learning rate 0.05
with row and column subsampling and at least 40 rows per leaf; small
data calls for few, shallow, regularised trees. Categorical features are
declared by column index, so LightGBM splits on groups of categories rather
than on the arbitrary order of their codes. Training is deterministic for a
given ``seed`` (``deterministic=True``, two threads).

**Scorecard** (``kind="scorecard"``): a scikit-learn ``Pipeline`` of a
``ColumnTransformer`` (one-hot encoding of the category codes, standardised
numeric columns) and an L2 ``LogisticRegression``. One-hot rather than
weight-of-evidence binning: WOE needs binning choices tuned on the target,
which must then be nested in the CV to avoid leakage, and its tables live
outside the model file; one-hot keeps the whole scorecard one skops artifact
whose coefficients are read per category. A small grid over ``C`` and
``class_weight`` is chosen by mean CV log loss: the service returns P(bad),
so calibration matters, and the accept/reject trade-off is left to the
cost-optimal threshold rather than to re-weighting the classes. The grid is
searched on the same folds that report the metrics, which flatters the
reported scorecard metrics slightly (four configurations only).

**Network** (``kind="network"``): one hidden layer trained by our own loop,
Adam or SGD with momentum, with early stopping; see
:mod:`finmaas.training.neural`. It is registered as an ONNX graph.

Every candidate is cross-validated on the same repeated stratified folds
(default 5 folds × 2 repeats). Metrics are fold-wise means and standard
deviations of out-of-fold scores, and the cost-optimal threshold is
cross-fitted (see :mod:`finmaas.training.cross_validation`). Each final model
is then refit on all rows with the chosen settings.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

import lightgbm as lgb
import numpy as np
import pandas as pd
from numpy.typing import NDArray
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from finmaas.errors import Invalid
from finmaas.schema import ModelSignature, encode_frame
from finmaas.training.cross_validation import (
    FitPredict,
    Repeat,
    cv_metrics,
    out_of_fold,
    repeated_folds,
)
from finmaas.training.metrics import DEFAULT_COSTS, CostMatrix
from finmaas.training.neural import Layout, NetworkSettings, network_params, to_onnx, train_network

CandidateKind = Literal["lightgbm", "scorecard", "network"]
CANDIDATES: tuple[CandidateKind, ...] = ("lightgbm", "scorecard", "network")

LIGHTGBM_ROUNDS = 200
LIGHTGBM_PARAMS: Mapping[str, Any] = MappingProxyType(
    {
        "objective": "binary",
        "learning_rate": 0.05,
        "num_leaves": 4,
        "max_depth": 2,
        "min_data_in_leaf": 40,
        "feature_fraction": 0.7,
        "bagging_fraction": 0.8,
        "bagging_freq": 1,
        "lambda_l2": 1.0,
        "min_data_per_group": 20,
        "cat_smooth": 10.0,
        "cat_l2": 10.0,
        "deterministic": True,
        "force_col_wise": True,
        "num_threads": 2,
        "verbose": -1,
    }
)
"""LightGBM settings; ``seed`` is added per run."""

SCORECARD_MAX_ITER = 1000
SCORECARD_GRID: tuple[tuple[float, str | None], ...] = (
    (0.1, None),
    (0.1, "balanced"),
    (1.0, None),
    (1.0, "balanced"),
)
"""``(C, class_weight)`` pairs tried for the scorecard."""

_SAFE_FEATURE_NAME = re.compile(r"[A-Za-z0-9_]+")


@dataclass(frozen=True)
class CandidateResult:
    """One trained candidate: its CV evidence and the model refit on all rows."""

    name: str
    kind: CandidateKind
    cv_metrics: dict[str, float]
    """Fold-wise means (and ``<metric>_sd``) of out-of-fold metrics."""
    oof_probabilities: NDArray[np.float64] = field(repr=False)
    """P(bad) of each row of the training frame from the fold models that did not see
    it (the mean over repeats)."""
    model: Any = field(repr=False)
    """``lightgbm.Booster``, ``sklearn.pipeline.Pipeline`` or ONNX ``ModelProto``; reads
    ``encode_frame`` output."""
    params: dict[str, Any]
    """JSON-ready settings, for the registry."""


def train_credit_candidates(
    frame: pd.DataFrame,
    signature: ModelSignature,
    target: str,
    *,
    folds: int = 5,
    repeats: int = 2,
    seed: int = 42,
    costs: CostMatrix = DEFAULT_COSTS,
    candidates: Sequence[CandidateKind] = CANDIDATES,
    network: NetworkSettings | None = None,
    progress: Callable[[str], None] | None = None,
) -> list[CandidateResult]:
    """Cross-validate and refit the ``candidates``, in that order.

    ``frame`` holds the signature's inputs and the ``target`` column, whose
    values are the signature's two ``classes``; the second one (``bad``) is
    the class whose probability the models return. ``network`` sets up the
    network candidate (default :class:`NetworkSettings`). ``progress`` is called
    with a short message before each fit, and after each candidate with its CV AUC.
    """
    unknown = [kind for kind in candidates if kind not in CANDIDATES]
    if not candidates or unknown or len(set(candidates)) != len(candidates):
        raise Invalid(
            f"candidates must be distinct names among {', '.join(CANDIDATES)}, "
            f"got {', '.join(map(str, candidates)) or 'none'}"
        )
    x, y = _training_arrays(frame, signature, target)
    run = _Run(
        x=x,
        y=y,
        repeats=repeated_folds(y, folds, repeats, seed),
        seed=seed,
        costs=costs,
        categorical=[i for i, f in enumerate(signature.inputs) if f.dtype == "category"],
        numeric=[i for i, f in enumerate(signature.inputs) if f.dtype != "category"],
        level_counts=[len(f.categories or ()) for f in signature.inputs if f.dtype == "category"],
        names=list(signature.feature_names),
        progress=progress,
    )
    trainers: dict[CandidateKind, Callable[[], CandidateResult]] = {
        "lightgbm": lambda: _train_lightgbm(run),
        "scorecard": lambda: _train_scorecard(run),
        "network": lambda: _train_network(run, network or NetworkSettings()),
    }
    results = []
    for done, kind in enumerate(candidates, start=1):
        result = trainers[kind]()
        metrics = result.cv_metrics
        run.say(
            f"{kind} done ({done}/{len(candidates)} candidates): "
            f"CV AUC {metrics['auc']:.3f} ± {metrics['auc_sd']:.3f}"
        )
        results.append(result)
    return results


@dataclass(frozen=True)
class _Run:
    """What every candidate of one training run shares."""

    x: NDArray[np.float64]
    y: NDArray[np.int_]
    repeats: list[Repeat]
    seed: int
    costs: CostMatrix
    categorical: list[int]
    numeric: list[int]
    level_counts: list[int]
    names: list[str]
    progress: Callable[[str], None] | None

    def say(self, message: str) -> None:
        if self.progress:
            self.progress(message)

    def out_of_fold(self, fit_predict: FitPredict, label: str) -> list[NDArray[np.float64]]:
        """Out-of-fold scores of each repeat."""
        count = len(self.repeats)
        return [
            out_of_fold(
                fit_predict,
                self.x,
                self.y,
                splits,
                progress=self.progress,
                label=label if count == 1 else f"{label} (repeat {r}/{count})",
            )
            for r, splits in enumerate(self.repeats, start=1)
        ]

    def cv_metrics(self, oofs: list[NDArray[np.float64]]) -> dict[str, float]:
        return cv_metrics(self.y, oofs, self.repeats, self.costs)

    @property
    def cv_params(self) -> dict[str, Any]:
        folds, repeats = len(self.repeats[0]), len(self.repeats)
        cv = f"stratified {folds}-fold" + (f" × {repeats} repeats" if repeats > 1 else "")
        return {"cv": cv, "cv_seed": self.seed}


def _train_lightgbm(run: _Run) -> CandidateResult:
    params = {**LIGHTGBM_PARAMS, "seed": run.seed}
    oofs = run.out_of_fold(_lightgbm_fit_predict(params, run.categorical), "lightgbm")
    run.say("lightgbm: refit on all rows")
    return CandidateResult(
        name="lightgbm",
        kind="lightgbm",
        cv_metrics=run.cv_metrics(oofs),
        oof_probabilities=np.mean(oofs, axis=0),
        model=_train_booster(params, run.categorical, run.x, run.y, run.names),
        params={
            **params,
            "num_boost_round": LIGHTGBM_ROUNDS,
            "categorical_features": [run.names[i] for i in run.categorical],
            **run.cv_params,
        },
    )


def _train_scorecard(run: _Run) -> CandidateResult:
    """Try :data:`SCORECARD_GRID`, keep the lowest mean CV log loss, refit it."""
    tried = []
    for c, class_weight in SCORECARD_GRID:
        fit_predict = _scorecard_fit_predict(run, c, class_weight)
        oofs = run.out_of_fold(fit_predict, f"scorecard C={c:g} class_weight={class_weight}")
        tried.append((run.cv_metrics(oofs), c, class_weight, oofs))
    metrics, c, class_weight, oofs = min(tried, key=lambda result: result[0]["log_loss"])
    run.say("scorecard: refit on all rows")
    return CandidateResult(
        name="scorecard",
        kind="scorecard",
        cv_metrics=metrics,
        oof_probabilities=np.mean(oofs, axis=0),
        model=_scorecard(run, c, class_weight).fit(run.x, run.y),
        params={
            "model": "one-hot + standardised logistic regression",
            "C": c,
            "class_weight": class_weight,
            "max_iter": SCORECARD_MAX_ITER,
            "selected_by": "cv log_loss",
            "grid": [
                {
                    "C": grid_c,
                    "class_weight": grid_weight,
                    "cv_log_loss": round(grid_metrics["log_loss"], 6),
                    "cv_auc": round(grid_metrics["auc"], 6),
                }
                for grid_metrics, grid_c, grid_weight, _ in tried
            ],
            **run.cv_params,
        },
    )


def _train_network(run: _Run, settings: NetworkSettings) -> CandidateResult:
    layout = Layout(tuple(run.categorical), tuple(run.level_counts), tuple(run.numeric))

    def fit_predict(
        x_train: NDArray[np.float64], y_train: NDArray[np.int_], x_test: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        return train_network(x_train, y_train, layout, settings, run.seed).predict(x_test)

    oofs = run.out_of_fold(fit_predict, f"network ({settings.optimizer})")
    run.say("network: refit on all rows")
    network = train_network(run.x, run.y, layout, settings, run.seed)
    return CandidateResult(
        name="network",
        kind="network",
        cv_metrics=run.cv_metrics(oofs),
        oof_probabilities=np.mean(oofs, axis=0),
        model=to_onnx(network, run.x.shape[1]),
        params={**network_params(network, settings), "seed": run.seed, **run.cv_params},
    )


def _training_arrays(
    frame: pd.DataFrame, signature: ModelSignature, target: str
) -> tuple[NDArray[np.float64], NDArray[np.int_]]:
    if signature.task != "binary" or signature.classes is None:
        raise Invalid(f"credit training needs a binary signature, got task {signature.task!r}")
    if target in signature.feature_names:
        raise Invalid(f"target {target!r} must not be one of the signature's inputs")
    strings = [f.name for f in signature.inputs if f.dtype == "string"]
    if strings:
        raise Invalid(f"credit training cannot use string feature {strings[0]!r}")
    if target not in frame.columns:
        raise Invalid(f"data has no target column {target!r}")
    good, bad = signature.classes
    labels = frame[target]
    unknown = ~labels.isin([good, bad])
    if unknown.any():
        row = int(np.argmax(unknown.to_numpy()))
        raise Invalid(
            f"row {row}: target {target!r} must be {good!r} or {bad!r}, got {labels.iloc[row]!r}"
        )
    y = (labels == bad).to_numpy().astype(np.int_)
    x = np.asarray(encode_frame(signature, frame), dtype=np.float64)
    return x, y


def _lightgbm_fit_predict(params: Mapping[str, Any], categorical: list[int]) -> FitPredict:
    def fit_predict(
        x_train: NDArray[np.float64], y_train: NDArray[np.int_], x_test: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        booster = _train_booster(params, categorical, x_train, y_train)
        return np.asarray(booster.predict(x_test), dtype=np.float64)

    return fit_predict


def _train_booster(
    params: Mapping[str, Any],
    categorical: list[int],
    x: NDArray[np.float64],
    y: NDArray[np.int_],
    names: list[str] | None = None,
) -> lgb.Booster:
    # LightGBM refuses JSON-special characters in feature names; keep its defaults then.
    feature_name: list[str] | Literal["auto"] = "auto"
    if names and all(_SAFE_FEATURE_NAME.fullmatch(name) for name in names):
        feature_name = names
    data = lgb.Dataset(x, y, feature_name=feature_name, categorical_feature=categorical)
    return lgb.train(dict(params), data, num_boost_round=LIGHTGBM_ROUNDS)


def _scorecard(run: _Run, c: float, class_weight: str | None) -> Pipeline:
    # Categories are taken from the signature, so a level missing from a fold
    # still gets its column (and a zero coefficient under the L2 penalty).
    one_hot = OneHotEncoder(
        categories=[np.arange(n, dtype=np.float64) for n in run.level_counts],
        handle_unknown="ignore",
    )
    columns = ColumnTransformer(
        [("categories", one_hot, run.categorical), ("numbers", StandardScaler(), run.numeric)]
    )
    model = LogisticRegression(C=c, class_weight=class_weight, max_iter=SCORECARD_MAX_ITER)
    return Pipeline([("columns", columns), ("logistic", model)])


def _scorecard_fit_predict(run: _Run, c: float, class_weight: str | None) -> FitPredict:
    def fit_predict(
        x_train: NDArray[np.float64], y_train: NDArray[np.int_], x_test: NDArray[np.float64]
    ) -> NDArray[np.float64]:
        pipeline = _scorecard(run, c, class_weight).fit(x_train, y_train)
        return np.asarray(pipeline.predict_proba(x_test)[:, 1], dtype=np.float64)

    return fit_predict
