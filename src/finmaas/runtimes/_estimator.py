"""Score a fitted scikit-learn-style estimator, for the skops and pickle runtimes."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import numpy as np

from finmaas.errors import PredictorFailed
from finmaas.runtimes._raw_frame import RawFrame, reads_raw_text
from finmaas.runtimes.base import (
    ModelFormat,
    PredictorInfo,
    check_class_count,
    check_feature_count,
    runtime_errors,
    to_scores,
)
from finmaas.schema.signature import ModelSignature


@dataclass(frozen=True)
class Estimator:
    """A loaded estimator and how to call it: ``predict_proba`` or ``predict``."""

    model: Any
    info: PredictorInfo
    columns: tuple[str, ...] | None
    """``feature_names_in_`` when the model was fitted on a DataFrame: the batch gets
    these names (positionally), so scikit-learn does not warn about missing names."""
    proba: bool
    raw_frame: RawFrame | None = None
    """Set when the model was fitted on a raw DataFrame (text categories): the batch is
    turned back into that frame (:mod:`._raw_frame`), by column name."""

    @classmethod
    def wrap(cls, model: Any, signature: ModelSignature, fmt: ModelFormat) -> Estimator:
        """Check ``model`` against the signature; raise naming what does not fit."""
        kind = type(model).__name__
        proba = signature.task != "regression"
        method = "predict_proba" if proba else "predict"
        if not callable(getattr(model, method, None)):
            raise PredictorFailed(
                f"the {fmt} model ({kind}) has no {method}(), which a {signature.task} "
                "signature needs"
            )
        n_features = getattr(model, "n_features_in_", None)
        if not isinstance(n_features, int | np.integer):
            raise PredictorFailed(f"the {fmt} model ({kind}) has no n_features_in_; is it fitted?")
        names = getattr(model, "feature_names_in_", None)
        columns = None if names is None else tuple(str(name) for name in names)
        raw_frame = None
        if columns is not None and reads_raw_text(model):
            raw_frame = RawFrame(signature, columns)  # checks the columns by name
        else:
            check_feature_count(signature, int(n_features), fmt)
        classes = getattr(model, "classes_", None)
        check_class_count(signature, None if classes is None else len(classes), fmt)
        info = PredictorInfo(fmt, len(signature.inputs), library_of(model))
        return cls(model, info, columns, proba, raw_frame)

    def score(self, x: np.ndarray, signature: ModelSignature) -> np.ndarray:
        """Score a checked, non-empty batch."""
        with runtime_errors(f"the {self.info.format} model failed to predict"):
            # one layout for every caller: BLAS rounds C and Fortran order differently;
            # a signature with text inputs gives an object matrix, which stays one
            dtype = object if x.dtype == object else np.float64
            batch: Any = np.ascontiguousarray(x, dtype=dtype)
            if self.raw_frame is not None:
                batch = self.raw_frame.build(batch)
            elif self.columns is not None:
                import pandas as pd

                batch = pd.DataFrame(batch, columns=self.columns, copy=False)
            raw = self.model.predict_proba(batch) if self.proba else self.model.predict(batch)
        return to_scores(raw, signature, self.info.format, x.shape[0])


def library_of(model: Any) -> str:
    """``scikit-learn 1.6.1`` for a model whose class lives in that library."""
    top = type(model).__module__.split(".")[0]
    distribution = "scikit-learn" if top == "sklearn" else top
    version = getattr(sys.modules.get(top), "__version__", None)
    return f"{distribution} {version}" if version else distribution
