"""LightGBM text models (``Booster.model_to_string()``), scored by LightGBM itself."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finmaas.runtimes._options import check_option_names, int_option
from finmaas.runtimes.base import (
    ModelFormat,
    PredictorInfo,
    RuntimeBase,
    as_float_array,
    check_class_count,
    check_feature_count,
    check_input,
    require_loaded,
    runtime_errors,
    to_scores,
)
from finmaas.schema.signature import ModelSignature

_FORMAT = ModelFormat.LIGHTGBM


@dataclass(frozen=True)
class _Loaded:
    booster: Any
    info: PredictorInfo


class LightGBMPredictor(RuntimeBase[_Loaded]):
    """Scores with ``lightgbm.Booster.predict``: probabilities, ``(n, k)`` for multiclass.

    Parameters:
        threads: OpenMP threads per ``predict`` call (default 1: the server
            scales with processes and concurrent calls, not inside one call).
    """

    def __init__(self, signature: ModelSignature, *, threads: int = 1) -> None:
        self.signature = signature
        self.threads = threads
        self._loaded: _Loaded | None = None

    @classmethod
    def from_options(
        cls, signature: ModelSignature, options: Mapping[str, object]
    ) -> LightGBMPredictor:
        check_option_names(options, ("threads",), _FORMAT)
        return cls(signature, threads=int_option(options, "threads", 1, minimum=1))

    def load(self, data: bytes) -> None:
        with runtime_errors("could not load the lightgbm model"):
            import lightgbm

            booster = lightgbm.Booster(model_str=data.decode("utf-8"))
            n_features = int(booster.num_feature())
            per_iteration = int(booster.num_model_per_iteration())
        check_feature_count(self.signature, n_features, _FORMAT)
        check_class_count(self.signature, per_iteration if per_iteration > 1 else None, _FORMAT)
        info = PredictorInfo(_FORMAT, n_features, f"lightgbm {lightgbm.__version__}")
        self._loaded = _Loaded(booster, info)

    def _score(self, loaded: _Loaded, x: np.ndarray) -> np.ndarray:
        with runtime_errors("the lightgbm model failed to predict"):
            raw = loaded.booster.predict(as_float_array(x), num_threads=self.threads)
        return to_scores(raw, self.signature, _FORMAT, x.shape[0])

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP (path-dependent) through LightGBM's ``pred_contrib``."""
        loaded = require_loaded(self._loaded)
        check_input(x, loaded.info.n_features)
        with runtime_errors("the lightgbm model failed to compute contributions"):
            raw = loaded.booster.predict(
                as_float_array(x), pred_contrib=True, num_threads=self.threads
            )
        return np.asarray(raw, dtype=np.float64)
