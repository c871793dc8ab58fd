"""XGBoost models saved as JSON or UBJ (``Booster.save_model``), scored by XGBoost itself."""

from __future__ import annotations

import json
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


@dataclass(frozen=True)
class _Loaded:
    booster: Any
    info: PredictorInfo


class XGBoostPredictor(RuntimeBase[_Loaded]):
    """Scores with ``xgboost.Booster.inplace_predict`` (thread-safe, no DMatrix per call).

    ``binary:logistic`` gives the positive-class probability and
    ``multi:softprob`` one column per class.

    Parameters:
        fmt: ``xgboost-json`` or ``xgboost-ubj``; XGBoost reads both from the
            same bytes, the format is kept for ``info``.
        threads: threads per ``predict`` call (default 1).
    """

    def __init__(
        self,
        signature: ModelSignature,
        *,
        fmt: ModelFormat = ModelFormat.XGBOOST_UBJ,
        threads: int = 1,
    ) -> None:
        self.signature = signature
        self.fmt = fmt
        self.threads = threads
        self._loaded: _Loaded | None = None

    @classmethod
    def json_from_options(
        cls, signature: ModelSignature, options: Mapping[str, object]
    ) -> XGBoostPredictor:
        return cls._from_options(signature, options, ModelFormat.XGBOOST_JSON)

    @classmethod
    def ubj_from_options(
        cls, signature: ModelSignature, options: Mapping[str, object]
    ) -> XGBoostPredictor:
        return cls._from_options(signature, options, ModelFormat.XGBOOST_UBJ)

    @classmethod
    def _from_options(
        cls, signature: ModelSignature, options: Mapping[str, object], fmt: ModelFormat
    ) -> XGBoostPredictor:
        check_option_names(options, ("threads",), fmt)
        return cls(signature, fmt=fmt, threads=int_option(options, "threads", 1, minimum=1))

    def load(self, data: bytes) -> None:
        with runtime_errors(f"could not load the {self.fmt} model"):
            import xgboost

            booster = xgboost.Booster()
            booster.load_model(bytearray(data))
            booster.set_param({"nthread": self.threads})
            n_features = int(booster.num_features())
            config = json.loads(booster.save_config())
            n_classes = int(config["learner"]["learner_model_param"]["num_class"])
        check_feature_count(self.signature, n_features, self.fmt)
        check_class_count(self.signature, n_classes or None, self.fmt)
        info = PredictorInfo(self.fmt, n_features, f"xgboost {xgboost.__version__}")
        self._loaded = _Loaded(booster, info)

    def _score(self, loaded: _Loaded, x: np.ndarray) -> np.ndarray:
        with runtime_errors(f"the {self.fmt} model failed to predict"):
            # the encoded array has no column names; the model's may differ from the signature's
            raw = loaded.booster.inplace_predict(as_float_array(x), validate_features=False)
        return to_scores(raw, self.signature, self.fmt, x.shape[0])

    def contributions(self, x: np.ndarray) -> np.ndarray:
        """Exact TreeSHAP through XGBoost's ``pred_contribs``."""
        loaded = require_loaded(self._loaded)
        check_input(x, loaded.info.n_features)
        with runtime_errors(f"the {self.fmt} model failed to compute contributions"):
            import xgboost

            matrix = xgboost.DMatrix(as_float_array(x))
            raw = loaded.booster.predict(matrix, pred_contribs=True, validate_features=False)
        return np.asarray(raw, dtype=np.float64)
