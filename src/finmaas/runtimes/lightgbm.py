"""LightGBM text models (``Booster.model_to_string()``), scored by LightGBM itself.

Scores come from LightGBM's C prediction called directly (:class:`_CPrediction`):
``Booster.predict`` checks and converts its input in Python on every call, which
cost 31 µs of a 38 µs one-row prediction, held the GIL, and was paid once per batch
on the serving path. One row goes through LightGBM's single-row fast path (its
configuration prepared once per thread), several rows through one matrix call.
Contributions (TreeSHAP) still go through ``Booster.predict``.
"""

from __future__ import annotations

import ctypes
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from finmaas.errors import PredictorFailed
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


_PREDICT_NORMAL = 0
"""``C_API_PREDICT_NORMAL``: probabilities for classifiers, values for regression."""
_FLOAT64 = 1
"""``C_API_DTYPE_FLOAT64``."""
_ROW_MAJOR = 1


class _CPrediction:
    """``Booster.predict(x)`` (all iterations, normal output) through LightGBM's C API.

    Thread-safe: the matrix call is, and each thread gets its own single-row fast
    configuration, freed with this object (which keeps the booster alive until then).
    """

    def __init__(self, booster: Any, n_features: int, outputs: int, threads: int) -> None:
        from lightgbm.basic import _LIB, _c_str  # type: ignore[attr-defined]  # the C library

        self._lib = _LIB
        self._booster = booster
        self._handle = booster._handle
        self._n_features = n_features
        self._outputs = outputs
        self._parameters = _c_str(f"num_threads={threads}")
        self._local = threading.local()
        self._configs: list[ctypes.c_void_p] = []
        self._lock = threading.Lock()
        weakref.finalize(self, _free_configs, _LIB, self._configs, booster)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        x = np.ascontiguousarray(x, dtype=np.float64)
        rows = x.shape[0]
        out = np.empty(rows * self._outputs, dtype=np.float64)
        written = ctypes.c_int64(0)
        data, result = ctypes.c_void_p(x.ctypes.data), ctypes.c_void_p(out.ctypes.data)
        if rows == 1:
            status = self._lib.LGBM_BoosterPredictForMatSingleRowFast(
                self._fast_config(), data, ctypes.byref(written), result
            )
        else:
            status = self._lib.LGBM_BoosterPredictForMat(
                self._handle,
                data,
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(rows),
                ctypes.c_int32(self._n_features),
                ctypes.c_int(_ROW_MAJOR),
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),  # start iteration
                ctypes.c_int(-1),  # every iteration
                self._parameters,
                ctypes.byref(written),
                result,
            )
        _check(self._lib, status)
        if written.value != out.size:
            raise PredictorFailed(
                f"lightgbm returned {written.value} values for {rows} rows of {self._outputs}"
            )
        return out.reshape(rows, self._outputs) if self._outputs > 1 else out

    def _fast_config(self) -> ctypes.c_void_p:
        config: ctypes.c_void_p | None = getattr(self._local, "config", None)
        if config is None:
            config = ctypes.c_void_p()
            status = self._lib.LGBM_BoosterPredictForMatSingleRowFastInit(
                self._handle,
                ctypes.c_int(_PREDICT_NORMAL),
                ctypes.c_int(0),
                ctypes.c_int(-1),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(self._n_features),
                self._parameters,
                ctypes.byref(config),
            )
            _check(self._lib, status)
            with self._lock:
                self._configs.append(config)
            self._local.config = config
        return config


def _check(lib: Any, status: int) -> None:
    if status != 0:
        raise PredictorFailed(f"lightgbm: {lib.LGBM_GetLastError().decode('utf-8', 'replace')}")


def _free_configs(lib: Any, configs: list[ctypes.c_void_p], booster: Any) -> None:
    """Free the fast configurations, then let the booster go."""
    for config in configs:
        lib.LGBM_FastConfigFree(config)
    configs.clear()
    del booster


@dataclass(frozen=True)
class _Loaded:
    booster: Any
    info: PredictorInfo
    predict: _CPrediction


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
        predict = _CPrediction(booster, n_features, per_iteration, self.threads)
        self._loaded = _Loaded(booster, info, predict)

    def _score(self, loaded: _Loaded, x: np.ndarray) -> np.ndarray:
        with runtime_errors("the lightgbm model failed to predict"):
            raw = loaded.predict(x)
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
