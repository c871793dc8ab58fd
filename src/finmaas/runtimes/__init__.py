"""Runtimes turn a stored artifact into a :class:`Predictor`.

Each format has its own module (:mod:`.onnx`, :mod:`.lightgbm`,
:mod:`.xgboost`, :mod:`.skops`, :mod:`.pickle`); the model libraries are
imported only when a model is loaded, so importing this package is cheap. Its
names are imported on first use (PEP 562): naming a :class:`ModelFormat` (a CLI
option) does not even import numpy.

    predictor = load_predictor(data, check_format(data, None, filename="m.onnx"), signature)
    scores = predictor.predict(encoded_rows)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from finmaas.lazy import lazy_names

if TYPE_CHECKING:
    from finmaas.runtimes.base import Predictor, PredictorInfo
    from finmaas.runtimes.detect import check_format, detect_format
    from finmaas.runtimes.factory import RUNTIMES, create_predictor, load_predictor
    from finmaas.runtimes.formats import SAFE_FORMATS, ModelFormat

__all__ = [
    "RUNTIMES",
    "SAFE_FORMATS",
    "ModelFormat",
    "Predictor",
    "PredictorInfo",
    "check_format",
    "create_predictor",
    "detect_format",
    "load_predictor",
]

_HOMES = {
    "RUNTIMES": "finmaas.runtimes.factory",
    "SAFE_FORMATS": "finmaas.runtimes.formats",
    "ModelFormat": "finmaas.runtimes.formats",
    "Predictor": "finmaas.runtimes.base",
    "PredictorInfo": "finmaas.runtimes.base",
    "check_format": "finmaas.runtimes.detect",
    "create_predictor": "finmaas.runtimes.factory",
    "detect_format": "finmaas.runtimes.detect",
    "load_predictor": "finmaas.runtimes.factory",
}

__getattr__ = lazy_names(__name__, _HOMES)
