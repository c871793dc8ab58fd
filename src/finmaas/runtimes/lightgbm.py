"""LightGBM text models (``Booster.model_to_string()``), scored by LightGBM's C library.

The runtime loads ``lib_lightgbm`` from the installed ``lightgbm`` package and calls
its C API through ``ctypes``; it never imports the ``lightgbm`` Python package, which
imports scikit-learn, SciPy and pandas when they are installed: 2.0 of a worker's 3.2 s
cold start. Calling the C prediction directly also skips ``Booster.predict``'s checks
and conversions in Python (31 µs of a 38 µs one-row prediction, with the GIL held).
One row goes through LightGBM's single-row fast path (its configuration prepared once
per thread), several rows through one matrix call; contributions (TreeSHAP) through
the same matrix call. Each returns exactly what ``Booster.predict`` returns.
"""

from __future__ import annotations

import ctypes
import functools
import importlib.metadata
import importlib.util
import sys
import threading
import weakref
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from finmaas.errors import PredictorFailed
from finmaas.runtimes._options import check_option_names, int_option
from finmaas.runtimes.base import (
    ModelFormat,
    PredictorInfo,
    RuntimeBase,
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
_PREDICT_CONTRIB = 3
"""``C_API_PREDICT_CONTRIB``: SHAP values per feature and the expected value, per class."""
_FLOAT64 = 1
"""``C_API_DTYPE_FLOAT64``."""
_ROW_MAJOR = 1
_LIBRARY_NAMES = {"win32": "lib_lightgbm.dll", "darwin": "lib_lightgbm.dylib"}


@functools.cache
def _library() -> ctypes.CDLL:
    """LightGBM's C library, from the installed ``lightgbm`` package's folder."""
    spec = importlib.util.find_spec("lightgbm")
    if spec is None or spec.origin is None:
        raise PredictorFailed("lightgbm is not installed: pip install lightgbm")
    name = _LIBRARY_NAMES.get(sys.platform, "lib_lightgbm.so")
    library = ctypes.CDLL(str(Path(spec.origin).parent / "lib" / name))
    library.LGBM_GetLastError.restype = ctypes.c_char_p
    return library


def _check(library: ctypes.CDLL, status: int) -> None:
    if status != 0:
        message = library.LGBM_GetLastError() or b"unknown error"
        raise PredictorFailed(f"lightgbm: {message.decode('utf-8', 'replace')}")


class _Booster:
    """A model loaded into LightGBM's C library, and its predictions.

    Thread-safe: the matrix call is, and each thread gets its own single-row fast
    configuration. The booster and the configurations are freed with this object.
    """

    def __init__(self, text: bytes, threads: int) -> None:
        library = self._library = _library()
        handle = ctypes.c_void_p()
        iterations = ctypes.c_int(0)
        _check(
            library,
            library.LGBM_BoosterLoadModelFromString(
                ctypes.c_char_p(text), ctypes.byref(iterations), ctypes.byref(handle)
            ),
        )
        self._handle = handle
        self._configs: list[ctypes.c_void_p] = []
        weakref.finalize(self, _free, library, handle, self._configs)
        self.n_features = self._count(library.LGBM_BoosterGetNumFeature)
        self.per_iteration = self._count(library.LGBM_BoosterNumModelPerIteration)
        self._parameters = ctypes.c_char_p(f"num_threads={threads}".encode())
        self._local = threading.local()
        self._lock = threading.Lock()

    def _count(self, function: Any) -> int:
        out = ctypes.c_int(0)
        _check(self._library, function(self._handle, ctypes.byref(out)))
        return int(out.value)

    def predict(self, x: np.ndarray) -> np.ndarray:
        """``Booster.predict(x)``: ``(n,)``, or ``(n, k)`` for ``k`` classes."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        rows, outputs = x.shape[0], self.per_iteration
        out = np.empty(rows * outputs, dtype=np.float64)
        if rows == 1:
            written = ctypes.c_int64(0)
            _check(
                self._library,
                self._library.LGBM_BoosterPredictForMatSingleRowFast(
                    self._fast_config(),
                    ctypes.c_void_p(x.ctypes.data),
                    ctypes.byref(written),
                    ctypes.c_void_p(out.ctypes.data),
                ),
            )
            self._check_written(written, out.size)
        else:
            self._predict_matrix(x, _PREDICT_NORMAL, out)
        return out.reshape(rows, outputs) if outputs > 1 else out

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """``Booster.predict(x, pred_contrib=True)``: ``(n, k * (n_features + 1))``."""
        x = np.ascontiguousarray(x, dtype=np.float64)
        width = self.per_iteration * (self.n_features + 1)
        out = np.empty(x.shape[0] * width, dtype=np.float64)
        self._predict_matrix(x, _PREDICT_CONTRIB, out)
        return out.reshape(x.shape[0], width)

    def _predict_matrix(self, x: np.ndarray, kind: int, out: np.ndarray) -> None:
        written = ctypes.c_int64(0)
        _check(
            self._library,
            self._library.LGBM_BoosterPredictForMat(
                self._handle,
                ctypes.c_void_p(x.ctypes.data),
                ctypes.c_int(_FLOAT64),
                ctypes.c_int32(x.shape[0]),
                ctypes.c_int32(x.shape[1]),
                ctypes.c_int(_ROW_MAJOR),
                ctypes.c_int(kind),
                ctypes.c_int(0),  # from the first iteration
                ctypes.c_int(-1),  # to the last
                self._parameters,
                ctypes.byref(written),
                ctypes.c_void_p(out.ctypes.data),
            ),
        )
        self._check_written(written, out.size)

    @staticmethod
    def _check_written(written: ctypes.c_int64, expected: int) -> None:
        if written.value != expected:
            raise PredictorFailed(f"lightgbm wrote {written.value} values, not {expected}")

    def _fast_config(self) -> ctypes.c_void_p:
        config: ctypes.c_void_p | None = getattr(self._local, "config", None)
        if config is None:
            config = ctypes.c_void_p()
            _check(
                self._library,
                self._library.LGBM_BoosterPredictForMatSingleRowFastInit(
                    self._handle,
                    ctypes.c_int(_PREDICT_NORMAL),
                    ctypes.c_int(0),
                    ctypes.c_int(-1),
                    ctypes.c_int(_FLOAT64),
                    ctypes.c_int32(self.n_features),
                    self._parameters,
                    ctypes.byref(config),
                ),
            )
            with self._lock:
                self._configs.append(config)
            self._local.config = config
        return config


def _free(library: ctypes.CDLL, handle: ctypes.c_void_p, configs: list[ctypes.c_void_p]) -> None:
    """Free the fast configurations, then the booster they belong to."""
    for config in configs:
        library.LGBM_FastConfigFree(config)
    configs.clear()
    library.LGBM_BoosterFree(handle)


@dataclass(frozen=True)
class _Loaded:
    booster: _Booster
    info: PredictorInfo


class LightGBMPredictor(RuntimeBase[_Loaded]):
    """Scores like ``lightgbm.Booster.predict``: probabilities, ``(n, k)`` for multiclass.

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
            data.decode("utf-8")  # a model file is text; refuse anything else by name
            if b"\x00" in data:
                raise ValueError("a model file is text; this one holds a NUL byte")
            booster = _Booster(data, self.threads)
        check_feature_count(self.signature, booster.n_features, _FORMAT)
        per_iteration = booster.per_iteration
        check_class_count(self.signature, per_iteration if per_iteration > 1 else None, _FORMAT)
        version = importlib.metadata.version("lightgbm")
        info = PredictorInfo(_FORMAT, booster.n_features, f"lightgbm {version}")
        self._loaded = _Loaded(booster, info)

    def _score(self, loaded: _Loaded, x: np.ndarray) -> np.ndarray:
        with runtime_errors("the lightgbm model failed to predict"):
            raw = loaded.booster.predict(x)
        return to_scores(raw, self.signature, _FORMAT, x.shape[0])

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP (path-dependent) through LightGBM's ``pred_contrib``."""
        loaded = require_loaded(self._loaded)
        check_input(x, loaded.info.n_features)
        with runtime_errors("the lightgbm model failed to compute contributions"):
            return loaded.booster.contributions(x)
